/* Path calls: a path under one of the VFIO prefixes is rewritten to the same path under the server's root tree
 * and the real function runs on it; paths coming back (realpath, readlink) lose the root prefix again. Everything
 * else reaches libc untouched (docs/serve-protocol.md, "Paths are served from a tree the server writes"). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vfl.h"

static const char *const prefixes[] = {
	"/dev/vfio",
	"/sys/kernel/iommu_groups",
	"/sys/bus/pci/devices",
	"/sys/bus/pci/drivers/vfio-pci",
	"/sys/bus/mdev",
	"/sys/devices/pci0000:00",
};

/* Lexical normal form of an absolute path ("//", "." and ".." folded) into norm; false when it does not fit. */
static bool normalize(const char *path, char *norm, size_t cap)
{
	size_t n = 0;
	const char *p = path;
	while (*p != '\0') {
		while (*p == '/')
			p++;
		const char *start = p;
		while (*p != '\0' && *p != '/')
			p++;
		size_t len = (size_t)(p - start);
		if (len == 0 || (len == 1 && start[0] == '.'))
			continue;
		if (len == 2 && start[0] == '.' && start[1] == '.') {
			while (n > 0 && norm[n - 1] != '/')
				n--;
			if (n > 0)
				n--;
			continue;
		}
		if (n + 1 + len + 1 > cap)
			return false;
		norm[n++] = '/';
		memcpy(norm + n, start, len);
		n += len;
	}
	if (n == 0) {
		if (cap < 2)
			return false;
		norm[n++] = '/';
	}
	norm[n] = '\0';
	return true;
}

enum vfl_path_kind vfl_classify(const char *path, char *norm, size_t cap)
{
	vfl_init();
	if (!vfl_config.enabled || path == NULL || path[0] != '/' || !normalize(path, norm, cap))
		return VFL_PATH_PLAIN;
	for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
		size_t len = strlen(prefixes[i]);
		if (strncmp(norm, prefixes[i], len) != 0 || (norm[len] != '\0' && norm[len] != '/'))
			continue;
		if (i == 0 && norm[len] == '/')
			return VFL_PATH_DEV_VFIO_FILE;
		return VFL_PATH_TREE;
	}
	return VFL_PATH_PLAIN;
}

const char *vfl_rewrite(const char *path, char *buf, size_t cap)
{
	char norm[PATH_MAX];
	if (vfl_classify(path, norm, sizeof norm) == VFL_PATH_PLAIN)
		return path;
	size_t rlen = vfl_root(buf, cap);
	size_t nlen = strlen(norm);
	if (rlen + nlen + 1 > cap) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	memcpy(buf + rlen, norm, nlen + 1);
	vfl_trace("path %s -> %s", path, buf);
	return buf;
}

size_t vfl_strip_root(char *s, size_t len)
{
	if (!vfl_config.enabled)
		return len;
	char root[PATH_MAX];
	size_t rlen = vfl_root(root, sizeof root);
	if (rlen == 0 || len < rlen || memcmp(s, root, rlen) != 0 || (len > rlen && s[rlen] != '/'))
		return len;
	if (len == rlen) {
		s[0] = '/';
		s[1] = '\0';
		return 1;
	}
	memmove(s, s + rlen, len - rlen);
	s[len - rlen] = '\0';
	return len - rlen;
}

/* Rewrites `path` into a local buffer named `var`, or returns `fail` with errno set. */
#define REWRITE(var, path, fail)                                                                                     \
	char var##_buf[PATH_MAX];                                                                                    \
	const char *var = vfl_rewrite((path), var##_buf, sizeof var##_buf);                                          \
	if (var == NULL)                                                                                             \
		return fail

static ssize_t strip_link(char *buf, ssize_t n, size_t size)
{
	if (n <= 0 || (size_t)n >= PATH_MAX)
		return n;
	char tmp[PATH_MAX + 1];
	memcpy(tmp, buf, (size_t)n);
	tmp[n] = '\0';
	size_t m = vfl_strip_root(tmp, (size_t)n);
	if (m != (size_t)n) {
		memcpy(buf, tmp, m < size ? m : size);
		n = (ssize_t)(m < size ? m : size);
	}
	return n;
}

VFL_EXPORT ssize_t readlink(const char *path, char *buf, size_t size)
{
	REWRITE(p, path, -1);
	return strip_link(buf, vfl_real.readlink(p, buf, size), size);
}

VFL_EXPORT ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t size)
{
	REWRITE(p, path, -1);
	return strip_link(buf, vfl_real.readlinkat(dirfd, p, buf, size), size);
}

VFL_EXPORT ssize_t __readlink_chk(const char *path, char *buf, size_t size, size_t buflen)
{
	if (size > buflen)
		abort(); /* what glibc's checked variant does on a buffer overflow */
	return readlink(path, buf, size);
}

VFL_EXPORT ssize_t __readlinkat_chk(int dirfd, const char *path, char *buf, size_t size, size_t buflen)
{
	if (size > buflen)
		abort();
	return readlinkat(dirfd, path, buf, size);
}

VFL_EXPORT char *realpath(const char *path, char *resolved)
{
	REWRITE(p, path, NULL);
	char *r = vfl_real.realpath(p, resolved);
	if (r != NULL && p != path)
		vfl_strip_root(r, strlen(r));
	return r;
}

VFL_EXPORT char *__realpath_chk(const char *path, char *resolved, size_t resolvedlen)
{
	if (resolvedlen < PATH_MAX)
		abort();
	return realpath(path, resolved);
}

VFL_EXPORT char *canonicalize_file_name(const char *path)
{
	return realpath(path, NULL);
}

VFL_EXPORT int stat(const char *path, struct stat *st)
{
	REWRITE(p, path, -1);
	return vfl_real.stat != NULL ? vfl_real.stat(p, st) : vfl_real.fstatat(AT_FDCWD, p, st, 0);
}

VFL_EXPORT int lstat(const char *path, struct stat *st)
{
	REWRITE(p, path, -1);
	return vfl_real.lstat != NULL ? vfl_real.lstat(p, st) : vfl_real.fstatat(AT_FDCWD, p, st, AT_SYMLINK_NOFOLLOW);
}

VFL_EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	REWRITE(p, path, -1);
	return vfl_real.fstatat(dirfd, p, st, flags);
}

/* On 64-bit glibc the 64 forms take the same struct. */
_Static_assert(sizeof(struct stat) == sizeof(struct stat64), "struct stat64 is struct stat on this ABI");

VFL_EXPORT int stat64(const char *path, struct stat64 *st)
{
	return stat(path, (struct stat *)st);
}

VFL_EXPORT int lstat64(const char *path, struct stat64 *st)
{
	return lstat(path, (struct stat *)st);
}

VFL_EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
	return fstatat(dirfd, path, (struct stat *)st, flags);
}

/* Binaries built against glibc before 2.33 call these. */
VFL_EXPORT int __xstat(int ver, const char *path, struct stat *st)
{
	REWRITE(p, path, -1);
	return vfl_real.xstat != NULL ? vfl_real.xstat(ver, p, st) : vfl_real.fstatat(AT_FDCWD, p, st, 0);
}

VFL_EXPORT int __lxstat(int ver, const char *path, struct stat *st)
{
	REWRITE(p, path, -1);
	return vfl_real.lxstat != NULL ? vfl_real.lxstat(ver, p, st)
				       : vfl_real.fstatat(AT_FDCWD, p, st, AT_SYMLINK_NOFOLLOW);
}

VFL_EXPORT int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags)
{
	REWRITE(p, path, -1);
	return vfl_real.fxstatat != NULL ? vfl_real.fxstatat(ver, dirfd, p, st, flags)
					 : vfl_real.fstatat(dirfd, p, st, flags);
}

VFL_EXPORT int __xstat64(int ver, const char *path, struct stat64 *st)
{
	return __xstat(ver, path, (struct stat *)st);
}

VFL_EXPORT int __lxstat64(int ver, const char *path, struct stat64 *st)
{
	return __lxstat(ver, path, (struct stat *)st);
}

VFL_EXPORT int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags)
{
	return __fxstatat(ver, dirfd, path, (struct stat *)st, flags);
}

VFL_EXPORT int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *stx)
{
	REWRITE(p, path, -1);
	if (vfl_real.statx == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return vfl_real.statx(dirfd, p, flags, mask, stx);
}

VFL_EXPORT int access(const char *path, int mode)
{
	REWRITE(p, path, -1);
	return vfl_real.access(p, mode);
}

VFL_EXPORT int faccessat(int dirfd, const char *path, int mode, int flags)
{
	REWRITE(p, path, -1);
	return vfl_real.faccessat(dirfd, p, mode, flags);
}

VFL_EXPORT DIR *opendir(const char *path)
{
	REWRITE(p, path, NULL);
	return vfl_real.opendir(p);
}

/* glibc's fopen opens with its internal open, which no preload sees: the path is rewritten here instead. */
VFL_EXPORT FILE *fopen(const char *path, const char *mode)
{
	REWRITE(p, path, NULL);
	return vfl_real.fopen(p, mode);
}

VFL_EXPORT FILE *fopen64(const char *path, const char *mode)
{
	return fopen(path, mode);
}

/* glibc's scandir opens the directory with its internal opendir, which no preload sees. */
VFL_EXPORT int scandir(const char *path, struct dirent ***names, int (*filter)(const struct dirent *),
		       int (*compar)(const struct dirent **, const struct dirent **))
{
	REWRITE(p, path, -1);
	return vfl_real.scandir(p, names, filter, compar);
}

_Static_assert(sizeof(struct dirent) == sizeof(struct dirent64), "struct dirent64 is struct dirent on this ABI");

VFL_EXPORT int scandir64(const char *path, struct dirent64 ***names, int (*filter)(const struct dirent64 *),
			 int (*compar)(const struct dirent64 **, const struct dirent64 **))
{
	return scandir(path, (struct dirent ***)names, (int (*)(const struct dirent *))(void (*)(void))filter,
		       (int (*)(const struct dirent **, const struct dirent **))(void (*)(void))compar);
}
