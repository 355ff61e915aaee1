/* Internal interfaces of libvfiolab-preload.so (native/README.md). Everything here is hidden; only the interposed
 * libc entry points (interpose.c, paths.c) are exported. */
#ifndef VFL_H
#define VFL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <dirent.h>
#include <stdio.h>

#include "vfiolab-wire.h"

#define VFL_EXPORT __attribute__((visibility("default")))

/* The libc functions the preload wraps, found with dlsym(RTLD_NEXT) once (real.c). Internal code calls these,
 * never the interposed names, so nothing the preload does re-enters itself. */
struct vfl_real {
	int (*open)(const char *, int, ...);
	int (*openat)(int, const char *, int, ...);
	int (*close)(int);
	int (*dup)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*fcntl)(int, int, ...);
	int (*ioctl)(int, unsigned long, ...);
	void *(*mmap)(void *, size_t, int, int, int, off_t);
	int (*munmap)(void *, size_t);
	ssize_t (*pread)(int, void *, size_t, off_t);
	ssize_t (*pwrite)(int, const void *, size_t, off_t);
	ssize_t (*readlink)(const char *, char *, size_t);
	ssize_t (*readlinkat)(int, const char *, char *, size_t);
	char *(*realpath)(const char *, char *);
	int (*stat)(const char *, struct stat *);
	int (*lstat)(const char *, struct stat *);
	int (*fstatat)(int, const char *, struct stat *, int);
	int (*xstat)(int, const char *, struct stat *);
	int (*lxstat)(int, const char *, struct stat *);
	int (*fxstatat)(int, int, const char *, struct stat *, int);
	int (*statx)(int, const char *, int, unsigned int, struct statx *);
	int (*access)(const char *, int);
	int (*faccessat)(int, const char *, int, int);
	DIR *(*opendir)(const char *);
	FILE *(*fopen)(const char *, const char *);
	int (*scandir)(const char *, struct dirent ***, int (*)(const struct dirent *),
		       int (*)(const struct dirent **, const struct dirent **));
};
extern struct vfl_real vfl_real;

/* Configuration read once from the environment (VFIOLAB_SOCKET, VFIOLAB_TIMEOUT_MS, VFIOLAB_TRACE). */
struct vfl_config {
	bool enabled; /* VFIOLAB_SOCKET is set: route VFIO calls */
	bool trace;
	int timeout_ms;
	char socket_path[108];
};
extern struct vfl_config vfl_config;

/* Resolves the real functions and reads the environment; cheap after the first call. */
void vfl_init(void);
void vfl_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* What every process sharing a connection's socket must agree on: whose turn it is to use the stream and whether
 * the stream can still be trusted. It lives in a MAP_SHARED page, so a forked child that inherited the fd waits for
 * its parent's round trip (and the other way round) instead of reading its reply. The mutex is robust: a process
 * killed in mid round trip leaves the stream mid-message, so the next locker marks it broken rather than hanging. */
struct vfl_shared {
	pthread_mutex_t lock;
	bool broken; /* the server closed it, a reply was garbage or late: -EIO from now on */
};

/* One connection to the server: an open VFIO file (shared by every fd duplicated from it) or a process's session.
 * `refs` counts the fd-table slots naming it plus lookups in progress; it is freed at zero. */
struct vfl_conn {
	int fd; /* the fd it was opened as: the session's, or the one used in the current round trip */
	uint64_t inode;
	struct vfl_shared *sh;
	int refs;                        /* guarded by the fd table's lock */
	struct vfl_conn *prev, *next;    /* every live file connection; guarded by the fd table's lock */
};

/* A reply: its header, and the payload copied into the caller's buffer. */
struct vfl_reply {
	struct vfiolab_wire_reply hdr;
	unsigned char payload[8 + 4096 + 8];
	size_t payload_len;
};

/* conn.c */
int vfl_dial(bool cloexec, int *fd_out, uint64_t *inode_out);
int vfl_round_trip_locked(struct vfl_conn *c, uint16_t op, const void *payload, size_t len, struct vfl_reply *r);
/* Through `fd`, one of the fds naming c (c->fd may be closed while a duplicate lives on). */
int vfl_round_trip(struct vfl_conn *c, int fd, uint16_t op, const void *payload, size_t len, struct vfl_reply *r);
struct vfl_conn *vfl_conn_new(int fd, uint64_t inode); /* NULL when out of memory */
void vfl_conn_free(struct vfl_conn *c);

/* session.c: the process's session connection and the server's root tree. */
size_t vfl_root(char *out, size_t cap); /* the root tree's path, no trailing slash */
int vfl_session_call(uint16_t op, const void *payload, size_t len, struct vfl_reply *r);
void vfl_session_after_fork_child(void);
void vfl_session_lock_for_fork(void);
void vfl_session_unlock_after_fork(bool child);

/* fdtable.c */
struct vfl_conn *vfl_fd_get(int fd);        /* a reference, or NULL when fd is not a live VFIO file */
void vfl_conn_put(struct vfl_conn *c);
int vfl_fd_install(int fd, struct vfl_conn *c, bool is_new);
void vfl_fd_forget(int fd);
void vfl_fd_dup(int oldfd, int newfd);
bool vfl_fd_any(void);

/* maps.c: device-region mappings this process made, for MUNMAP notices. */
void vfl_maps_add(uintptr_t addr, size_t len);
bool vfl_maps_remove(uintptr_t addr, size_t len);
void vfl_maps_lock_for_fork(void);
void vfl_maps_unlock_after_fork(bool child);

/* paths.c */
enum vfl_path_kind { VFL_PATH_PLAIN, VFL_PATH_TREE, VFL_PATH_DEV_VFIO_FILE };
enum vfl_path_kind vfl_classify(const char *path, char *norm, size_t cap);
const char *vfl_rewrite(const char *path, char *buf, size_t cap);
size_t vfl_strip_root(char *s, size_t len);

/* files.c */
int vfl_open_dev(const char *norm, int flags);

/* session.c: the process has a session before its first VFIO file (the server learns its maps at HELLO). */
void vfl_session_ensure(void);

#endif
