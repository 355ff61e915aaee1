/* A user-space driver in DPDK's manner on a TYPE1 (v1) container: memory comes in 2 MiB chunks (hugepages when
 * the host has them), each mapped for DMA with IOVA equal to its virtual address when the IOMMU's IOVA ranges hold
 * it (DPDK's VA mode) and at compact IOVAs from 4 GiB otherwise (a 39-bit VT-d cannot reach a user address, the
 * reason DPDK checks the width), unmapped and mapped again as
 * segments come and go. It also meets v1's unmap rules: an unmap that starts inside a mapping removes nothing and
 * reports 0 bytes; one covering a mapping's first byte removes all of it. Exit 0 when Linux's answers come back.
 * Usage: dpdk-style-v1 0000:00:10.0 */
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "client.h"

#define CHUNK (2u << 20)
#define CHUNKS 4 /* 8 MiB: the default RLIMIT_MEMLOCK, which an unprivileged DPDK stays within */

static unsigned char *mem;  /* the chunks' virtual base */
static uint64_t iova_base; /* the IOVA of chunk 0 */

static int map_chunk(int container, int i)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof m,
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uint64_t)(uintptr_t)(mem + (size_t)i * CHUNK),
		.iova = iova_base + (uint64_t)i * CHUNK,
		.size = CHUNK,
	};
	return ioctl(container, VFIO_IOMMU_MAP_DMA, &m);
}

/* Whether [start, start + len) lies inside one of the IOVA ranges GET_INFO's capability chain reports. */
static bool iova_usable(int container, uint64_t start, uint64_t len)
{
	char buf[4096];
	memset(buf, 0, sizeof buf);
	struct vfio_iommu_type1_info *info = (void *)buf;
	info->argsz = sizeof buf;
	MUST(ioctl(container, VFIO_IOMMU_GET_INFO, info));
	uint32_t off = (info->flags & VFIO_IOMMU_INFO_CAPS) ? info->cap_offset : 0;
	while (off != 0 && off + sizeof(struct vfio_info_cap_header) <= sizeof buf) {
		struct vfio_info_cap_header *cap = (void *)(buf + off);
		if (cap->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
			struct vfio_iommu_type1_info_cap_iova_range *r = (void *)cap;
			for (uint32_t i = 0; i < r->nr_iovas; i++)
				if (r->iova_ranges[i].start <= start && start + len - 1 <= r->iova_ranges[i].end)
					return true;
			return false;
		}
		off = cap->next;
	}
	return true; /* no ranges reported: every IOVA the page sizes allow */
}

static long long unmap_range(int container, uint64_t iova, uint64_t size)
{
	struct vfio_iommu_type1_dma_unmap u = { .argsz = sizeof u, .iova = iova, .size = size };
	if (ioctl(container, VFIO_IOMMU_UNMAP_DMA, &u) < 0)
		return -errno;
	return (long long)u.size;
}

/* CHUNKS chunks of 2 MiB, each 2 MiB-aligned; hugetlb if the host has free hugepages, anonymous otherwise. */
static unsigned char *reserve(bool *huge)
{
	size_t len = (size_t)CHUNK * CHUNKS;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	*huge = p != MAP_FAILED;
	if (p != MAP_FAILED)
		return p;
	unsigned char *raw = mmap(NULL, len + CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	uintptr_t aligned = ((uintptr_t)raw + CHUNK - 1) & ~(uintptr_t)(CHUNK - 1);
	return (unsigned char *)aligned;
}

int main(int argc, char **argv)
{
	const char *addr = device_arg(argc, argv);
	/* DPDK asks for what it needs to lock; as root (or with CAP_IPC_LOCK) this succeeds. */
	struct rlimit lim = { 64u << 20, 64u << 20 }; /* more than it needs: the default 8 MiB is enough */
	if (setrlimit(RLIMIT_MEMLOCK, &lim) < 0)
		fprintf(stderr, "memlock: not raised (%s); 8 MiB of mappings fit the default limit\n", strerror(errno));

	int container = open("/dev/vfio/vfio", O_RDWR);
	MUST(container);
	EXPECT(ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) == 1, "container: TYPE1 (v1) supported");
	char path[64];
	snprintf(path, sizeof path, "/dev/vfio/%d", group_of(addr));
	int group = open(path, O_RDWR);
	MUST(group);
	MUST(ioctl(group, VFIO_GROUP_SET_CONTAINER, &container));
	MUST(ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU));

	bool huge;
	mem = reserve(&huge);
	fprintf(stderr, "memory: %d chunks of 2 MiB (%s)\n", CHUNKS, huge ? "hugetlb" : "anonymous");
	bool va_mode = iova_usable(container, (uint64_t)(uintptr_t)mem, (uint64_t)CHUNK * CHUNKS);
	iova_base = va_mode ? (uint64_t)(uintptr_t)mem : 1ull << 32;
	for (int i = 0; i < CHUNKS; i++) {
		mem[(size_t)i * CHUNK] = (unsigned char)i; /* touch it, as DPDK's allocator does */
		MUST(map_chunk(container, i));
	}
	/* which mode depends on the IOMMU's width and where the kernel put the memory: printed apart */
	fprintf(stderr, "iova mode: %s\n", va_mode ? "IOVA = VA" : "compact IOVAs from 4 GiB");
	printf("dma: %d chunks mapped\n", CHUNKS);

	errno = 0;
	int again = map_chunk(container, 0);
	EXPECT(again < 0 && errno == EEXIST, "dma: mapping chunk 0 again: %s", strerror(errno));

	uint64_t base = iova_base;
	long long got = unmap_range(container, base + 4096, CHUNK);
	EXPECT(got == 0, "dma: v1 unmap starting 4 KiB into chunk 0 removed %lld bytes", got);
	got = unmap_range(container, base, 4096);
	EXPECT(got == CHUNK, "dma: v1 unmap of chunk 0's first page removed %lld bytes (the whole chunk)", got);

	/* A segment freed and reused: chunk 3 out, in again. */
	got = unmap_range(container, base + 3ull * CHUNK, CHUNK);
	EXPECT(got == CHUNK, "dma: chunk 3 unmapped (%lld bytes)", got);
	MUST(map_chunk(container, 3));
	MUST(map_chunk(container, 0));
	printf("dma: chunks 3 and 0 mapped again\n");

	got = unmap_range(container, base, (uint64_t)CHUNK * CHUNKS);
	EXPECT(got == (long long)CHUNK * CHUNKS, "dma: everything unmapped in one call (%lld bytes)", got);
	got = unmap_range(container, base, (uint64_t)CHUNK * CHUNKS);
	EXPECT(got == 0, "dma: unmapping it again removes %lld bytes", got);

	close(group);
	close(container);
	printf("dpdk-style-v1: ok\n");
	return 0;
}
