/* The harness of harness.h. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

const char *harness_socket;
const char *harness_tree;
int harness_server_pid;
static const char *server_exe;

void harness_start_server(void)
{
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		char *argv[] = { (char *)server_exe, (char *)harness_socket, (char *)harness_tree, NULL };
		char *envp[] = { "PATH=/usr/bin:/bin", NULL }; /* no LD_PRELOAD: the server is not a client */
		execve(server_exe, argv, envp);
		_exit(127);
	}
	harness_server_pid = pid;
	for (int i = 0; i < 400; i++) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		snprintf(sa.sun_path, sizeof sa.sun_path, "%s", harness_socket);
		int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
		syscall(SYS_close, fd); /* not through the preload: this probe is no VFIO file */
		if (ok)
			return;
		usleep(5000);
	}
	fprintf(stderr, "harness: the fake server did not start\n");
	exit(1);
}

void harness_stop_server(void)
{
	if (harness_server_pid > 0) {
		kill(harness_server_pid, SIGKILL);
		waitpid(harness_server_pid, NULL, 0);
		harness_server_pid = 0;
	}
	unlink(harness_socket);
}

struct fake_stats harness_stats(int fd)
{
	struct fake_stats s;
	memset(&s, 0xff, sizeof s);
	CHECK(ioctl(fd, FAKE_STATS, &s) == 0);
	return s;
}

void harness_wait_live(int fd, unsigned long long want)
{
	for (int i = 0; i < 400; i++) {
		if (harness_stats(fd).live_files == want)
			return;
		usleep(5000);
	}
	fprintf(stderr, "harness: live files stayed %llu, wanted %llu\n",
		(unsigned long long)harness_stats(fd).live_files, want);
	exit(1);
}

/* A filter: a substring of the name, or ^NAME$ for exactly one test. */
static bool matches(const char *name, const char *filter)
{
	size_t n = strlen(filter);
	if (n >= 2 && filter[0] == '^' && filter[n - 1] == '$')
		return strlen(name) == n - 2 && strncmp(name, filter + 1, n - 2) == 0;
	return strstr(name, filter) != NULL;
}

int harness_main(int argc, char **argv, const struct test *tests, size_t count)
{
	harness_socket = getenv("VFIOLAB_SOCKET");
	harness_tree = getenv("FAKE_TREE");
	server_exe = getenv("FAKE_SERVER");
	if (harness_socket == NULL || harness_tree == NULL || server_exe == NULL || getenv("LD_PRELOAD") == NULL) {
		fprintf(stderr, "preload-tests: run through tests/run.sh (needs VFIOLAB_SOCKET, FAKE_TREE, FAKE_SERVER, "
				"LD_PRELOAD)\n");
		return 2;
	}
	int failed = 0, ran = 0;
	for (size_t i = 0; i < count; i++) {
		if (argc > 1 && !matches(tests[i].name, argv[1]))
			continue;
		ran++;
		if (tests[i].server)
			harness_start_server();
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			alarm(20);
			tests[i].run();
			exit(0);
		}
		int status;
		waitpid(pid, &status, 0);
		harness_stop_server();
		bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
		if (!ok) {
			failed++;
			if (WIFSIGNALED(status))
				fprintf(stderr, "  (killed by signal %d)\n", WTERMSIG(status));
		}
		printf("%s %s\n", ok ? "PASS" : "FAIL", tests[i].name);
		fflush(stdout);
	}
	printf("%d of %d preload tests passed\n", ran - failed, ran);
	return failed == 0 && ran > 0 ? 0 : 1;
}
