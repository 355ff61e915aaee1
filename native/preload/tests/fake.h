/* What the fake server (fake-server.c) answers beyond the contract's ops: ioctl requests of its own that let the
 * preload's tests see the server's side (which file a connection is, who asked, what arrived) and make it
 * misbehave on purpose. None of these numbers is a VFIO request. */
#ifndef FAKE_H
#define FAKE_H

#include <stdint.h>

#define FAKE_IOCTL(n) (0x46000000u | (n)) /* 'F' << 24: outside every VFIO number */

#define FAKE_WHOAMI FAKE_IOCTL(1)      /* result: the id of the file this connection is */
#define FAKE_PID FAKE_IOCTL(2)         /* result: the pid the request header named */
#define FAKE_STATS FAKE_IOCTL(3)       /* writes struct fake_stats at arg (process_vm_writev); result 0 */
#define FAKE_ECHO_ARG FAKE_IOCTL(4)    /* result: arg's low 31 bits */
#define FAKE_MUTE FAKE_IOCTL(5)        /* never answers */
#define FAKE_DIE FAKE_IOCTL(6)         /* the server exits at once */
#define FAKE_BAD_MAGIC FAKE_IOCTL(7)   /* garbage replies, one kind each */
#define FAKE_BAD_OP FAKE_IOCTL(8)
#define FAKE_BAD_LENGTH FAKE_IOCTL(9)
#define FAKE_BAD_RESULT FAKE_IOCTL(10)
#define FAKE_BAD_FLAGS FAKE_IOCTL(11)
#define FAKE_HALF_REPLY FAKE_IOCTL(12) /* half a header, then the connection closes */
#define FAKE_BIG_RESULT FAKE_IOCTL(13) /* result 2^40: not an int */
#define FAKE_BAD_TOKEN FAKE_IOCTL(14)  /* NEW_FILE naming a token that ATTACH refuses */

#define FAKE_GROUP_GET_DEVICE_FD 0x3b6a /* VFIO_GROUP_GET_DEVICE_FD: answered NEW_FILE */

struct fake_stats {
	uint64_t hellos;         /* HELLO requests */
	uint64_t requests;       /* every request */
	uint64_t live_files;     /* connections that are files (OPEN or ATTACH) and still open */
	uint64_t munmaps;        /* MUNMAP notices, on a session connection */
	uint64_t munmap_addr, munmap_len;
	uint64_t commits;        /* MMAP_COMMIT */
	uint64_t commit_addr;
	uint64_t pwrite_sum;     /* sum of the bytes PWRITE read from the client */
	uint64_t misplaced;      /* ops that arrived on the wrong kind of connection */
};

#endif
