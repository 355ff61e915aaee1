/* The measuring tool for docs/benchmarks.md's interposer figures: the time of one VFIO ioctl through
 * libvfiolab-preload.so to whatever server VFIOLAB_SOCKET names (vfiolab serve, or the fake server), and what the
 * preload adds to an ioctl it passes through. Run under LD_PRELOAD; prints median, mean and 99th percentile.
 * Usage: roundtrip-bench [ITERATIONS] */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define VFIO_GET_API_VERSION 0x3b64

static int cmp(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x > y) - (x < y);
}

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Times `iterations` ioctls of `request` on fd (after a warm-up); false if any failed. */
static int measure(const char *what, int fd, unsigned long request, int iterations)
{
	long long *t = malloc(sizeof *t * (size_t)iterations);
	if (t == NULL)
		return 1;
	for (int i = 0; i < iterations / 10; i++)
		(void)ioctl(fd, request, 0);
	long long sum = 0;
	for (int i = 0; i < iterations; i++) {
		long long t0 = now_ns();
		int r = ioctl(fd, request, 0);
		t[i] = now_ns() - t0;
		sum += t[i];
		if (r < 0 && errno != ENOTTY && errno != EINVAL) {
			fprintf(stderr, "%s: ioctl failed: %s\n", what, strerror(errno));
			free(t);
			return 1;
		}
	}
	qsort(t, (size_t)iterations, sizeof *t, cmp);
	printf("%-44s n=%d median %.2f us  mean %.2f us  p99 %.2f us\n", what, iterations, t[iterations / 2] / 1000.0,
	       (double)sum / iterations / 1000.0, t[iterations * 99 / 100] / 1000.0);
	free(t);
	return 0;
}

int main(int argc, char **argv)
{
	int iterations = argc > 1 ? atoi(argv[1]) : 20000;
	if (iterations < 100)
		iterations = 100;
	int rc = 0;
	int null = open("/dev/null", O_RDWR);
	if (null >= 0)
		rc |= measure("pass-through ioctl on /dev/null (ENOTTY)", null, VFIO_GET_API_VERSION, iterations);
	int fd = open("/dev/vfio/vfio", O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "open /dev/vfio/vfio: %s (is VFIOLAB_SOCKET's server running?)\n", strerror(errno));
		return 1;
	}
	rc |= measure("VFIO_GET_API_VERSION through the preload", fd, VFIO_GET_API_VERSION, iterations);
	return rc;
}
