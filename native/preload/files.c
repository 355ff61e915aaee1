/* The fd calls: open of a /dev/vfio path becomes a connection to the server (OPEN); ioctl, pread, pwrite and mmap
 * on such an fd are round trips on it; dup, fcntl(F_DUPFD) and close keep the fd table true. Every call on any
 * other fd or path reaches libc untouched. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vfl.h"

static int fail(int err)
{
	errno = err;
	return -1;
}

/* A new connection that becomes a VFIO file by `op` (OPEN or ATTACH); the fd, or -1 with errno. */
static int connect_file(bool cloexec, uint16_t op, const void *payload_head, size_t head_len, const char *path)
{
	int fd;
	uint64_t inode;
	int rc = vfl_dial(cloexec, &fd, &inode);
	if (rc < 0) {
		vfl_trace("%s: no server at %s (%s)", op == VFIOLAB_OP_OPEN ? path : "ATTACH", vfl_config.socket_path,
			  strerror(-rc));
		return fail(op == VFIOLAB_OP_OPEN ? ENOENT : EIO);
	}
	unsigned char payload[16 + PATH_MAX];
	memcpy(payload, payload_head, head_len);
	memcpy(payload + head_len - 8, &inode, 8); /* client_socket_inode ends both payloads' fixed part */
	size_t len = head_len;
	if (path != NULL) {
		size_t plen = strlen(path) + 1;
		memcpy(payload + len, path, plen);
		len += plen;
	}
	struct vfl_conn *c = vfl_conn_new(fd, inode);
	if (c == NULL) {
		vfl_real.close(fd);
		return fail(ENOMEM);
	}
	struct vfl_reply r;
	rc = vfl_round_trip_locked(c, op, payload, len, &r); /* no one else knows c yet */
	if (rc == -EIO && op == VFIOLAB_OP_OPEN)
		rc = -ENOENT; /* the server went away before answering: no VFIO here, as with no server at all */
	if (rc == 0 && r.hdr.result < 0)
		rc = (int)r.hdr.result;
	if (rc < 0) {
		vfl_conn_free(c);
		vfl_real.close(fd);
		return fail(-rc);
	}
	rc = vfl_fd_install(fd, c, true);
	if (rc < 0) {
		vfl_real.close(fd);
		return fail(-rc);
	}
	return fd;
}

int vfl_open_dev(const char *norm, int flags)
{
	vfl_session_ensure();
	struct vfiolab_open_request req = { .open_flags = (uint32_t)flags };
	return connect_file((flags & O_CLOEXEC) != 0, VFIOLAB_OP_OPEN, &req, sizeof req, norm);
}

static int open_common(int dirfd, const char *path, int flags, mode_t mode)
{
	char norm[PATH_MAX];
	enum vfl_path_kind kind = vfl_classify(path, norm, sizeof norm);
	if (kind == VFL_PATH_DEV_VFIO_FILE)
		return vfl_open_dev(norm, flags);
	char buf[PATH_MAX];
	const char *p = path;
	if (kind == VFL_PATH_TREE && (p = vfl_rewrite(path, buf, sizeof buf)) == NULL)
		return -1;
	return vfl_real.openat(dirfd, p, flags, mode);
}

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

VFL_EXPORT int open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	return open_common(AT_FDCWD, path, flags, mode);
}

VFL_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	mode_t mode = mode_arg(flags, ap);
	va_end(ap);
	return open_common(dirfd, path, flags, mode);
}

VFL_EXPORT int open64(const char *path, int flags, ...) __attribute__((alias("open")));
VFL_EXPORT int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

/* _FORTIFY_SOURCE's checked opens (QEMU is built with it): called when the flags need no mode. */
VFL_EXPORT int __open_2(const char *path, int flags)
{
	return open_common(AT_FDCWD, path, flags, 0);
}

VFL_EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	return open_common(dirfd, path, flags, 0);
}

VFL_EXPORT int __open64_2(const char *path, int flags) __attribute__((alias("__open_2")));
VFL_EXPORT int __openat64_2(int dirfd, const char *path, int flags) __attribute__((alias("__openat_2")));

VFL_EXPORT int close(int fd)
{
	vfl_init();
	vfl_fd_forget(fd);
	return vfl_real.close(fd);
}

VFL_EXPORT int dup(int fd)
{
	vfl_init();
	int r = vfl_real.dup(fd);
	if (r >= 0 && vfl_fd_any())
		vfl_fd_dup(fd, r);
	return r;
}

VFL_EXPORT int dup2(int oldfd, int newfd)
{
	vfl_init();
	int r = vfl_real.dup2(oldfd, newfd);
	if (r >= 0 && oldfd != newfd && vfl_fd_any())
		vfl_fd_dup(oldfd, newfd);
	return r;
}

VFL_EXPORT int dup3(int oldfd, int newfd, int flags)
{
	vfl_init();
	int r = vfl_real.dup3(oldfd, newfd, flags);
	if (r >= 0 && vfl_fd_any())
		vfl_fd_dup(oldfd, newfd);
	return r;
}

VFL_EXPORT int fcntl(int fd, int cmd, ...)
{
	vfl_init();
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *); /* every fcntl argument is an int or a pointer: both fit */
	va_end(ap);
	int r = vfl_real.fcntl(fd, cmd, arg);
	if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && vfl_fd_any())
		vfl_fd_dup(fd, r);
	return r;
}

VFL_EXPORT int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));

/* GET_DEVICE_FD's new file: a connection of its own, ATTACHed to the token the server named. */
static int attach(uint64_t token)
{
	struct vfiolab_attach_request req = { .token = token };
	return connect_file(true, VFIOLAB_OP_ATTACH, &req, sizeof req, NULL);
}

VFL_EXPORT int ioctl(int fd, unsigned long request, ...)
{
	vfl_init();
	va_list ap;
	va_start(ap, request);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	struct vfl_conn *c;
	/* The kernel answers these for every file before the file's own ioctl: so does the real socket. */
	bool generic = request == FIOCLEX || request == FIONCLEX || request == FIONBIO || request == FIOASYNC;
	if (generic || (c = vfl_fd_get(fd)) == NULL)
		return vfl_real.ioctl(fd, request, arg);
	struct vfiolab_ioctl_request req = { .request = (uint32_t)request, .arg = (uint64_t)(uintptr_t)arg };
	struct vfl_reply r;
	int rc = vfl_round_trip(c, fd, VFIOLAB_OP_IOCTL, &req, sizeof req, &r);
	vfl_conn_put(c);
	if (rc < 0)
		return fail(-rc);
	if (r.hdr.result < 0)
		return fail((int)-r.hdr.result);
	if (r.hdr.result > INT_MAX)
		return fail(EPROTO);
	if ((r.hdr.flags & VFIOLAB_REPLY_NEW_FILE) != 0) {
		uint64_t token;
		memcpy(&token, r.payload, sizeof token);
		return attach(token);
	}
	return (int)r.hdr.result;
}

static ssize_t rw(int op, int fd, uint64_t buf, size_t count, off_t offset, bool *routed)
{
	struct vfl_conn *c = vfl_fd_get(fd);
	*routed = c != NULL;
	if (c == NULL)
		return 0;
	struct vfiolab_rw_request req = { .buf = buf, .count = count, .offset = (uint64_t)offset };
	struct vfl_reply r;
	int rc = vfl_round_trip(c, fd, (uint16_t)op, &req, sizeof req, &r);
	vfl_conn_put(c);
	if (rc < 0)
		return fail(-rc);
	if (r.hdr.result < 0)
		return fail((int)-r.hdr.result);
	if ((uint64_t)r.hdr.result > count)
		return fail(EPROTO);
	return (ssize_t)r.hdr.result;
}

VFL_EXPORT ssize_t pread(int fd, void *buf, size_t count, off_t offset)
{
	vfl_init();
	bool routed;
	ssize_t n = rw(VFIOLAB_OP_PREAD, fd, (uint64_t)(uintptr_t)buf, count, offset, &routed);
	return routed ? n : vfl_real.pread(fd, buf, count, offset);
}

VFL_EXPORT ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset)
{
	vfl_init();
	bool routed;
	ssize_t n = rw(VFIOLAB_OP_PWRITE, fd, (uint64_t)(uintptr_t)buf, count, offset, &routed);
	return routed ? n : vfl_real.pwrite(fd, buf, count, offset);
}

VFL_EXPORT ssize_t pread64(int fd, void *buf, size_t count, off_t offset) __attribute__((alias("pread")));
VFL_EXPORT ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) __attribute__((alias("pwrite")));

/* _FORTIFY_SOURCE's checked reads, called where the buffer's size is known. */
VFL_EXPORT ssize_t __pread_chk(int fd, void *buf, size_t count, off_t offset, size_t buflen)
{
	if (count > buflen)
		abort(); /* glibc's checked variant stops the process on an overflow */
	return pread(fd, buf, count, offset);
}

VFL_EXPORT ssize_t __pread64_chk(int fd, void *buf, size_t count, off_t offset, size_t buflen)
	__attribute__((alias("__pread_chk")));

/* The server is told when a device mapping's pages are gone from the process, whatever removed them. */
static void notice_unmapped(uintptr_t addr, size_t len)
{
	if (!vfl_maps_remove(addr, len))
		return;
	struct vfiolab_munmap_request req = { .addr = addr, .length = len };
	struct vfl_reply r;
	(void)vfl_session_call(VFIOLAB_OP_MUNMAP, &req, sizeof req, &r);
}

static size_t page_round(size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	return (len + page - 1) & ~(page - 1);
}

static void *map_device(struct vfl_conn *c, int fd, void *addr, size_t len, int prot, int flags, off_t off)
{
	struct vfiolab_mmap_prepare_request prep = {
		.length = len, .prot = (uint32_t)prot, .flags = (uint32_t)flags, .offset = (uint64_t)off };
	struct vfl_reply r;
	int rc = vfl_round_trip(c, fd, VFIOLAB_OP_MMAP_PREPARE, &prep, sizeof prep, &r);
	if (rc == 0 && r.hdr.result < 0)
		rc = (int)r.hdr.result;
	if (rc < 0) {
		errno = -rc;
		return MAP_FAILED;
	}
	const char *path = (const char *)r.payload + 8;
	if (r.payload_len <= 9 || strnlen(path, r.payload_len - 8) == r.payload_len - 8 || path[0] != '/') {
		errno = EPROTO;
		return MAP_FAILED;
	}
	uint64_t file_offset;
	memcpy(&file_offset, r.payload, sizeof file_offset);
	int sfd = vfl_real.open(path, ((prot & PROT_WRITE) != 0 ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (sfd < 0) {
		vfl_trace("MMAP_PREPARE named %s, which cannot be opened: %s", path, strerror(errno));
		errno = EIO;
		return MAP_FAILED;
	}
	void *p = vfl_real.mmap(addr, len, prot, flags, sfd, (off_t)file_offset);
	int saved = errno;
	vfl_real.close(sfd);
	if (p == MAP_FAILED) {
		errno = saved;
		return MAP_FAILED;
	}
	if ((flags & MAP_FIXED) != 0)
		notice_unmapped((uintptr_t)p, len);
	struct vfiolab_mmap_commit_request commit = {
		.addr = (uint64_t)(uintptr_t)p, .length = len, .prot = (uint32_t)prot, .flags = (uint32_t)flags,
		.offset = (uint64_t)off };
	rc = vfl_round_trip(c, fd, VFIOLAB_OP_MMAP_COMMIT, &commit, sizeof commit, &r);
	if (rc == 0 && r.hdr.result < 0)
		rc = (int)r.hdr.result;
	if (rc < 0) {
		vfl_real.munmap(p, len);
		errno = -rc;
		return MAP_FAILED;
	}
	vfl_maps_add((uintptr_t)p, page_round(len));
	return p;
}

VFL_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	vfl_init();
	struct vfl_conn *c = (flags & MAP_ANONYMOUS) != 0 ? NULL : vfl_fd_get(fd);
	if (c != NULL) {
		void *p = map_device(c, fd, addr, len, prot, flags, off);
		vfl_conn_put(c);
		return p;
	}
	void *p = vfl_real.mmap(addr, len, prot, flags, fd, off);
	if (p != MAP_FAILED && (flags & MAP_FIXED) != 0)
		notice_unmapped((uintptr_t)p, len);
	return p;
}

VFL_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) __attribute__((alias("mmap")));

VFL_EXPORT int munmap(void *addr, size_t len)
{
	vfl_init();
	int r = vfl_real.munmap(addr, len);
	if (r == 0)
		notice_unmapped((uintptr_t)addr, len);
	return r;
}
