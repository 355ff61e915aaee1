/* The real libc functions behind the interposed names, and the environment the preload runs under. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vfl.h"

struct vfl_real vfl_real;
struct vfl_config vfl_config;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void *next(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);
	if (p == NULL) {
		static const char msg[] = "vfiolab-preload: a libc function is missing; cannot interpose\n";
		(void)!write(2, msg, sizeof msg - 1);
		abort();
	}
	return p;
}

/* Some names exist only in some glibc versions (the __xstat family became compat-only in 2.33). */
static void *next_optional(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

static void resolve(void)
{
	vfl_real.open = next("open");
	vfl_real.openat = next("openat");
	vfl_real.close = next("close");
	vfl_real.dup = next("dup");
	vfl_real.dup2 = next("dup2");
	vfl_real.dup3 = next("dup3");
	vfl_real.fcntl = next("fcntl");
	vfl_real.ioctl = next("ioctl");
	vfl_real.mmap = next("mmap");
	vfl_real.munmap = next("munmap");
	vfl_real.pread = next("pread");
	vfl_real.pwrite = next("pwrite");
	vfl_real.readlink = next("readlink");
	vfl_real.readlinkat = next("readlinkat");
	vfl_real.realpath = next("realpath");
	vfl_real.stat = next_optional("stat");
	vfl_real.lstat = next_optional("lstat");
	vfl_real.fstatat = next_optional("fstatat");
	vfl_real.xstat = next_optional("__xstat");
	vfl_real.lxstat = next_optional("__lxstat");
	vfl_real.fxstatat = next_optional("__fxstatat");
	vfl_real.statx = next_optional("statx");
	vfl_real.access = next("access");
	vfl_real.faccessat = next("faccessat");
	vfl_real.opendir = next("opendir");
	vfl_real.fopen = next("fopen");
	vfl_real.scandir = next("scandir");

	const char *sock = getenv("VFIOLAB_SOCKET");
	if (sock != NULL && sock[0] != '\0') {
		if (strlen(sock) >= sizeof vfl_config.socket_path) {
			static const char msg[] = "vfiolab-preload: VFIOLAB_SOCKET is longer than a Unix socket path may be; "
						  "passing every call through\n";
			(void)!write(2, msg, sizeof msg - 1);
		} else {
			strcpy(vfl_config.socket_path, sock);
			vfl_config.enabled = true;
		}
	}
	const char *trace = getenv("VFIOLAB_TRACE");
	vfl_config.trace = trace != NULL && strcmp(trace, "1") == 0;
	vfl_config.timeout_ms = 30000;
	const char *timeout = getenv("VFIOLAB_TIMEOUT_MS");
	if (timeout != NULL && timeout[0] != '\0') {
		char *end;
		long ms = strtol(timeout, &end, 10);
		if (*end == '\0' && ms > 0 && ms <= 24L * 3600 * 1000)
			vfl_config.timeout_ms = (int)ms;
	}
}

void vfl_init(void)
{
	pthread_once(&init_once, resolve);
}

void vfl_trace(const char *fmt, ...)
{
	if (!vfl_config.trace)
		return;
	char line[512];
	int n = snprintf(line, sizeof line, "vfiolab-preload[%d]: ", (int)getpid());
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : ((size_t)m > sizeof line - (size_t)n - 2 ? sizeof line - (size_t)n - 2 : (size_t)m));
	line[len++] = '\n';
	int saved = errno;
	(void)!write(2, line, len);
	errno = saved;
}
