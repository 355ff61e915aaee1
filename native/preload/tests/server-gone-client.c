/* A client that outlives its server: opens the container and a group, says "ready" on stdout, waits for a line on
 * stdin (the test stops the server meanwhile), then checks that every call fails with an errno and none hangs:
 * EIO on the open files, ENOENT for a new open. Exit 0 when so. Run under the preload against vfiolab serve.
 * Usage: server-gone-client GROUP */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define VFIO_GET_API_VERSION 0x3b64
#define VFIO_GROUP_GET_STATUS 0x3b67

static int expect_errno(const char *what, int r, int want)
{
	if (r == -1 && errno == want) {
		printf("%s: %s\n", what, strerror(errno));
		return 0;
	}
	printf("%s: returned %d errno %d (%s), wanted %s\n", what, r, errno, strerror(errno), strerror(want));
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s GROUP\n", argv[0]);
		return 2;
	}
	char path[64];
	snprintf(path, sizeof path, "/dev/vfio/%s", argv[1]);
	int container = open("/dev/vfio/vfio", O_RDWR);
	int group = open(path, O_RDWR);
	if (container < 0 || group < 0 || ioctl(container, VFIO_GET_API_VERSION) != 0) {
		perror("open");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	char line[16];
	if (fgets(line, sizeof line, stdin) == NULL)
		return 1;
	struct { unsigned argsz, flags; } status = { sizeof status, 0 };
	int bad = expect_errno("container ioctl", ioctl(container, VFIO_GET_API_VERSION), EIO);
	bad |= expect_errno("group ioctl", ioctl(group, VFIO_GROUP_GET_STATUS, &status), EIO);
	bad |= expect_errno("open", open("/dev/vfio/vfio", O_RDWR), ENOENT);
	bad |= close(container) != 0 || close(group) != 0;
	printf("server-gone-client: %s\n", bad ? "FAILED" : "ok");
	return bad;
}
