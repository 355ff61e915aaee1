/* The device-region mappings this process made through the preload, so that a munmap (or a MAP_FIXED mapping)
 * over one is told to the server (MUNMAP). A short array of extents: a process maps a handful of BARs. */
#define _GNU_SOURCE
#include <stdlib.h>

#include "vfl.h"

struct extent {
	uintptr_t start;
	uintptr_t end; /* exclusive; a mapping never reaches the top of the address space */
};

/* maps_lock guards the array. */
static pthread_mutex_t maps_lock = PTHREAD_MUTEX_INITIALIZER;
static struct extent *maps;
static size_t count, capacity;

static bool grow_locked(void)
{
	if (count < capacity)
		return true;
	size_t cap = capacity == 0 ? 8 : capacity * 2;
	struct extent *n = realloc(maps, cap * sizeof *n);
	if (n == NULL)
		return false;
	maps = n;
	capacity = cap;
	return true;
}

void vfl_maps_add(uintptr_t addr, size_t len)
{
	pthread_mutex_lock(&maps_lock);
	if (grow_locked())
		{
		maps[count] = (struct extent){ addr, addr + len };
		__atomic_store_n(&count, count + 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&maps_lock);
}

/* Removes [addr, addr + len) from the tracked extents; true when it overlapped any. */
bool vfl_maps_remove(uintptr_t addr, size_t len)
{
	uintptr_t end = addr + len < addr ? UINTPTR_MAX : addr + len;
	bool hit = false;
	if (__atomic_load_n(&count, __ATOMIC_RELAXED) == 0)
		return false; /* the common munmap: no device mapping at all */
	pthread_mutex_lock(&maps_lock);
	for (size_t i = 0; i < count;) {
		struct extent e = maps[i];
		if (e.end <= addr || e.start >= end) {
			i++;
			continue;
		}
		hit = true;
		if (e.start < addr && e.end > end) {
			/* a hole punched in the middle: two extents remain */
			if (!grow_locked()) {
				i++;
				continue;
			}
			maps[i].end = addr;
			maps[count++] = (struct extent){ end, e.end };
			i++;
		} else if (e.start < addr) {
			maps[i++].end = addr;
		} else if (e.end > end) {
			maps[i++].start = end;
		} else {
			maps[i] = maps[--count];
		}
	}
	pthread_mutex_unlock(&maps_lock);
	return hit;
}

void vfl_maps_lock_for_fork(void)
{
	pthread_mutex_lock(&maps_lock);
}

void vfl_maps_unlock_after_fork(bool child)
{
	if (child)
		pthread_mutex_init(&maps_lock, NULL);
	else
		pthread_mutex_unlock(&maps_lock);
}
