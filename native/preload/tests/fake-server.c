/* A fake `vfiolab serve` for the preload's own tests: the contract's framing and ops (docs/serve-protocol.md),
 * answered from a few tables rather than a model, plus the requests of fake.h. Single-threaded; one request per
 * readable connection per turn. Usage: fake-server SOCKET TREE (TREE is created and named in HELLO). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "fake.h"
#include "vfiolab-wire.h"

#define MAX_CONNS 256

enum kind { FRESH, SESSION, FILE_CONN };

struct conn {
	int fd;
	enum kind kind;
	uint64_t file_id;
	int pending_device;
};

static struct conn conns[MAX_CONNS];
static int nconns;
static struct fake_stats stats;
static char tree[1024];
static uint64_t next_file_id = 100;
static uint64_t tokens[64];
static int ntokens;

static void die(const char *what)
{
	fprintf(stderr, "fake-server: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void put(const char *rel, const char *content)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/%s", tree, rel);
	FILE *f = fopen(p, "w");
	if (f == NULL)
		die(p);
	fputs(content, f);
	fclose(f);
}

static void dir(const char *rel)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/%s", tree, rel);
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		die(p);
}

static void link_to(const char *target, const char *rel)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "%s/%s", tree, rel);
	if (symlink(target, p) < 0 && errno != EEXIST)
		die(p);
}

/* The tree a host with one device, 0000:00:03.0 in group 5, would have. */
static void write_tree(void)
{
	const char *dirs[] = { "", "dev", "dev/vfio", "sys", "sys/kernel", "sys/kernel/iommu_groups",
			       "sys/kernel/iommu_groups/5", "sys/kernel/iommu_groups/5/devices", "sys/bus", "sys/bus/pci",
			       "sys/bus/pci/devices", "sys/bus/pci/drivers", "sys/bus/pci/drivers/vfio-pci", "sys/devices",
			       "sys/devices/pci0000:00", "sys/devices/pci0000:00/0000:00:03.0" };
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
		dir(dirs[i]);
	put("dev/vfio/vfio", "");
	put("dev/vfio/5", "");
	put("sys/kernel/iommu_groups/5/type", "DMA\n");
	put("sys/devices/pci0000:00/0000:00:03.0/vendor", "0x1234\n");
	link_to("../../../../devices/pci0000:00/0000:00:03.0", "sys/kernel/iommu_groups/5/devices/0000:00:03.0");
	link_to("../../../devices/pci0000:00/0000:00:03.0", "sys/bus/pci/devices/0000:00:03.0");
	link_to("../../../kernel/iommu_groups/5", "sys/devices/pci0000:00/0000:00:03.0/iommu_group");
	/* an absolute link into the tree, as a server may write: readlink must give it back without the tree */
	char abs[PATH_MAX];
	snprintf(abs, sizeof abs, "%s/sys/bus/pci/drivers/vfio-pci", tree);
	link_to(abs, "sys/devices/pci0000:00/0000:00:03.0/driver");
}

static int read_full(int fd, void *buf, size_t len)
{
	unsigned char *p = buf;
	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void send_reply(struct conn *c, uint16_t op, int64_t result, uint32_t flags, const void *payload, uint32_t len)
{
	struct vfiolab_wire_reply h = { VFIOLAB_WIRE_REPLY_MAGIC, VFIOLAB_WIRE_VERSION, op, len, flags, result };
	(void)!write(c->fd, &h, sizeof h);
	if (len > 0)
		(void)!write(c->fd, payload, len);
}

/* OPEN or ATTACH succeeded: the connection is now a file. */
static void become_file(struct conn *c)
{
	c->kind = FILE_CONN;
	c->file_id = next_file_id++;
	stats.live_files++;
}

static void drop(int i)
{
	if (conns[i].kind == FILE_CONN)
		stats.live_files--;
	close(conns[i].fd);
	conns[i] = conns[--nconns];
}

static int vm_write(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	struct iovec local = { (void *)buf, len }, remote = { (void *)(uintptr_t)addr, len };
	return process_vm_writev(pid, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -EFAULT;
}

static int vm_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };
	return process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -EFAULT;
}

/* Answers one IOCTL; false when the connection is to be dropped. */
static bool do_ioctl(struct conn *c, const struct vfiolab_wire_request *h, const struct vfiolab_ioctl_request *q)
{
	struct vfiolab_wire_reply bad = { VFIOLAB_WIRE_REPLY_MAGIC, VFIOLAB_WIRE_VERSION, VFIOLAB_OP_IOCTL, 0, 0, 0 };
	switch (q->request) {
	case 0x3b64: /* VFIO_GET_API_VERSION */
		send_reply(c, h->op, 0, 0, NULL, 0);
		return true;
	case FAKE_GROUP_GET_DEVICE_FD:
	case FAKE_BAD_TOKEN: {
		uint64_t token = 0x7000 + (uint64_t)ntokens;
		if (q->request == FAKE_GROUP_GET_DEVICE_FD && ntokens < 64)
			tokens[ntokens++] = token;
		send_reply(c, h->op, 0, VFIOLAB_REPLY_NEW_FILE, &token, sizeof token);
		return true;
	}
	case FAKE_WHOAMI:
		send_reply(c, h->op, (int64_t)c->file_id, 0, NULL, 0);
		return true;
	case FAKE_PID:
		send_reply(c, h->op, h->pid, 0, NULL, 0);
		return true;
	case FAKE_STATS:
		send_reply(c, h->op, vm_write(h->pid, q->arg, &stats, sizeof stats), 0, NULL, 0);
		return true;
	case FAKE_ECHO_ARG:
		send_reply(c, h->op, (int64_t)(q->arg & 0x7fffffff), 0, NULL, 0);
		return true;
	case FAKE_MUTE:
		return true;
	case FAKE_DIE:
		exit(0);
	case FAKE_BAD_MAGIC: bad.magic = VFIOLAB_WIRE_REQUEST_MAGIC; break;
	case FAKE_BAD_OP: bad.op = VFIOLAB_OP_PREAD; break;
	case FAKE_BAD_LENGTH: bad.length = VFIOLAB_WIRE_MAX_PAYLOAD + 1; break;
	case FAKE_BAD_RESULT: bad.result = -5000; break;
	case FAKE_BAD_FLAGS: bad.flags = 0x80; break;
	case FAKE_BIG_RESULT: bad.result = (int64_t)1 << 40; break;
	case FAKE_HALF_REPLY:
		(void)!write(c->fd, &bad, sizeof bad / 2);
		return false;
	default:
		send_reply(c, h->op, -ENOTTY, 0, NULL, 0);
		return true;
	}
	(void)!write(c->fd, &bad, sizeof bad);
	return true;
}

static bool do_mmap_prepare(struct conn *c, const struct vfiolab_wire_request *h,
			    const struct vfiolab_mmap_prepare_request *q)
{
	if ((q->flags & MAP_SHARED) == 0 || q->offset != 0 || q->length == 0 || q->length > (1u << 24)) {
		send_reply(c, h->op, -EINVAL, 0, NULL, 0);
		return true;
	}
	struct { uint64_t file_offset; char path[PATH_MAX]; } r = { 0, "" };
	snprintf(r.path, sizeof r.path, "%s/.region-%llu", tree, (unsigned long long)c->file_id);
	int fd = open(r.path, O_RDWR | O_CREAT, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)q->length) < 0)
		die(r.path);
	close(fd);
	send_reply(c, h->op, 0, 0, &r, (uint32_t)(8 + strlen(r.path) + 1));
	return true;
}

/* One request from connection i; false when it is to be dropped. */
static bool serve_one(struct conn *c)
{
	struct vfiolab_wire_request h;
	unsigned char payload[4200];
	if (read_full(c->fd, &h, sizeof h) < 0)
		return false;
	stats.requests++;
	if (h.magic != VFIOLAB_WIRE_REQUEST_MAGIC || h.version != VFIOLAB_WIRE_VERSION || h.length > sizeof payload) {
		send_reply(c, h.op, -EPROTO, 0, NULL, 0);
		return false;
	}
	memset(payload, 0, sizeof payload);
	if (read_full(c->fd, payload, h.length) < 0)
		return false;
	switch (h.op) {
	case VFIOLAB_OP_HELLO: {
		stats.hellos++;
		c->kind = SESSION;
		struct { uint32_t version, page; char root[PATH_MAX]; } r = { 1, 4096, "" };
		snprintf(r.root, sizeof r.root, "%s", tree);
		send_reply(c, h.op, 0, 0, &r, (uint32_t)(8 + strlen(r.root) + 1));
		return true;
	}
	case VFIOLAB_OP_OPEN: {
		const char *path = (const char *)payload + sizeof(struct vfiolab_open_request);
		int64_t result = -ENOENT;
		if (strcmp(path, "/dev/vfio/vfio") == 0 || strcmp(path, "/dev/vfio/5") == 0)
			result = 0;
		else if (strcmp(path, "/dev/vfio/busy") == 0)
			result = -EBUSY;
		if (result == 0)
			become_file(c);
		send_reply(c, h.op, result, 0, NULL, 0);
		return true;
	}
	case VFIOLAB_OP_ATTACH: {
		const struct vfiolab_attach_request *q = (const void *)payload;
		int64_t result = -EINVAL;
		for (int i = 0; i < ntokens; i++)
			if (tokens[i] == q->token && q->token != 0) {
				tokens[i] = 0;
				result = 0;
			}
		if (result == 0)
			become_file(c);
		send_reply(c, h.op, result, 0, NULL, 0);
		return true;
	}
	case VFIOLAB_OP_MUNMAP: {
		const struct vfiolab_munmap_request *q = (const void *)payload;
		if (c->kind != SESSION)
			stats.misplaced++;
		stats.munmaps++;
		stats.munmap_addr = q->addr;
		stats.munmap_len = q->length;
		send_reply(c, h.op, 0, 0, NULL, 0);
		return true;
	}
	default:
		break;
	}
	if (c->kind != FILE_CONN) {
		stats.misplaced++;
		send_reply(c, h.op, -EBADF, 0, NULL, 0);
		return true;
	}
	switch (h.op) {
	case VFIOLAB_OP_IOCTL:
		return do_ioctl(c, &h, (const void *)payload);
	case VFIOLAB_OP_PREAD: {
		const struct vfiolab_rw_request *q = (const void *)payload;
		unsigned char buf[4096];
		size_t n = q->count < sizeof buf ? q->count : sizeof buf;
		for (size_t i = 0; i < n; i++)
			buf[i] = (unsigned char)(q->offset + i);
		int rc = vm_write(h.pid, q->buf, buf, n);
		send_reply(c, h.op, rc < 0 ? rc : (int64_t)n, 0, NULL, 0);
		return true;
	}
	case VFIOLAB_OP_PWRITE: {
		const struct vfiolab_rw_request *q = (const void *)payload;
		unsigned char buf[4096];
		size_t n = q->count < sizeof buf ? q->count : sizeof buf;
		int rc = vm_read(h.pid, q->buf, buf, n);
		if (rc == 0) {
			stats.pwrite_sum = 0;
			for (size_t i = 0; i < n; i++)
				stats.pwrite_sum += buf[i];
		}
		send_reply(c, h.op, rc < 0 ? rc : (int64_t)n, 0, NULL, 0);
		return true;
	}
	case VFIOLAB_OP_MMAP_PREPARE:
		return do_mmap_prepare(c, &h, (const void *)payload);
	case VFIOLAB_OP_MMAP_COMMIT: {
		const struct vfiolab_mmap_commit_request *q = (const void *)payload;
		stats.commits++;
		stats.commit_addr = q->addr;
		send_reply(c, h.op, 0, 0, NULL, 0);
		return true;
	}
	default:
		send_reply(c, h.op, -EPROTO, 0, NULL, 0);
		return false;
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: fake-server SOCKET TREE\n");
		return 2;
	}
	if (strlen(argv[2]) >= sizeof tree) {
		fprintf(stderr, "fake-server: TREE path too long\n");
		return 2;
	}
	strcpy(tree, argv[2]);
	write_tree();
	int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", argv[1]);
	unlink(argv[1]);
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 64) < 0)
		die("listen");
	for (;;) {
		struct pollfd p[MAX_CONNS + 1];
		p[0] = (struct pollfd){ .fd = ls, .events = POLLIN };
		for (int i = 0; i < nconns; i++)
			p[i + 1] = (struct pollfd){ .fd = conns[i].fd, .events = POLLIN };
		int n = nconns;
		if (poll(p, (nfds_t)n + 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		for (int i = n - 1; i >= 0; i--)
			if ((p[i + 1].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !serve_one(&conns[i]))
				drop(i);
		if ((p[0].revents & POLLIN) != 0 && nconns < MAX_CONNS) {
			int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				conns[nconns++] = (struct conn){ .fd = fd, .kind = FRESH };
		}
	}
}
