/* One connection to `vfiolab serve`: dialling it, and one request/reply round trip with the reply checked before
 * anything of it is believed (docs/serve-protocol.md, "Framing"). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vfl.h"

static uint64_t next_seq;

struct vfl_conn *vfl_conn_new(int fd, uint64_t inode)
{
	struct vfl_conn *c = calloc(1, sizeof *c);
	if (c == NULL)
		return NULL;
	void *page = vfl_real.mmap(NULL, sizeof *c->sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED) {
		free(c);
		return NULL;
	}
	c->sh = page;
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&c->sh->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	c->fd = fd;
	c->inode = inode;
	return c;
}

/* Only this process's view goes: a process that shares the socket keeps its own mapping of the shared page. */
void vfl_conn_free(struct vfl_conn *c)
{
	vfl_real.munmap(c->sh, sizeof *c->sh);
	free(c);
}

int vfl_dial(bool cloexec, int *fd_out, uint64_t *inode_out)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | (cloexec ? SOCK_CLOEXEC : 0), 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, vfl_config.socket_path, strlen(vfl_config.socket_path) + 1);
	int rc;
	do
		rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
	while (rc < 0 && errno == EINTR);
	struct stat st;
	if (rc < 0 || fstat(fd, &st) < 0) {
		int err = errno;
		vfl_real.close(fd);
		return -err;
	}
	*fd_out = fd;
	*inode_out = (uint64_t)st.st_ino;
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for `events` on fd until the deadline: 0, -ETIMEDOUT, or -errno. */
static int wait_for(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = fd, .events = events };
		int n = poll(&p, 1, left > 0x7fffffff ? 0x7fffffff : (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static int send_all(int fd, const void *buf, size_t len, int64_t deadline)
{
	const unsigned char *p = buf;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int w = wait_for(fd, POLLOUT, deadline);
			if (w < 0)
				return w;
			continue;
		}
		return -EIO; /* EPIPE, ECONNRESET: the server is gone */
	}
	return 0;
}

/* Reads exactly len bytes (or discards them when buf is NULL): 0, -EIO at end of stream, -ETIMEDOUT. */
static int recv_all(int fd, void *buf, size_t len, int64_t deadline)
{
	unsigned char sink[256];
	unsigned char *p = buf;
	while (len > 0) {
		size_t want = p != NULL ? len : (len < sizeof sink ? len : sizeof sink);
		ssize_t n = recv(fd, p != NULL ? (void *)p : (void *)sink, want, MSG_DONTWAIT);
		if (n > 0) {
			if (p != NULL)
				p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0)
			return -EIO;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int w = wait_for(fd, POLLIN, deadline);
			if (w < 0)
				return w;
			continue;
		}
		return -EIO;
	}
	return 0;
}

static const char *op_name(uint16_t op)
{
	switch (op) {
	case VFIOLAB_OP_HELLO: return "HELLO";
	case VFIOLAB_OP_OPEN: return "OPEN";
	case VFIOLAB_OP_ATTACH: return "ATTACH";
	case VFIOLAB_OP_IOCTL: return "IOCTL";
	case VFIOLAB_OP_PREAD: return "PREAD";
	case VFIOLAB_OP_PWRITE: return "PWRITE";
	case VFIOLAB_OP_MMAP_PREPARE: return "MMAP_PREPARE";
	case VFIOLAB_OP_MMAP_COMMIT: return "MMAP_COMMIT";
	case VFIOLAB_OP_MUNMAP: return "MUNMAP";
	default: return "?";
	}
}

/* A reply is believed only when its header is one the server may send for this request: anything else leaves
 * the stream at an unknown position, so the connection is given up (-EPROTO now, -EIO after). */
static bool reply_header_valid(const struct vfiolab_wire_reply *h, uint16_t op)
{
	if (h->magic != VFIOLAB_WIRE_REPLY_MAGIC || h->version != VFIOLAB_WIRE_VERSION || h->op != op)
		return false;
	if (h->length > VFIOLAB_WIRE_MAX_PAYLOAD)
		return false;
	if (h->result < -4095)
		return false;
	if ((h->flags & ~VFIOLAB_REPLY_NEW_FILE) != 0)
		return false;
	if ((h->flags & VFIOLAB_REPLY_NEW_FILE) != 0 && (op != VFIOLAB_OP_IOCTL || h->result < 0 || h->length < 8))
		return false;
	return true;
}

int vfl_round_trip_locked(struct vfl_conn *c, uint16_t op, const void *payload, size_t len, struct vfl_reply *r)
{
	if (c->sh->broken)
		return -EIO;
	int64_t deadline = now_ms() + vfl_config.timeout_ms;
	struct vfiolab_wire_request h = {
		.magic = VFIOLAB_WIRE_REQUEST_MAGIC,
		.version = VFIOLAB_WIRE_VERSION,
		.op = op,
		.length = (uint32_t)len,
		.pid = (int32_t)getpid(),
		.seq = __atomic_add_fetch(&next_seq, 1, __ATOMIC_RELAXED),
	};
	int rc = send_all(c->fd, &h, sizeof h, deadline);
	if (rc == 0 && len > 0)
		rc = send_all(c->fd, payload, len, deadline);
	if (rc == 0)
		rc = recv_all(c->fd, &r->hdr, sizeof r->hdr, deadline);
	if (rc == 0 && !reply_header_valid(&r->hdr, op))
		rc = -EPROTO;
	if (rc == 0) {
		size_t keep = r->hdr.length < sizeof r->payload ? r->hdr.length : sizeof r->payload;
		r->payload_len = keep;
		rc = recv_all(c->fd, r->payload, keep, deadline);
		if (rc == 0 && r->hdr.length > keep)
			rc = recv_all(c->fd, NULL, r->hdr.length - keep, deadline);
	}
	if (rc < 0) {
		c->sh->broken = true;
		vfl_trace("%s on fd %d seq %llu: %s", op_name(op), c->fd, (unsigned long long)h.seq, strerror(-rc));
		return rc;
	}
	vfl_trace("%s on fd %d seq %llu -> %lld%s", op_name(op), c->fd, (unsigned long long)h.seq,
		  (long long)r->hdr.result, (r->hdr.flags & VFIOLAB_REPLY_NEW_FILE) ? " NEW_FILE" : "");
	return 0;
}

int vfl_round_trip(struct vfl_conn *c, int fd, uint16_t op, const void *payload, size_t len, struct vfl_reply *r)
{
	if (pthread_mutex_lock(&c->sh->lock) == EOWNERDEAD) {
		/* its holder died in mid round trip: where the stream stands is unknown */
		c->sh->broken = true;
		pthread_mutex_consistent(&c->sh->lock);
	}
	c->fd = fd;
	int rc = vfl_round_trip_locked(c, op, payload, len, r);
	pthread_mutex_unlock(&c->sh->lock);
	return rc;
}
