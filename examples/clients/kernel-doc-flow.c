/* The flow Documentation/driver-api/vfio.rst walks through, written as a user would: a container, the device's
 * group made viable and attached, the type1 IOMMU chosen, its info read, a buffer mapped for DMA, the device fd,
 * its regions and its config space, then the buffer unmapped. Prints what it finds; exit 0 when every step
 * answers as Linux does. Usage: kernel-doc-flow 0000:00:10.0 */
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "client.h"

static const char *region_name(unsigned index)
{
	static const char *names[] = { "BAR0", "BAR1", "BAR2", "BAR3", "BAR4", "BAR5", "ROM", "CONFIG", "VGA" };
	return index < sizeof names / sizeof names[0] ? names[index] : "?";
}

int main(int argc, char **argv)
{
	const char *addr = device_arg(argc, argv);
	int group_id = group_of(addr);
	printf("device %s is in IOMMU group %d\n", addr, group_id);

	int container = open("/dev/vfio/vfio", O_RDWR);
	MUST(container);
	int api = ioctl(container, VFIO_GET_API_VERSION);
	EXPECT(api == VFIO_API_VERSION, "container: API version %d", api);
	int has_v2 = ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU);
	EXPECT(has_v2 == 1, "container: TYPE1v2 supported: %d", has_v2);

	char path[64];
	snprintf(path, sizeof path, "/dev/vfio/%d", group_id);
	int group = open(path, O_RDWR);
	MUST(group);
	struct vfio_group_status status = { .argsz = sizeof status };
	MUST(ioctl(group, VFIO_GROUP_GET_STATUS, &status));
	EXPECT(status.flags & VFIO_GROUP_FLAGS_VIABLE, "group: flags 0x%x (viable)", status.flags);
	MUST(ioctl(group, VFIO_GROUP_SET_CONTAINER, &container));
	MUST(ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	MUST(ioctl(group, VFIO_GROUP_GET_STATUS, &status));
	EXPECT(status.flags & VFIO_GROUP_FLAGS_CONTAINER_SET, "group: flags 0x%x (container set)", status.flags);

	struct vfio_iommu_type1_info info = { .argsz = sizeof info };
	MUST(ioctl(container, VFIO_IOMMU_GET_INFO, &info));
	EXPECT((info.flags & VFIO_IOMMU_INFO_PGSIZES) && (info.iova_pgsizes & 4096),
	       "iommu: flags 0x%x page sizes 0x%llx (4 KiB among them)", info.flags,
	       (unsigned long long)info.iova_pgsizes);

	/* A buffer the device may reach at IOVA 0: 1 MiB of anonymous memory. */
	size_t size = 1 << 20;
	void *buf = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof map,
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uint64_t)(uintptr_t)buf,
		.iova = 0,
		.size = size,
	};
	MUST(ioctl(container, VFIO_IOMMU_MAP_DMA, &map));
	printf("dma: mapped 0x%llx bytes at IOVA 0x%llx\n", (unsigned long long)map.size, (unsigned long long)map.iova);

	int device = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, addr);
	MUST(device);
	struct vfio_device_info dinfo = { .argsz = sizeof dinfo };
	MUST(ioctl(device, VFIO_DEVICE_GET_INFO, &dinfo));
	EXPECT((dinfo.flags & VFIO_DEVICE_FLAGS_PCI) && dinfo.num_regions >= VFIO_PCI_CONFIG_REGION_INDEX + 1,
	       "device: flags 0x%x, %u regions, %u irqs", dinfo.flags, dinfo.num_regions, dinfo.num_irqs);

	uint64_t config_offset = 0;
	for (unsigned i = 0; i < dinfo.num_regions; i++) {
		struct vfio_region_info reg = { .argsz = sizeof reg, .index = i };
		if (ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &reg) < 0) {
			printf("region %u (%s): %s\n", i, region_name(i), strerror(errno));
			continue;
		}
		printf("region %u (%s): size 0x%llx offset 0x%llx flags 0x%x\n", i, region_name(i),
		       (unsigned long long)reg.size, (unsigned long long)reg.offset, reg.flags);
		if (i == VFIO_PCI_CONFIG_REGION_INDEX)
			config_offset = reg.offset;
	}

	/* The first dword of config space: vendor and device id, as sysfs reports them too. */
	uint32_t id = 0;
	ssize_t n = pread(device, &id, sizeof id, (off_t)config_offset);
	EXPECT(n == 4, "config: read %zd bytes: vendor 0x%04x device 0x%04x", n, id & 0xffff, id >> 16);
	char vendor_path[128], text[32] = "";
	snprintf(vendor_path, sizeof vendor_path, "/sys/bus/pci/devices/%s/vendor", addr);
	FILE *f = fopen(vendor_path, "r");
	if (f == NULL || fgets(text, sizeof text, f) == NULL) {
		fprintf(stderr, "%s: %s\n", vendor_path, f == NULL ? strerror(errno) : "empty");
		return 1;
	}
	fclose(f);
	EXPECT(strtoul(text, NULL, 16) == (id & 0xffff), "sysfs: vendor %s", strtok(text, "\n"));

	struct vfio_iommu_type1_dma_unmap unmap = { .argsz = sizeof unmap, .iova = 0, .size = size };
	MUST(ioctl(container, VFIO_IOMMU_UNMAP_DMA, &unmap));
	EXPECT(unmap.size == size, "dma: unmapped 0x%llx bytes", (unsigned long long)unmap.size);

	close(device);
	close(group);
	close(container);
	munmap(buf, size);
	printf("kernel-doc-flow: ok\n");
	return 0;
}
