/* A small test harness for the preload: every test runs in a child process of its own against a fresh fake server
 * (or none), so one test's fds, sessions and crashes cannot reach another's. */
#ifndef HARNESS_H
#define HARNESS_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake.h"

struct test {
	const char *name;
	void (*run)(void);
	int server; /* 1: a fake server runs during the test */
};

#define CHECK(cond)                                                                                                  \
	do {                                                                                                         \
		if (!(cond)) {                                                                                       \
			fprintf(stderr, "%s:%d: CHECK failed: %s (errno %d %s)\n", __FILE__, __LINE__, #cond, errno, \
				strerror(errno));                                                                    \
			exit(1);                                                                                     \
		}                                                                                                    \
	} while (0)

/* expr must fail with exactly errno e. */
#define CHECK_ERRNO(expr, e)                                                                                         \
	do {                                                                                                         \
		errno = 0;                                                                                           \
		long long r_ = (long long)(expr);                                                                    \
		if (r_ != -1 || errno != (e)) {                                                                      \
			fprintf(stderr, "%s:%d: %s returned %lld errno %d (%s), wanted -1 errno %d (%s)\n", __FILE__, \
				__LINE__, #expr, r_, errno, strerror(errno), (e), strerror(e));                      \
			exit(1);                                                                                     \
		}                                                                                                    \
	} while (0)

extern const char *harness_socket; /* VFIOLAB_SOCKET */
extern const char *harness_tree;   /* the tree the fake server writes and names in HELLO */
extern int harness_server_pid;

void harness_start_server(void);
void harness_stop_server(void);
struct fake_stats harness_stats(int fd);
/* Polls the server's stats (through fd) until live_files equals want, or fails after two seconds. */
void harness_wait_live(int fd, unsigned long long want);
int harness_main(int argc, char **argv, const struct test *tests, size_t count);

#endif
