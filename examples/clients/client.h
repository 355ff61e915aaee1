/* Small helpers the example clients share: failing loudly with the errno, and finding a device's IOMMU group the
 * way VFIO users do (the iommu_group link in sysfs). Nothing here knows about VfioLab. */
#ifndef CLIENT_H
#define CLIENT_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MUST(expr)                                                                                                   \
	do {                                                                                                         \
		if ((expr) < 0) {                                                                                    \
			fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, strerror(errno));              \
			exit(1);                                                                                     \
		}                                                                                                    \
	} while (0)

/* Checks an outcome Linux gives: prints it either way, exits 1 when it differs. */
#define EXPECT(cond, ...)                                                                                            \
	do {                                                                                                         \
		printf(__VA_ARGS__);                                                                                 \
		if (!(cond)) {                                                                                       \
			printf("  <- UNEXPECTED (%s)\n", #cond);                                                     \
			exit(1);                                                                                     \
		}                                                                                                    \
		printf("\n");                                                                                        \
	} while (0)

/* The group number of a PCI device, from /sys/bus/pci/devices/ADDR/iommu_group (a link ending in the number). */
static inline int group_of(const char *addr)
{
	char link[256], target[256];
	snprintf(link, sizeof link, "/sys/bus/pci/devices/%s/iommu_group", addr);
	ssize_t n = readlink(link, target, sizeof target - 1);
	if (n < 0) {
		fprintf(stderr, "%s: %s (is the device bound to vfio-pci?)\n", link, strerror(errno));
		exit(1);
	}
	target[n] = '\0';
	const char *slash = strrchr(target, '/');
	return atoi(slash != NULL ? slash + 1 : target);
}

static inline const char *device_arg(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DOMAIN:BUS:SLOT.FN (a PCI device bound to vfio-pci)\n", argv[0]);
		exit(2);
	}
	return argv[1];
}

#endif
