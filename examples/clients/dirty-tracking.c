/* A migration's dirty-page loop on type1, as a VMM runs it: guest memory mapped for DMA, logging started, the
 * bitmap read while the guest writes (from the CPU, which an IOMMU cannot see, and from the device), logging
 * stopped. With no device that reports its own writes, type1 counts every pinned page dirty in every round: the
 * program checks exactly that. Exit 0 when Linux's answers come back. Usage: dirty-tracking 0000:00:10.0 */
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "client.h"

#define PAGE 4096u
#define RAM (256u * 1024)
#define IOVA 0x100000u

/* GET_BITMAP for [IOVA, IOVA + RAM) at 4 KiB granularity into bits; the number of dirty pages, or -errno. */
static int dirty_pages(int container, uint64_t *bits, size_t words)
{
	struct {
		struct vfio_iommu_type1_dirty_bitmap hdr;
		struct vfio_iommu_type1_dirty_bitmap_get get;
	} req = {
		.hdr = { .argsz = sizeof req, .flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP },
		.get = { .iova = IOVA, .size = RAM,
			 .bitmap = { .pgsize = PAGE, .size = words * sizeof *bits, .data = (__u64 *)bits } },
	};
	memset(bits, 0, words * sizeof *bits);
	if (ioctl(container, VFIO_IOMMU_DIRTY_PAGES, &req) < 0)
		return -errno;
	int n = 0;
	for (size_t i = 0; i < words; i++)
		n += __builtin_popcountll(bits[i]);
	return n;
}

static int dirty_op(int container, uint32_t flag)
{
	struct vfio_iommu_type1_dirty_bitmap d = { .argsz = sizeof d, .flags = flag };
	return ioctl(container, VFIO_IOMMU_DIRTY_PAGES, &d);
}

int main(int argc, char **argv)
{
	const char *addr = device_arg(argc, argv);
	int container = open("/dev/vfio/vfio", O_RDWR);
	MUST(container);
	char path[64];
	snprintf(path, sizeof path, "/dev/vfio/%d", group_of(addr));
	int group = open(path, O_RDWR);
	MUST(group);
	MUST(ioctl(group, VFIO_GROUP_SET_CONTAINER, &container));
	MUST(ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	int device = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, addr);
	MUST(device);

	/* The migration capability tells the bitmap's page sizes and largest size. */
	char infobuf[4096];
	struct vfio_iommu_type1_info *info = (void *)infobuf;
	memset(infobuf, 0, sizeof infobuf);
	info->argsz = sizeof infobuf;
	MUST(ioctl(container, VFIO_IOMMU_GET_INFO, info));
	bool found = false;
	for (uint32_t off = (info->flags & VFIO_IOMMU_INFO_CAPS) ? info->cap_offset : 0; off != 0 && off < sizeof infobuf;) {
		struct vfio_info_cap_header *cap = (void *)(infobuf + off);
		if (cap->id == VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION) {
			struct vfio_iommu_type1_info_cap_migration *mig = (void *)cap;
			EXPECT(mig->pgsize_bitmap & PAGE, "migration capability: page sizes 0x%llx, max bitmap 0x%llx bytes",
			       (unsigned long long)mig->pgsize_bitmap, (unsigned long long)mig->max_dirty_bitmap_size);
			found = true;
		}
		off = cap->next;
	}
	EXPECT(found, "iommu: the migration capability is present");

	unsigned char *ram = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ram == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof map, .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uint64_t)(uintptr_t)ram, .iova = IOVA, .size = RAM,
	};
	MUST(ioctl(container, VFIO_IOMMU_MAP_DMA, &map));

	uint64_t bits[RAM / PAGE / 64];
	size_t words = sizeof bits / sizeof bits[0];
	int n = dirty_pages(container, bits, words);
	EXPECT(n == -EINVAL, "before START: GET_BITMAP answers %s", strerror(-n));

	MUST(dirty_op(container, VFIO_IOMMU_DIRTY_PAGES_FLAG_START));
	n = dirty_pages(container, bits, words);
	EXPECT(n == (int)(RAM / PAGE), "round 1: %d of %u pages dirty (every pinned page)", n, RAM / PAGE);

	ram[0] = 1; /* a CPU write: invisible to the IOMMU */
	n = dirty_pages(container, bits, words);
	EXPECT(n == (int)(RAM / PAGE), "round 2, after a CPU write: %d pages dirty", n);

	/* A device write through its BAR-programmed DMA engine would land here; type1's answer is the same. */
	n = dirty_pages(container, bits, words);
	EXPECT(n == (int)(RAM / PAGE), "round 3: %d pages dirty", n);

	struct {
		struct vfio_iommu_type1_dma_unmap hdr;
		struct vfio_bitmap bitmap;
	} unmap = {
		.hdr = { .argsz = sizeof unmap, .flags = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP, .iova = IOVA, .size = RAM },
		.bitmap = { .pgsize = PAGE, .size = sizeof bits, .data = (__u64 *)bits },
	};
	memset(bits, 0, sizeof bits);
	MUST(ioctl(container, VFIO_IOMMU_UNMAP_DMA, &unmap));
	int last = 0;
	for (size_t i = 0; i < words; i++)
		last += __builtin_popcountll(bits[i]);
	EXPECT(unmap.hdr.size == RAM && last == (int)(RAM / PAGE), "unmap with the bitmap: 0x%llx bytes, %d pages dirty",
	       (unsigned long long)unmap.hdr.size, last);

	MUST(dirty_op(container, VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP));
	printf("logging stopped\n");
	close(device);
	close(group);
	close(container);
	printf("dirty-tracking: ok\n");
	return 0;
}
