/* The process's session connection (HELLO): opened by the constructor, again in a forked child on its first call
 * (getpid() differs from the pid that opened it) and again after the server was restarted. It names the server's
 * root tree, which path calls are rewritten into. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vfl.h"

/* session_lock guards every field below and is held across a session round trip. */
static pthread_mutex_t session_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vfl_conn *session; /* its shared lock is unused: session_lock serialises the session */
static bool session_open;
static pid_t session_pid;
static char root[4096];
static bool root_known;

/* Lets the server read and write this process's memory where a Yama ptrace scope of 1 would refuse a process
 * that is not our ancestor: the server is named as our tracer (no effect, and no error that matters, without Yama). */
static void allow_server_access(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof cred;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid > 0)
		(void)prctl(PR_SET_PTRACER, (unsigned long)cred.pid, 0, 0, 0);
}

static void drop_session_locked(void)
{
	if (session_open) {
		vfl_real.close(session->fd);
		vfl_conn_free(session);
		session_open = false;
	}
}

/* Opens the session when there is none for this process, or when the last one broke. */
static int ensure_session_locked(void)
{
	if (session_open && session_pid == getpid() && !session->sh->broken)
		return 0;
	/* A forked child closes its copy of the parent's session (the parent keeps it); a broken one is replaced. */
	drop_session_locked();
	int fd;
	uint64_t inode;
	int rc = vfl_dial(true, &fd, &inode);
	if (rc < 0)
		return rc;
	session = vfl_conn_new(fd, inode);
	if (session == NULL) {
		vfl_real.close(fd);
		return -ENOMEM;
	}
	session_open = true;
	session_pid = getpid();
	allow_server_access(fd);
	struct vfiolab_hello_request req = { .preload_version = VFIOLAB_WIRE_VERSION, .client_socket_inode = inode };
	struct vfl_reply r;
	rc = vfl_round_trip_locked(session, VFIOLAB_OP_HELLO, &req, sizeof req, &r);
	if (rc == 0 && r.hdr.result < 0)
		rc = (int)r.hdr.result;
	if (rc == 0) {
		/* payload: u32 server_version, u32 page_size, root path NUL-terminated */
		size_t n = r.payload_len;
		const char *path = (const char *)r.payload + 8;
		size_t plen = n > 8 ? strnlen(path, n - 8) : 0;
		if (n <= 8 || plen == n - 8 || plen == 0 || path[0] != '/' || plen >= sizeof root)
			rc = -EPROTO;
		else {
			memcpy(root, path, plen + 1);
			while (plen > 1 && root[plen - 1] == '/')
				root[--plen] = '\0';
			root_known = true;
		}
	}
	if (rc < 0) {
		vfl_trace("HELLO to %s failed: %s", vfl_config.socket_path, strerror(-rc));
		drop_session_locked();
	}
	return rc;
}

size_t vfl_root(char *out, size_t cap)
{
	pthread_mutex_lock(&session_lock);
	(void)ensure_session_locked();
	if (!root_known) {
		/* No server has answered: the tree a server at this socket would write (it may not exist: ENOENT). */
		snprintf(root, sizeof root, "%s.root", vfl_config.socket_path);
		root_known = true;
	}
	size_t n = strlen(root);
	if (n >= cap)
		n = 0;
	memcpy(out, root, n);
	out[n] = '\0';
	pthread_mutex_unlock(&session_lock);
	return n;
}

int vfl_session_call(uint16_t op, const void *payload, size_t len, struct vfl_reply *r)
{
	pthread_mutex_lock(&session_lock);
	int rc = ensure_session_locked();
	if (rc == 0)
		rc = vfl_round_trip_locked(session, op, payload, len, r);
	pthread_mutex_unlock(&session_lock);
	return rc;
}

void vfl_session_ensure(void)
{
	pthread_mutex_lock(&session_lock);
	(void)ensure_session_locked();
	pthread_mutex_unlock(&session_lock);
}

void vfl_session_lock_for_fork(void)
{
	pthread_mutex_lock(&session_lock);
}

void vfl_session_unlock_after_fork(bool child)
{
	if (child)
		pthread_mutex_init(&session_lock, NULL);
	else
		pthread_mutex_unlock(&session_lock);
}

__attribute__((constructor)) static void vfl_constructor(void)
{
	vfl_init();
	if (!vfl_config.enabled)
		return;
	pthread_mutex_lock(&session_lock);
	int rc = ensure_session_locked();
	pthread_mutex_unlock(&session_lock);
	vfl_trace("session to %s: %s", vfl_config.socket_path, rc == 0 ? root : strerror(-rc));
}
