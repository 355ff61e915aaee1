/*
 * rig-agent: one process of a scenario on the real kernel, driven by `vfiolab conform-guest`.
 *
 * A .NET process cannot fork (its other threads do not follow it), so a scenario that forks runs its processes here:
 * a single-threaded static program that makes the system calls the runner asks for, one framed request at a time, and
 * forks for real when asked, the child becoming a second agent. Usage: rig-agent SOCKET-PATH. Each agent connects to
 * the runner's listening Unix socket and first sends a reply frame whose result is its pid; a forked child closes the
 * connection it inherited and connects anew, so every process has a connection of its own.
 *
 * Frames (native byte order, x86-64):
 *   request: u32 op, u32 length of the data that follows, i64 arg[6], then the data
 *   reply:   i64 result (>= 0, or -errno), u32 length of the data that follows, u32 0, then the data
 * The ops are listed in enum op; the runner's side is src/VfioLab.Cli/Commands/Conform/AgentProcess.cs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/capability.h>

enum op {
    OP_OPEN = 1,       /* data: path                      -> fd */
    OP_CLOSE = 2,      /* arg0 fd                         -> 0 */
    OP_IOCTL_PTR = 3,  /* arg0 fd, arg1 request, data: the struct's bytes -> ret, data: the bytes after the call */
    OP_IOCTL_VAL = 4,  /* arg0 fd, arg1 request, arg2 value -> ret */
    OP_PREAD = 5,      /* arg0 fd, arg1 offset, arg2 length -> count, data */
    OP_PWRITE = 6,     /* arg0 fd, arg1 offset, data      -> count */
    OP_MMAP = 7,       /* arg0..5 addr, length, prot, flags, fd, offset -> address */
    OP_MUNMAP = 8,     /* arg0 addr, arg1 length          -> 0 */
    OP_READ_MEM = 9,   /* arg0 addr, arg1 length          -> 0 (-EFAULT when any byte is unreachable), data */
    OP_WRITE_MEM = 10, /* arg0 addr, data                 -> 0 or -EFAULT */
    OP_FORK = 11,      /*                                 -> the child's pid; the child connects on its own */
    OP_EXIT = 12,      /* no reply: _exit(0) */
    OP_LOCKED_VM = 13, /*                                 -> VmLck of /proc/self/status in bytes */
    OP_MEMLOCK = 14,   /* arg0 bytes (all ones: unlimited) -> 0: setrlimit(RLIMIT_MEMLOCK), soft and hard */
    OP_CAP_IPC_LOCK = 15, /* arg0 0 or 1                  -> 0: CAP_IPC_LOCK dropped from or raised in the effective set */
    OP_EVENTFD = 16,   /*                                 -> a non-blocking eventfd */
    OP_EVENTFD_READ = 17, /* arg0 fd                      -> the count, or -EAGAIN */
    OP_POLL_IN = 18,   /* arg0 fd, arg1 milliseconds      -> 1 when readable in time, 0 when not */
};

struct request {
    uint32_t op;
    uint32_t length;
    int64_t arg[6];
};

struct reply {
    int64_t result;
    uint32_t length;
    uint32_t zero;
};

#define MAX_DATA (64u << 20)

static const char *socket_path;
static int conn = -1;
static unsigned char *buffer;

static void die(const char *what)
{
    fprintf(stderr, "rig-agent %d: %s: %s\n", (int)getpid(), what, strerror(errno));
    _exit(2);
}

static void full_read(void *p, size_t n)
{
    unsigned char *q = p;
    while (n > 0) {
        ssize_t r = read(conn, q, n);
        if (r == 0)
            _exit(0); /* the runner went away: nothing left to do */
        if (r < 0) {
            if (errno == EINTR)
                continue;
            die("read request");
        }
        q += r;
        n -= (size_t)r;
    }
}

static void full_write(const void *p, size_t n)
{
    const unsigned char *q = p;
    while (n > 0) {
        ssize_t r = write(conn, q, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            die("write reply");
        }
        q += r;
        n -= (size_t)r;
    }
}

static void send_reply(int64_t result, const void *data, uint32_t length)
{
    struct reply r = { result, length, 0 };
    full_write(&r, sizeof r);
    if (length > 0)
        full_write(data, length);
}

static int64_t ret(long r)
{
    return r < 0 ? -(int64_t)errno : (int64_t)r;
}

static void connect_runner(void)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (strlen(socket_path) >= sizeof a.sun_path) {
        fprintf(stderr, "rig-agent: socket path too long\n");
        _exit(2);
    }
    strcpy(a.sun_path, socket_path);
    conn = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (conn < 0)
        die("socket");
    if (connect(conn, (struct sockaddr *)&a, sizeof a) < 0)
        die("connect");
    send_reply(getpid(), NULL, 0);
}

static int64_t locked_vm(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    int64_t result = -ENOENT;
    if (f == NULL)
        return -(int64_t)errno;
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long long kb;
        if (sscanf(line, "VmLck: %llu kB", &kb) == 1) {
            result = (int64_t)(kb * 1024);
            break;
        }
    }
    fclose(f);
    return result;
}

static int64_t cap_ipc_lock(int raise)
{
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) < 0)
        return -(int64_t)errno;
    if (raise)
        d[0].effective |= 1u << CAP_IPC_LOCK;
    else
        d[0].effective &= ~(1u << CAP_IPC_LOCK);
    h.version = _LINUX_CAPABILITY_VERSION_3;
    h.pid = 0;
    return ret(syscall(SYS_capset, &h, d));
}

static int64_t transfer(uint64_t addr, void *local_buf, size_t n, int write_it)
{
    struct iovec local = { local_buf, n }, remote = { (void *)(uintptr_t)addr, n };
    ssize_t r;
    if (n == 0)
        return 0;
    r = write_it ? process_vm_writev(getpid(), &local, 1, &remote, 1, 0) : process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
    if (r < 0)
        return -(int64_t)errno;
    return (size_t)r == n ? 0 : -EFAULT;
}

static void serve(void)
{
    for (;;) {
        struct request q;
        int64_t *a = q.arg;
        full_read(&q, sizeof q);
        if (q.length > MAX_DATA) {
            fprintf(stderr, "rig-agent: request of %u bytes\n", q.length);
            _exit(2);
        }
        full_read(buffer, q.length);
        switch (q.op) {
        case OP_OPEN:
            buffer[q.length] = 0;
            send_reply(ret(open((char *)buffer, O_RDWR | O_CLOEXEC)), NULL, 0);
            break;
        case OP_CLOSE:
            send_reply(ret(close((int)a[0])), NULL, 0);
            break;
        case OP_IOCTL_PTR: {
            int64_t r = ret(ioctl((int)a[0], (unsigned long)(uint32_t)a[1], buffer));
            send_reply(r, buffer, q.length);
            break;
        }
        case OP_IOCTL_VAL:
            send_reply(ret(ioctl((int)a[0], (unsigned long)(uint32_t)a[1], (unsigned long)a[2])), NULL, 0);
            break;
        case OP_PREAD: {
            uint64_t n = (uint64_t)a[2] > MAX_DATA ? MAX_DATA : (uint64_t)a[2];
            int64_t r = ret(pread((int)a[0], buffer, n, (off_t)a[1]));
            send_reply(r, buffer, r > 0 ? (uint32_t)r : 0);
            break;
        }
        case OP_PWRITE:
            send_reply(ret(pwrite((int)a[0], buffer, q.length, (off_t)a[1])), NULL, 0);
            break;
        case OP_MMAP: {
            void *p = mmap((void *)(uintptr_t)a[0], (size_t)a[1], (int)a[2], (int)a[3], (int)a[4], (off_t)a[5]);
            send_reply(p == MAP_FAILED ? -(int64_t)errno : (int64_t)(uintptr_t)p, NULL, 0);
            break;
        }
        case OP_MUNMAP:
            send_reply(ret(munmap((void *)(uintptr_t)a[0], (size_t)a[1])), NULL, 0);
            break;
        case OP_READ_MEM: {
            uint64_t n = (uint64_t)a[1];
            int64_t r = n > MAX_DATA ? -EINVAL : transfer((uint64_t)a[0], buffer, n, 0);
            send_reply(r, buffer, r == 0 ? (uint32_t)n : 0);
            break;
        }
        case OP_WRITE_MEM:
            send_reply(transfer((uint64_t)a[0], buffer, q.length, 1), NULL, 0);
            break;
        case OP_FORK: {
            pid_t child = fork();
            if (child == 0) {
                /* The inherited connection is the parent's: this process gets one of its own. */
                close(conn);
                connect_runner();
                break;
            }
            send_reply(ret(child), NULL, 0);
            break;
        }
        case OP_EXIT:
            _exit(0);
        case OP_LOCKED_VM:
            send_reply(locked_vm(), NULL, 0);
            break;
        case OP_MEMLOCK: {
            struct rlimit l;
            l.rlim_cur = l.rlim_max = (uint64_t)a[0] == UINT64_MAX ? RLIM_INFINITY : (rlim_t)a[0];
            send_reply(ret(setrlimit(RLIMIT_MEMLOCK, &l)), NULL, 0);
            break;
        }
        case OP_CAP_IPC_LOCK:
            send_reply(cap_ipc_lock(a[0] != 0), NULL, 0);
            break;
        case OP_EVENTFD:
            send_reply(ret(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)), NULL, 0);
            break;
        case OP_EVENTFD_READ: {
            uint64_t count;
            ssize_t r = read((int)a[0], &count, sizeof count);
            send_reply(r < 0 ? -(int64_t)errno : r != sizeof count ? -EIO : (int64_t)count, NULL, 0);
            break;
        }
        case OP_POLL_IN: {
            struct pollfd p = { (int)a[0], POLLIN, 0 };
            send_reply(ret(poll(&p, 1, (int)a[1])), NULL, 0);
            break;
        }
        default:
            send_reply(-EINVAL, NULL, 0);
            break;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: rig-agent SOCKET-PATH\n");
        return 2;
    }
    socket_path = argv[1];
    buffer = malloc(MAX_DATA + 1);
    if (buffer == NULL)
        die("malloc");
    connect_runner();
    serve();
    return 0;
}
