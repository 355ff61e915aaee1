/* Which fds of this process are VFIO files: a two-level table indexed by fd, each slot naming the connection the
 * fd's open file is. Duplicates share one connection (and its lock), as duplicated fds share the kernel's file.
 * Lookups on fds that were never VFIO take no lock (an atomic load of an empty slot), so the ioctls of a VMM's
 * vCPU threads on KVM fds pay nothing. A slot found filled is re-checked under the table lock and then against the
 * fd itself (its inode is the socket's), so an fd closed behind our back (close_range, fclose) is not mistaken
 * for a VFIO file when the number is reused. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vfl.h"

#define CHUNK_BITS 10
#define CHUNK_SIZE (1 << CHUNK_BITS)
#define CHUNKS 1024 /* 1 Mi fds */

/* table_lock: writers change slots, `refs` and the list of connections; lock order: table_lock, then the maps
 * lock, then the session lock (all three taken at fork); a connection's lock is never held with any of them. */
static pthread_rwlock_t table_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct vfl_conn **chunks[CHUNKS];
static struct vfl_conn *all_conns;
static int tracked;

static struct vfl_conn **slot(int fd, bool create)
{
	if (fd < 0 || fd >= CHUNKS * CHUNK_SIZE)
		return NULL;
	struct vfl_conn **chunk = __atomic_load_n(&chunks[fd >> CHUNK_BITS], __ATOMIC_ACQUIRE);
	if (chunk == NULL && create) {
		chunk = calloc(CHUNK_SIZE, sizeof *chunk);
		if (chunk == NULL)
			return NULL;
		__atomic_store_n(&chunks[fd >> CHUNK_BITS], chunk, __ATOMIC_RELEASE);
	}
	return chunk == NULL ? NULL : &chunk[fd & (CHUNK_SIZE - 1)];
}

bool vfl_fd_any(void)
{
	return __atomic_load_n(&tracked, __ATOMIC_RELAXED) > 0;
}

static void release_locked(struct vfl_conn *c)
{
	if (--c->refs > 0)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		all_conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	vfl_conn_free(c);
}

/* Empties fd's slot (the caller holds table_lock for writing). */
static void clear_locked(int fd)
{
	struct vfl_conn **s = slot(fd, false);
	if (s == NULL || *s == NULL)
		return;
	struct vfl_conn *c = *s;
	__atomic_store_n(s, NULL, __ATOMIC_RELEASE);
	__atomic_sub_fetch(&tracked, 1, __ATOMIC_RELAXED);
	release_locked(c);
}

struct vfl_conn *vfl_fd_get(int fd)
{
	struct vfl_conn **s = slot(fd, false);
	if (s == NULL || __atomic_load_n(s, __ATOMIC_ACQUIRE) == NULL)
		return NULL;
	pthread_rwlock_wrlock(&table_lock);
	struct vfl_conn *c = *s;
	if (c != NULL) {
		struct stat st;
		if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode) || (uint64_t)st.st_ino != c->inode) {
			clear_locked(fd); /* closed behind our back; the number now names something else */
			c = NULL;
		} else
			c->refs++;
	}
	pthread_rwlock_unlock(&table_lock);
	return c;
}

void vfl_conn_put(struct vfl_conn *c)
{
	pthread_rwlock_wrlock(&table_lock);
	release_locked(c);
	pthread_rwlock_unlock(&table_lock);
}

/* Names fd as a VFIO file: c is a new connection (is_new; freed here on failure) or one more reference to one. */
int vfl_fd_install(int fd, struct vfl_conn *c, bool is_new)
{
	pthread_rwlock_wrlock(&table_lock);
	struct vfl_conn **s = slot(fd, true);
	if (s == NULL) {
		pthread_rwlock_unlock(&table_lock);
		if (is_new)
			vfl_conn_free(c);
		return -EMFILE;
	}
	clear_locked(fd);
	if (is_new) {
		c->next = all_conns;
		if (all_conns != NULL)
			all_conns->prev = c;
		all_conns = c;
	}
	c->refs++;
	__atomic_store_n(s, c, __ATOMIC_RELEASE);
	__atomic_add_fetch(&tracked, 1, __ATOMIC_RELAXED);
	pthread_rwlock_unlock(&table_lock);
	return 0;
}

void vfl_fd_forget(int fd)
{
	struct vfl_conn **s = slot(fd, false);
	if (s == NULL || __atomic_load_n(s, __ATOMIC_ACQUIRE) == NULL)
		return;
	pthread_rwlock_wrlock(&table_lock);
	clear_locked(fd);
	pthread_rwlock_unlock(&table_lock);
}

/* After a real dup of oldfd to newfd: newfd's old meaning is gone, and it is oldfd's file if oldfd is one. */
void vfl_fd_dup(int oldfd, int newfd)
{
	struct vfl_conn *c = vfl_fd_get(oldfd);
	if (c == NULL) {
		vfl_fd_forget(newfd);
		return;
	}
	(void)vfl_fd_install(newfd, c, false);
	vfl_conn_put(c);
}

/* fork: the child's copy of the table and of the maps must be whole, so the forking thread holds their locks;
 * connections need nothing (their turn-taking lock is shared with the child, see struct vfl_shared), and the child
 * re-opens its own session (session.c). */
static void before_fork(void)
{
	pthread_rwlock_wrlock(&table_lock);
	vfl_maps_lock_for_fork();
	vfl_session_lock_for_fork();
}

static void after_fork(bool child)
{
	vfl_session_unlock_after_fork(child);
	vfl_maps_unlock_after_fork(child);
	if (child)
		pthread_rwlock_init(&table_lock, NULL);
	else
		pthread_rwlock_unlock(&table_lock);
}

static void after_fork_parent(void) { after_fork(false); }
static void after_fork_child(void) { after_fork(true); }

__attribute__((constructor)) static void register_fork_handlers(void)
{
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}
