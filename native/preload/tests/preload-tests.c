/* The preload's own behaviour against the fake server: the fd table across dup, dup2, fork and close; the socket as
 * the fd; NEW_FILE and ATTACH; device mmaps and MUNMAP notices; path rewriting; a server gone, silent or talking
 * garbage; and every other call left alone. Run by tests/run.sh under LD_PRELOAD. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define VFIO_GET_API_VERSION 0x3b64

/* The fortified entry points a _FORTIFY_SOURCE build (QEMU's) calls. */
int __open_2(const char *, int);
int __open64_2(const char *, int);
int __openat_2(int, const char *, int);
int __openat64_2(int, const char *, int);

static int open_container(void)
{
	int fd = open("/dev/vfio/vfio", O_RDWR);
	CHECK(fd >= 0);
	return fd;
}

static int whoami(int fd)
{
	int id = ioctl(fd, FAKE_WHOAMI);
	CHECK(id >= 100);
	return id;
}

static void open_gives_the_socket_as_the_fd(void)
{
	int fd = open_container();
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode));
	CHECK(ioctl(fd, VFIO_GET_API_VERSION) == 0);
	whoami(fd);
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	CHECK(poll(&p, 1, 1000) == 1 && (p.revents & POLLOUT) != 0);
	struct fake_stats s = harness_stats(fd);
	CHECK(s.live_files == 1);
	CHECK(s.hellos == 1); /* the constructor's session */
	CHECK(s.misplaced == 0);
	CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) == 0);
	int cl = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	CHECK(cl >= 0 && (fcntl(cl, F_GETFD) & FD_CLOEXEC) != 0);
}

static void open_answers_the_servers_errno(void)
{
	int fd = open_container();
	CHECK_ERRNO(open("/dev/vfio/9", O_RDWR), ENOENT);
	CHECK_ERRNO(open("/dev/vfio/busy", O_RDWR), EBUSY);
	CHECK_ERRNO(openat(AT_FDCWD, "/dev/vfio/devices/vfio0", O_RDWR), ENOENT);
	harness_wait_live(fd, 1);
}

static void fortified_and_64_opens_are_routed(void)
{
	int fds[] = { __open_2("/dev/vfio/vfio", O_RDWR), __open64_2("/dev/vfio/5", O_RDWR),
		      __openat_2(AT_FDCWD, "/dev/vfio/vfio", O_RDWR), __openat64_2(-1, "/dev/vfio/5", O_RDWR),
		      open64("/dev/vfio/vfio", O_RDWR), openat(12345, "/dev//vfio/./5", O_RDWR) };
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
		CHECK(fds[i] >= 0);
		for (size_t j = 0; j < i; j++)
			CHECK(whoami(fds[i]) != whoami(fds[j]));
	}
	CHECK(harness_stats(fds[0]).live_files == 6);
}

static void duplicates_share_one_file(void)
{
	int fd = open_container();
	int id = whoami(fd);
	int a = dup(fd);
	int b = dup2(fd, 50);
	int c = dup3(fd, 51, O_CLOEXEC);
	int d = fcntl(fd, F_DUPFD_CLOEXEC, 60);
	int e = fcntl(fd, F_DUPFD, 70);
	CHECK(a >= 0 && b == 50 && c == 51 && d >= 60 && e >= 70);
	CHECK(whoami(a) == id && whoami(b) == id && whoami(c) == id && whoami(d) == id && whoami(e) == id);
	CHECK((fcntl(c, F_GETFD) & FD_CLOEXEC) != 0);
	CHECK(close(fd) == 0);
	CHECK_ERRNO(ioctl(fd, FAKE_WHOAMI), EBADF);
	CHECK(whoami(a) == id);
	int other = open_container();
	CHECK(harness_stats(other).live_files == 2);
	close(a);
	close(b);
	close(c);
	close(d);
	CHECK(whoami(e) == id);
	close(e);
	harness_wait_live(other, 1); /* the server sees the file released only when the last duplicate closes */
}

static void dup2_over_a_vfio_fd_releases_it(void)
{
	int a = open_container();
	int g = open("/dev/vfio/5", O_RDWR);
	CHECK(g >= 0);
	int ida = whoami(a);
	CHECK(dup2(a, g) == g);
	CHECK(whoami(g) == ida);
	harness_wait_live(a, 1);
	int p[2];
	CHECK(pipe(p) == 0);
	CHECK(dup2(p[0], g) == g);
	/* g is a pipe now: the kernel answers, and a VFIO request on a pipe is ENOTTY */
	CHECK_ERRNO(ioctl(g, VFIO_GET_API_VERSION), ENOTTY);
	int avail = -1;
	CHECK(ioctl(g, FIONREAD, &avail) == 0 && avail == 0);
	CHECK(whoami(a) == ida);
}

static void an_fd_closed_behind_the_preloads_back_is_forgotten(void)
{
	int keep = open_container();
	int fd = open_container();
	CHECK(syscall(SYS_close, fd) == 0);
	int p[2];
	CHECK(pipe(p) == 0);
	CHECK(p[0] == fd); /* the number is reused */
	uint64_t before = harness_stats(keep).requests;
	CHECK_ERRNO(ioctl(p[0], VFIO_GET_API_VERSION), ENOTTY);
	CHECK(harness_stats(keep).requests == before + 1); /* only the stats call itself reached the server */
}

static void fork_shares_files_and_reopens_the_session(void)
{
	int fd = open_container();
	int id = whoami(fd);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		CHECK(whoami(fd) == id);
		CHECK(ioctl(fd, FAKE_PID) == getpid());
		struct stat st;
		CHECK(stat("/dev/vfio/5", &st) == 0); /* a path call: the child's own session answers the root */
		CHECK(close(fd) == 0);
		_exit(0);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(ioctl(fd, FAKE_PID) == getpid());
	struct fake_stats s = harness_stats(fd);
	CHECK(s.live_files == 1); /* the child's close did not release the parent's file */
	CHECK(s.hellos == 2);
}

static void get_device_fd_attaches_a_new_connection(void)
{
	int g = open("/dev/vfio/5", O_RDWR);
	CHECK(g >= 0);
	int dev = ioctl(g, FAKE_GROUP_GET_DEVICE_FD, "0000:00:03.0");
	CHECK(dev >= 0 && dev != g);
	CHECK(whoami(dev) != whoami(g));
	CHECK((fcntl(dev, F_GETFD) & FD_CLOEXEC) != 0); /* as the kernel's GET_DEVICE_FD gives it */
	CHECK(harness_stats(g).live_files == 2);
	CHECK_ERRNO(ioctl(g, FAKE_BAD_TOKEN, "0000:00:03.0"), EINVAL);
	harness_wait_live(g, 2);
	close(dev);
	harness_wait_live(g, 1);
}

static void device_mmap_is_shared_with_the_server(void)
{
	int g = open("/dev/vfio/5", O_RDWR);
	int dev = ioctl(g, FAKE_GROUP_GET_DEVICE_FD, "0000:00:03.0");
	CHECK(dev >= 0);
	long page = sysconf(_SC_PAGESIZE);
	unsigned char *p = mmap(NULL, (size_t)page * 3, PROT_READ | PROT_WRITE, MAP_SHARED, dev, 0);
	CHECK(p != MAP_FAILED);
	p[0] = 0x5a;
	p[page * 2 + 7] = 0xa5;
	struct fake_stats s = harness_stats(g);
	CHECK(s.commits == 1 && s.commit_addr == (uint64_t)(uintptr_t)p);
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/.region-%d", harness_tree, whoami(dev));
	int rf = open(path, O_RDONLY);
	unsigned char b[2];
	CHECK(rf >= 0 && pread(rf, &b[0], 1, 0) == 1 && pread(rf, &b[1], 1, page * 2 + 7) == 1);
	CHECK(b[0] == 0x5a && b[1] == 0xa5); /* the client's stores are the server's bytes */
	CHECK(mmap(NULL, (size_t)page, PROT_READ, MAP_PRIVATE, dev, 0) == MAP_FAILED && errno == EINVAL);
	CHECK(harness_stats(g).commits == 1);
	void *anon = mmap(NULL, (size_t)page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(anon != MAP_FAILED && munmap(anon, (size_t)page) == 0);
	CHECK(harness_stats(g).munmaps == 0);
	CHECK(munmap(p + page, (size_t)page) == 0);
	s = harness_stats(g);
	CHECK(s.munmaps == 1 && s.munmap_addr == (uint64_t)(uintptr_t)(p + page) && s.munmap_len == (uint64_t)page);
	CHECK(munmap(p + page, (size_t)page) == 0); /* nothing of the device left there */
	CHECK(harness_stats(g).munmaps == 1);
	CHECK(munmap(p, (size_t)page * 3) == 0);
	s = harness_stats(g);
	CHECK(s.munmaps == 2 && s.misplaced == 0);
	/* a MAP_FIXED mapping over a device mapping removes it as munmap does */
	unsigned char *q = mmap(NULL, (size_t)page, PROT_READ, MAP_SHARED, dev, 0);
	CHECK(q != MAP_FAILED);
	CHECK(mmap(q, (size_t)page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == q);
	CHECK(harness_stats(g).munmaps == 3);
}

static void pread_and_pwrite_are_routed(void)
{
	int g = open("/dev/vfio/5", O_RDWR);
	int dev = ioctl(g, FAKE_GROUP_GET_DEVICE_FD, "0000:00:03.0");
	unsigned char buf[64];
	memset(buf, 0, sizeof buf);
	CHECK(pread(dev, buf, sizeof buf, 16) == (ssize_t)sizeof buf);
	for (size_t i = 0; i < sizeof buf; i++)
		CHECK(buf[i] == (unsigned char)(16 + i));
	CHECK(pread64(dev, buf, 4, 0) == 4 && buf[3] == 3);
	unsigned char w[3] = { 1, 2, 250 };
	CHECK(pwrite(dev, w, sizeof w, 0x1000) == 3);
	CHECK(harness_stats(g).pwrite_sum == 253);
	CHECK(pwrite64(dev, w, 2, 0) == 2 && harness_stats(g).pwrite_sum == 3);
	void *volatile bad = (void *)8;
	CHECK_ERRNO(pread(dev, bad, 16, 0), EFAULT); /* the server met the bad pointer, as copy_to_user would */
}

static void ioctl_passes_the_raw_argument(void)
{
	int fd = open_container();
	CHECK(ioctl(fd, FAKE_ECHO_ARG, (void *)0x1234) == 0x1234);
	CHECK(ioctl(fd, FAKE_ECHO_ARG, 77) == 77);
	CHECK_ERRNO(ioctl(fd, 0x3b99), ENOTTY);
	uint64_t before = harness_stats(fd).requests;
	CHECK(ioctl(fd, FIOCLEX) == 0); /* the kernel's generic fd ioctls stay local */
	CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
	CHECK(harness_stats(fd).requests == before + 1);
}

static void paths_are_served_from_the_tree(void)
{
	struct stat st;
	CHECK(stat("/dev/vfio/5", &st) == 0 && S_ISREG(st.st_mode));
	CHECK(lstat("/dev/vfio/vfio", &st) == 0);
	CHECK_ERRNO(stat("/dev/vfio/9", &st), ENOENT);
	CHECK(access("/sys/bus/pci/drivers/vfio-pci", F_OK) == 0);
	CHECK(faccessat(AT_FDCWD, "/sys/kernel/iommu_groups/5/type", R_OK, 0) == 0);
	CHECK(fstatat(AT_FDCWD, "/sys/kernel/iommu_groups/5/devices/0000:00:03.0", &st, 0) == 0 && S_ISDIR(st.st_mode));
	struct statx sx;
	CHECK(statx(AT_FDCWD, "/sys/bus/pci/devices/0000:00:03.0/vendor", 0, STATX_SIZE, &sx) == 0 && sx.stx_size == 7);
	char link[PATH_MAX];
	ssize_t n = readlink("/sys/bus/pci/devices/0000:00:03.0/iommu_group", link, sizeof link);
	CHECK(n == 30 && memcmp(link, "../../../kernel/iommu_groups/5", 30) == 0);
	n = readlinkat(AT_FDCWD, "/sys/devices/pci0000:00/0000:00:03.0/driver", link, sizeof link);
	CHECK(n == 29 && memcmp(link, "/sys/bus/pci/drivers/vfio-pci", 29) == 0); /* the tree's prefix is stripped */
	char real[PATH_MAX];
	CHECK(realpath("/sys/bus/pci/devices/0000:00:03.0", real) == real); /* __realpath_chk: the buffer's size is known */
	CHECK(strcmp(real, "/sys/devices/pci0000:00/0000:00:03.0") == 0);
	char *m = realpath("/sys/bus/pci/devices/0000:00:03.0/iommu_group", NULL);
	CHECK(m != NULL && strcmp(m, "/sys/kernel/iommu_groups/5") == 0);
	free(m);
	m = canonicalize_file_name("/sys//bus/./pci/devices/../devices/0000:00:03.0/vendor");
	CHECK(m != NULL && strcmp(m, "/sys/devices/pci0000:00/0000:00:03.0/vendor") == 0);
	free(m);
	DIR *d = opendir("/sys/kernel/iommu_groups");
	CHECK(d != NULL);
	int groups = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		if (e->d_name[0] != '.') {
			CHECK(strcmp(e->d_name, "5") == 0);
			groups++;
		}
	closedir(d);
	CHECK(groups == 1);
	struct dirent **names;
	int n_names = scandir("/sys/kernel/iommu_groups/5/devices", &names, NULL, alphasort);
	CHECK(n_names == 3 && strcmp(names[2]->d_name, "0000:00:03.0") == 0);
	for (int i = 0; i < n_names; i++)
		free(names[i]);
	free(names);
	FILE *f = fopen("/sys/bus/pci/devices/0000:00:03.0/vendor", "r");
	char line[32] = "";
	CHECK(f != NULL && fgets(line, sizeof line, f) != NULL && strcmp(line, "0x1234\n") == 0);
	fclose(f);
	int fd = open("/sys/bus/pci/devices/0000:00:03.0/vendor", O_RDONLY);
	CHECK(fd >= 0 && read(fd, line, 6) == 6 && memcmp(line, "0x1234", 6) == 0);
	close(fd);
	/* siblings of the prefixes are the machine's own */
	CHECK(stat("/sys/bus/pci", &st) == syscall(SYS_newfstatat, AT_FDCWD, "/sys/bus/pci", &st, 0));
	CHECK(realpath("/sys/bus/pci/devicesX", real) == NULL && errno == ENOENT);
	CHECK(stat("/dev/vfiox", &st) == -1 && errno == ENOENT);
}

static void other_calls_are_untouched(void)
{
	int vfd = open_container();
	uint64_t before = harness_stats(vfd).requests;
	char tmpl[] = "/tmp/vfiolab-preload-XXXXXX";
	int fd = mkstemp(tmpl);
	CHECK(fd >= 0);
	unlink(tmpl);
	CHECK(pwrite(fd, "hello", 5, 0) == 5);
	char b[8] = "";
	CHECK(pread(fd, b, 5, 0) == 5 && memcmp(b, "hello", 5) == 0);
	char *p = mmap(NULL, 5, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED && memcmp(p, "hello", 5) == 0);
	CHECK(munmap(p, 5) == 0);
	int d = dup(fd);
	CHECK(d >= 0 && close(d) == 0);
	int pp[2];
	CHECK(pipe(pp) == 0 && write(pp[1], "x", 1) == 1);
	int avail = 0;
	CHECK(ioctl(pp[0], FIONREAD, &avail) == 0 && avail == 1);
	struct stat st;
	CHECK(stat("/proc/self", &st) == 0);
	char real[PATH_MAX];
	CHECK(realpath("/tmp/../tmp", real) != NULL && strcmp(real, "/tmp") == 0);
	CHECK(close(fd) == 0);
	CHECK(harness_stats(vfd).requests == before + 1); /* only the second stats call */
	CHECK(harness_stats(vfd).hellos == 1);
}

static void no_server_means_no_vfio(void)
{
	CHECK_ERRNO(open("/dev/vfio/vfio", O_RDWR), ENOENT);
	struct stat st;
	CHECK_ERRNO(stat("/sys/kernel/iommu_groups", &st), ENOENT);
	CHECK_ERRNO(ioctl(0, VFIO_GET_API_VERSION), ENOTTY);
}

static void a_server_gone_fails_calls_with_eio(void)
{
	int fd = open_container();
	int g = open("/dev/vfio/5", O_RDWR);
	int dev = ioctl(g, FAKE_GROUP_GET_DEVICE_FD, "0000:00:03.0");
	CHECK(dev >= 0);
	CHECK_ERRNO(ioctl(fd, FAKE_DIE), EIO); /* it exits without answering */
	CHECK_ERRNO(ioctl(fd, VFIO_GET_API_VERSION), EIO);
	CHECK_ERRNO(ioctl(g, VFIO_GET_API_VERSION), EIO);
	char b[4];
	CHECK_ERRNO(pread(dev, b, 4, 0), EIO);
	CHECK_ERRNO(pwrite(dev, b, 4, 0), EIO);
	CHECK(mmap(NULL, 4096, PROT_READ, MAP_SHARED, dev, 0) == MAP_FAILED && errno == EIO);
	CHECK(close(fd) == 0 && close(g) == 0 && close(dev) == 0);
	CHECK_ERRNO(open("/dev/vfio/vfio", O_RDWR), ENOENT);
}

static void a_killed_server_fails_calls_with_eio(void)
{
	int fd = open_container();
	CHECK(kill(harness_server_pid, SIGKILL) == 0);
	usleep(50000);
	CHECK_ERRNO(ioctl(fd, VFIO_GET_API_VERSION), EIO);
}

static void a_silent_server_times_out(void)
{
	int fd = open_container();
	int other = open_container();
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_ERRNO(ioctl(fd, FAKE_MUTE), ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	CHECK(ms >= 400 && ms < 5000); /* VFIOLAB_TIMEOUT_MS=500 in run.sh */
	CHECK_ERRNO(ioctl(fd, VFIO_GET_API_VERSION), EIO); /* a late reply would be taken for this one's */
	CHECK(ioctl(other, VFIO_GET_API_VERSION) == 0);
}

static void garbage_replies_are_refused(void)
{
	const unsigned kinds[] = { FAKE_BAD_MAGIC, FAKE_BAD_OP, FAKE_BAD_LENGTH, FAKE_BAD_RESULT, FAKE_BAD_FLAGS };
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		int fd = open_container();
		CHECK_ERRNO(ioctl(fd, kinds[i]), EPROTO);
		CHECK_ERRNO(ioctl(fd, VFIO_GET_API_VERSION), EIO);
		close(fd);
	}
	int fd = open_container();
	CHECK_ERRNO(ioctl(fd, FAKE_BIG_RESULT), EPROTO); /* a well-formed reply no ioctl can return */
	CHECK(ioctl(fd, VFIO_GET_API_VERSION) == 0);    /* the stream is still in step */
	CHECK_ERRNO(ioctl(fd, FAKE_HALF_REPLY), EIO);
	int ok = open_container();
	CHECK(ioctl(ok, VFIO_GET_API_VERSION) == 0);
}

struct thread_arg {
	int shared;
	int shared_id;
	int failures;
};

static void *hammer(void *p)
{
	struct thread_arg *a = p;
	int own = open("/dev/vfio/vfio", O_RDWR);
	if (own < 0) {
		a->failures++;
		return NULL;
	}
	int own_id = ioctl(own, FAKE_WHOAMI);
	for (int i = 0; i < 300; i++) {
		int d = dup(a->shared);
		if (ioctl(own, FAKE_WHOAMI) != own_id || ioctl(a->shared, FAKE_WHOAMI) != a->shared_id ||
		    ioctl(d, FAKE_WHOAMI) != a->shared_id || ioctl(own, FAKE_ECHO_ARG, (void *)(uintptr_t)i) != i)
			__atomic_add_fetch(&a->failures, 1, __ATOMIC_RELAXED);
		close(d);
	}
	close(own);
	return NULL;
}

static void threads_share_files_safely(void)
{
	struct thread_arg a = { .shared = open_container() };
	a.shared_id = whoami(a.shared);
	pthread_t t[8];
	for (int i = 0; i < 8; i++)
		CHECK(pthread_create(&t[i], NULL, hammer, &a) == 0);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	CHECK(a.failures == 0);
	harness_wait_live(a.shared, 1);
}

/* Two processes sharing one inherited container fd (one socket) race their ioctls: each must get its own reply. */
static void forked_processes_racing_on_one_fd_get_their_own_replies(void)
{
	int fd = open_container();
	pid_t kids[3];
	for (int k = 0; k < 3; k++) {
		kids[k] = fork();
		CHECK(kids[k] >= 0);
		if (kids[k] == 0) {
			for (int i = 0; i < 400; i++) {
				int want = (getpid() & 0xffff) * 1000 + i;
				CHECK(ioctl(fd, FAKE_ECHO_ARG, (void *)(uintptr_t)want) == want);
				CHECK(ioctl(fd, FAKE_PID) == getpid());
			}
			_exit(0);
		}
	}
	for (int i = 0; i < 400; i++)
		CHECK(ioctl(fd, FAKE_PID) == getpid());
	for (int k = 0; k < 3; k++) {
		int status;
		CHECK(waitpid(kids[k], &status, 0) == kids[k] && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
}

/* A process killed while it holds a shared connection's turn: the others are not left waiting for ever. */
static void a_sharer_killed_mid_call_does_not_hang_the_others(void)
{
	int fd = open_container();
	pid_t kid = fork();
	CHECK(kid >= 0);
	if (kid == 0) {
		(void)ioctl(fd, FAKE_MUTE); /* holds the connection's turn, waiting for a reply that never comes */
		_exit(0);
	}
	usleep(100000);
	CHECK(kill(kid, SIGKILL) == 0);
	CHECK(waitpid(kid, NULL, 0) == kid);
	/* the stream is mid-reply for the dead process's request: given up, not hung */
	CHECK_ERRNO(ioctl(fd, VFIO_GET_API_VERSION), EIO);
	int other = open_container();
	CHECK(ioctl(other, VFIO_GET_API_VERSION) == 0);
}

static void *map_unmap_loop(void *p)
{
	int dev = *(int *)p;
	long page = sysconf(_SC_PAGESIZE);
	for (int i = 0; i < 100; i++) {
		unsigned char *m = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_SHARED, dev, 0);
		if (m == MAP_FAILED)
			return (void *)1;
		m[i % page] = 1;
		if (munmap(m, (size_t)page * 2) != 0)
			return (void *)1;
	}
	return NULL;
}

/* Threads mapping and unmapping device regions at once: every mapping committed, every unmap told, once. */
static void threads_map_and_unmap_device_regions(void)
{
	int g = open("/dev/vfio/5", O_RDWR);
	int dev = ioctl(g, FAKE_GROUP_GET_DEVICE_FD, "0000:00:03.0");
	CHECK(dev >= 0);
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		CHECK(pthread_create(&t[i], NULL, map_unmap_loop, &dev) == 0);
	for (int i = 0; i < 4; i++) {
		void *r;
		CHECK(pthread_join(t[i], &r) == 0 && r == NULL);
	}
	struct fake_stats s = harness_stats(g);
	CHECK(s.commits == 400 && s.munmaps == 400 && s.misplaced == 0);
}

/* Runs this binary again with `mode` as its argument and env changed by `setenv_pairs`; its exit status. */
static int rerun(const char *mode, const char *unset, const char *set_name, const char *set_value, int err_fd)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (unset != NULL)
			unsetenv(unset);
		if (set_name != NULL)
			setenv(set_name, set_value, 1);
		if (err_fd >= 0)
			dup2(err_fd, 2);
		execl("/proc/self/exe", "preload-tests", mode, (char *)NULL);
		_exit(127);
	}
	int status;
	CHECK(waitpid(pid, &status, 0) == pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void without_a_socket_everything_passes_through(void)
{
	int fd = open_container();
	uint64_t before = harness_stats(fd).requests;
	CHECK(rerun("--pass-through-child", "VFIOLAB_SOCKET", NULL, NULL, -1) == 0);
	CHECK(harness_stats(fd).requests == before + 1);
}

static int pass_through_child(void)
{
	errno = 0;
	int r = open("/dev/vfio/vfio", O_RDWR);
	int e = errno;
	errno = 0;
	long raw = syscall(SYS_openat, AT_FDCWD, "/dev/vfio/vfio", O_RDWR);
	CHECK((r < 0) == (raw < 0) && e == errno);
	struct stat a, b;
	int ra = stat("/sys/bus/pci/devices", &a);
	CHECK(ra == syscall(SYS_newfstatat, AT_FDCWD, "/sys/bus/pci/devices", &b, 0));
	CHECK(ra != 0 || a.st_ino == b.st_ino);
	return 0;
}

static void trace_prints_routed_calls(void)
{
	int p[2];
	CHECK(pipe(p) == 0);
	CHECK(rerun("--trace-child", NULL, "VFIOLAB_TRACE", "1", p[1]) == 0);
	close(p[1]);
	char out[8192] = "";
	ssize_t n = 0, m;
	while (n < (ssize_t)sizeof out - 1 && (m = read(p[0], out + n, sizeof out - 1 - (size_t)n)) > 0)
		n += m;
	CHECK(strstr(out, "OPEN") != NULL && strstr(out, "IOCTL on fd") != NULL && strstr(out, "-> 0") != NULL);
	CHECK(strstr(out, "path /sys/kernel/iommu_groups -> ") != NULL);
	CHECK(strstr(out, "/tmp/") == NULL || strstr(out, "/tmp/vfiolab-preload-untraced") == NULL);
}

static int trace_child(void)
{
	int fd = open("/dev/vfio/vfio", O_RDWR);
	CHECK(fd >= 0 && ioctl(fd, VFIO_GET_API_VERSION) == 0);
	struct stat st;
	CHECK(stat("/sys/kernel/iommu_groups", &st) == 0);
	(void)stat("/tmp/vfiolab-preload-untraced", &st);
	return 0;
}

static const struct test tests[] = {
	{ "open_gives_the_socket_as_the_fd", open_gives_the_socket_as_the_fd, 1 },
	{ "open_answers_the_servers_errno", open_answers_the_servers_errno, 1 },
	{ "fortified_and_64_opens_are_routed", fortified_and_64_opens_are_routed, 1 },
	{ "duplicates_share_one_file", duplicates_share_one_file, 1 },
	{ "dup2_over_a_vfio_fd_releases_it", dup2_over_a_vfio_fd_releases_it, 1 },
	{ "an_fd_closed_behind_the_preloads_back_is_forgotten", an_fd_closed_behind_the_preloads_back_is_forgotten, 1 },
	{ "fork_shares_files_and_reopens_the_session", fork_shares_files_and_reopens_the_session, 1 },
	{ "get_device_fd_attaches_a_new_connection", get_device_fd_attaches_a_new_connection, 1 },
	{ "device_mmap_is_shared_with_the_server", device_mmap_is_shared_with_the_server, 1 },
	{ "threads_map_and_unmap_device_regions", threads_map_and_unmap_device_regions, 1 },
	{ "pread_and_pwrite_are_routed", pread_and_pwrite_are_routed, 1 },
	{ "ioctl_passes_the_raw_argument", ioctl_passes_the_raw_argument, 1 },
	{ "paths_are_served_from_the_tree", paths_are_served_from_the_tree, 1 },
	{ "other_calls_are_untouched", other_calls_are_untouched, 1 },
	{ "no_server_means_no_vfio", no_server_means_no_vfio, 0 },
	{ "a_server_gone_fails_calls_with_eio", a_server_gone_fails_calls_with_eio, 1 },
	{ "a_killed_server_fails_calls_with_eio", a_killed_server_fails_calls_with_eio, 1 },
	{ "a_silent_server_times_out", a_silent_server_times_out, 1 },
	{ "garbage_replies_are_refused", garbage_replies_are_refused, 1 },
	{ "threads_share_files_safely", threads_share_files_safely, 1 },
	{ "forked_processes_racing_on_one_fd_get_their_own_replies", forked_processes_racing_on_one_fd_get_their_own_replies, 1 },
	{ "a_sharer_killed_mid_call_does_not_hang_the_others", a_sharer_killed_mid_call_does_not_hang_the_others, 1 },
	{ "without_a_socket_everything_passes_through", without_a_socket_everything_passes_through, 1 },
	{ "trace_prints_routed_calls", trace_prints_routed_calls, 1 },
};

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--pass-through-child") == 0)
		return pass_through_child();
	if (argc > 1 && strcmp(argv[1], "--trace-child") == 0)
		return trace_child();
	return harness_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
