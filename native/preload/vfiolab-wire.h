/* The serve protocol between libvfiolab-preload.so and `vfiolab serve` (docs/serve-protocol.md).
 * One header for both sides: the server's C# constants are checked against it by a test. */
#ifndef VFIOLAB_WIRE_H
#define VFIOLAB_WIRE_H

#include <stdint.h>

#define VFIOLAB_WIRE_VERSION 1u
#define VFIOLAB_WIRE_REQUEST_MAGIC 0x514c4656u /* "VFLQ" little-endian */
#define VFIOLAB_WIRE_REPLY_MAGIC 0x524c4656u   /* "VFLR" little-endian */
#define VFIOLAB_WIRE_MAX_PAYLOAD 65536u

enum vfiolab_wire_op {
	VFIOLAB_OP_HELLO = 1,
	VFIOLAB_OP_OPEN = 2,
	VFIOLAB_OP_ATTACH = 3,
	VFIOLAB_OP_IOCTL = 16,
	VFIOLAB_OP_PREAD = 17,
	VFIOLAB_OP_PWRITE = 18,
	VFIOLAB_OP_MMAP_PREPARE = 19,
	VFIOLAB_OP_MMAP_COMMIT = 20,
	VFIOLAB_OP_MUNMAP = 21,
	/* vfiolab ctl (64 and up): the operator's requests, from a process that is no client; not sent by the preload. */
	VFIOLAB_OP_CTL_STATUS = 64,
	VFIOLAB_OP_CTL_CHECK = 65,
	VFIOLAB_OP_CTL_SIZING = 66,
	VFIOLAB_OP_CTL_DMA = 67,
	VFIOLAB_OP_CTL_RESET = 68,
	VFIOLAB_OP_CTL_UNPLUG = 69,
	VFIOLAB_OP_CTL_RELEASE = 70,
	VFIOLAB_OP_CTL_RECORD_SAVE = 71,
};

/* Reply flags. */
#define VFIOLAB_REPLY_NEW_FILE 1u /* payload: u64 token to ATTACH on a new connection */

struct vfiolab_wire_request {
	uint32_t magic;
	uint16_t version;
	uint16_t op;
	uint32_t length; /* payload bytes that follow */
	int32_t pid;     /* the caller's getpid() */
	uint64_t seq;
};

struct vfiolab_wire_reply {
	uint32_t magic;
	uint16_t version;
	uint16_t op;
	uint32_t length; /* payload bytes that follow */
	uint32_t flags;
	int64_t result; /* >= 0, or -errno */
};

_Static_assert(sizeof(struct vfiolab_wire_request) == 24, "request header is 24 bytes");
_Static_assert(sizeof(struct vfiolab_wire_reply) == 24, "reply header is 24 bytes");

/* Payloads (packed little-endian; paths follow the fixed part, NUL-terminated). */
struct vfiolab_hello_request {
	uint32_t preload_version;
	uint32_t reserved;
	uint64_t client_socket_inode;
};
struct vfiolab_hello_reply {
	uint32_t server_version;
	uint32_t page_size;
	/* char root[]: NUL-terminated */
};
struct vfiolab_open_request {
	uint32_t open_flags;
	uint32_t reserved;
	uint64_t client_socket_inode;
	/* char path[]: NUL-terminated, absolute */
};
struct vfiolab_attach_request {
	uint64_t token;
	uint64_t client_socket_inode;
};
struct vfiolab_ioctl_request {
	uint32_t request;
	uint32_t reserved;
	uint64_t arg;
};
struct vfiolab_rw_request { /* PREAD, PWRITE */
	uint64_t buf;
	uint64_t count;
	uint64_t offset;
};
struct vfiolab_mmap_prepare_request {
	uint64_t length;
	uint32_t prot;
	uint32_t flags;
	uint64_t offset;
};
struct vfiolab_mmap_prepare_reply {
	uint64_t file_offset;
	/* char path[]: NUL-terminated */
};
struct vfiolab_mmap_commit_request {
	uint64_t addr;
	uint64_t length;
	uint32_t prot;
	uint32_t flags;
	uint64_t offset;
};
struct vfiolab_munmap_request {
	uint64_t addr;
	uint64_t length;
};

#endif
