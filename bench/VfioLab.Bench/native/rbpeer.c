/*
 * The C peer of the type1 DMA tree for the benchmarks (bench/VfioLab.Bench/TreePeerBenchmarks.cs): a
 * red-black tree from BSD <sys/tree.h> (Debian's libbsd-dev) keyed by IOVA, as the kernel's vfio_dma
 * rb-tree is. Nodes are preallocated in one array so the measured insert+remove allocates nothing,
 * like the model's B+tree path it is compared with. Written for this project; only the RB_* macros are
 * the header's.
 */
#include <stdint.h>
#include <stdlib.h>
/* RB_GENERATE_STATIC marks the generated functions with BSD's __unused, which glibc does not define. */
#ifndef __unused
#define __unused __attribute__((unused))
#endif
#include <bsd/sys/tree.h>

struct dma {
	RB_ENTRY(dma) link;
	uint64_t iova;
	uint64_t size;
};

static int dma_cmp(struct dma *a, struct dma *b)
{
	return a->iova < b->iova ? -1 : a->iova > b->iova;
}

RB_HEAD(dma_tree, dma);
RB_GENERATE_STATIC(dma_tree, dma, link, dma_cmp)

static struct dma_tree tree = RB_INITIALIZER(&tree);
static struct dma *nodes;
static struct dma probe;

/* Builds the tree of `count` mappings of `size` bytes at base + i * stride; returns the count. */
int rbpeer_setup(uint64_t base, uint64_t stride, uint64_t size, int count)
{
	nodes = calloc((size_t)count, sizeof(*nodes));
	if (!nodes)
		return -1;
	RB_INIT(&tree);
	for (int i = 0; i < count; i++) {
		nodes[i].iova = base + (uint64_t)i * stride;
		nodes[i].size = size;
		if (RB_INSERT(dma_tree, &tree, &nodes[i]))
			return -2;
	}
	return count;
}

/* One mapping's worth of tree work: insert a node at iova, find it, remove it; 1 when all three held. */
int rbpeer_insert_remove(uint64_t iova, uint64_t size)
{
	struct dma key;
	probe.iova = iova;
	probe.size = size;
	if (RB_INSERT(dma_tree, &tree, &probe))
		return 0;
	key.iova = iova;
	struct dma *found = RB_FIND(dma_tree, &tree, &key);
	if (found != &probe)
		return 0;
	RB_REMOVE(dma_tree, &tree, found);
	return 1;
}

void rbpeer_teardown(void)
{
	RB_INIT(&tree);
	free(nodes);
	nodes = NULL;
}
