/*
 * store/dbmem: SQLite's memory in slabs of its own (contract in dbmem.h).
 *
 * Why: an idle account's index connection is closed (store_accounts_idle)
 * and opened again on its next command. With SQLite on the general heap,
 * the ~100 kB a connection frees lie between sessions' long-lived objects
 * (TLS state, parsers) that were allocated meanwhile, so the pages stay
 * resident. Here SQLite's blocks come from 64 kB slabs per size class that
 * hold nothing else; a slab whose blocks are all free is unmapped.
 *
 * Every block has a 16-byte header (its size); a block of a slab is
 * found from its address (slabs are 64 kB aligned), a larger one was
 * malloc'd, and one of MAP_MIN or more (what a connection takes at open:
 * its lookaside buffer, the first pages of its page cache) is a mapping
 * of its own: on the heap, those ~130 kB freed at an idle close were
 * holes between sessions' objects allocated meanwhile, most of their
 * pages kept resident by a few small blocks each (15 kB per idle account
 * measured with 100 TLS sessions over 100 accounts). One mutex: SQLite
 * may call from the pool threads too.
 */
#include "store/dbmem.h"

#include "lib/log.h"

#include <pthread.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define SLAB_SIZE (64u * 1024)
#define HDR 16u
#define NCLASSES (sizeof(class_size) / sizeof(class_size[0]))
#define LARGE_MARK 0xffu
#define MAP_MARK 0xfeu
#define MAP_MIN (32u * 1024)
#define PAGE 4096u

/* block sizes, header included */
static const uint32_t class_size[] = {
	32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048,
	3072, 4608, 6144, 8192,
};

struct slab {
	struct slab *prev, *next;	/* in its class's list */
	void *free;			/* free blocks (headers), linked */
	uint32_t live, cap;
	uint8_t cls;
	uint32_t bump;			/* blocks never used start here */
};

struct block {
	uint64_t size;			/* usable bytes */
	uint8_t cls;			/* class, or LARGE_MARK */
	uint8_t pad[7];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct slab *lists[NCLASSES];	/* slabs with a free block first */
static unsigned int nslabs;

static int
class_of(uint64_t n)
{
	for (unsigned int i = 0; i < NCLASSES; i++) {
		if (n + HDR <= class_size[i])
			return (int)i;
	}
	return -1;
}

static uint32_t
slab_first(void)
{
	/* blocks start after the slab header, 16-byte aligned */
	return (uint32_t)((sizeof(struct slab) + 15) & ~15u);
}

static struct slab *
slab_new(unsigned int cls)
{
	/* twice the size, then the aligned middle kept */
	size_t len = 2 * SLAB_SIZE;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;
	struct slab *s;

	if (p == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)p + SLAB_SIZE - 1) & ~(uintptr_t)(SLAB_SIZE - 1);
	if (a > (uintptr_t)p)
		munmap(p, a - (uintptr_t)p);
	munmap((char *)a + SLAB_SIZE, (uintptr_t)p + len - a - SLAB_SIZE);
	s = (struct slab *)a;
	memset(s, 0, sizeof(*s));
	s->cls = (uint8_t)cls;
	s->cap = (SLAB_SIZE - slab_first()) / class_size[cls];
	s->bump = 0;
	nslabs++;
	return s;
}

static void
list_remove(struct slab *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else if (lists[s->cls] == s)
		lists[s->cls] = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
}

static void
list_push(struct slab *s)
{
	s->prev = NULL;
	s->next = lists[s->cls];
	if (s->next != NULL)
		s->next->prev = s;
	lists[s->cls] = s;
}

static void *
mem_malloc(int n)
{
	int cls;
	struct block *b;
	struct slab *s;

	if (n <= 0)
		return NULL;
	cls = class_of((uint64_t)n);
	if ((size_t)n >= MAP_MIN) {
		size_t len = (HDR + (size_t)n + PAGE - 1) & ~(size_t)(PAGE - 1);
		void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (m == MAP_FAILED)
			return NULL;
		b = m;
		b->size = (uint64_t)n;
		b->cls = MAP_MARK;
		return (char *)b + HDR;
	}
	if (cls < 0) {
		b = malloc(HDR + (size_t)n);
		if (b == NULL)
			return NULL;
		b->size = (uint64_t)n;
		b->cls = LARGE_MARK;
		return (char *)b + HDR;
	}
	pthread_mutex_lock(&lock);
	s = lists[cls];
	if (s == NULL || (s->free == NULL && s->bump == s->cap)) {
		s = slab_new((unsigned int)cls);
		if (s == NULL) {
			pthread_mutex_unlock(&lock);
			return NULL;
		}
		list_push(s);
	}
	if (s->free != NULL) {
		b = s->free;
		s->free = *(void **)((char *)b + HDR);
	} else {
		b = (struct block *)((char *)s + slab_first() +
		    (size_t)s->bump * class_size[cls]);
		s->bump++;
	}
	s->live++;
	/* full: out of the way of the next allocation */
	if (s->free == NULL && s->bump == s->cap) {
		list_remove(s);
		s->next = s->prev = NULL;
	}
	pthread_mutex_unlock(&lock);
	b->size = class_size[cls] - HDR;
	b->cls = (uint8_t)cls;
	return (char *)b + HDR;
}

static void
mem_free(void *p)
{
	struct block *b;
	struct slab *s;
	bool was_full;

	if (p == NULL)
		return;
	b = (struct block *)((char *)p - HDR);
	if (b->cls == LARGE_MARK) {
		free(b);
		return;
	}
	if (b->cls == MAP_MARK) {
		(void)munmap(b, (HDR + (size_t)b->size + PAGE - 1) &
		    ~(size_t)(PAGE - 1));
		return;
	}
	s = (struct slab *)((uintptr_t)b & ~(uintptr_t)(SLAB_SIZE - 1));
	pthread_mutex_lock(&lock);
	was_full = s->free == NULL && s->bump == s->cap;
	*(void **)p = s->free;
	s->free = b;
	s->live--;
	if (s->live == 0 && !(lists[s->cls] == s && s->next == NULL)) {
		/* empty, and not the last one of its class: give it back */
		if (!was_full)
			list_remove(s);
		nslabs--;
		munmap(s, SLAB_SIZE);
	} else if (was_full) {
		list_push(s);
	}
	pthread_mutex_unlock(&lock);
}

static int
mem_size(void *p)
{
	return p == NULL ? 0 : (int)((struct block *)((char *)p - HDR))->size;
}

static void *
mem_realloc(void *p, int n)
{
	void *q;
	int old;

	if (p == NULL)
		return mem_malloc(n);
	old = mem_size(p);
	if (n <= old && class_of((uint64_t)n) == class_of((uint64_t)old))
		return p;
	q = mem_malloc(n);
	if (q == NULL)
		return NULL;
	memcpy(q, p, (size_t)(old < n ? old : n));
	mem_free(p);
	return q;
}

static int
mem_roundup(int n)
{
	int cls = class_of((uint64_t)(n > 0 ? n : 1));

	return cls < 0 ? (n + 7) & ~7 : (int)(class_size[cls] - HDR);
}

static int
mem_init(void *arg)
{
	return SQLITE_OK;
}

static void
mem_shutdown(void *arg)
{
}

static const sqlite3_mem_methods methods = {
	mem_malloc, mem_free, mem_realloc, mem_size, mem_roundup,
	mem_init, mem_shutdown, NULL,
};

const struct sqlite3_mem_methods *
store_dbmem_methods(void)
{
	return &methods;
}

int
store_dbmem_install(void)
{
	int rc = sqlite3_config(SQLITE_CONFIG_MALLOC, &methods);

	/* no global statistics: they take a mutex at every allocation */
	if (rc == SQLITE_OK)
		rc = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	if (rc != SQLITE_OK) {
		/* SQLite was used already: it keeps the general heap */
		log_warn("event=sqlite_allocator_not_set error=\"%s\"",
		    sqlite3_errstr(rc));
		return -1;
	}
	return 0;
}

void
store_dbmem_trim(void)
{
	pthread_mutex_lock(&lock);
	for (unsigned int c = 0; c < NCLASSES; c++) {
		struct slab *s = lists[c];

		/* the empty slab kept for a class: its pages go back (they
		   read as zeros again, so its blocks start afresh). Not on
		   every free: a class that empties and fills again would
		   fault its pages in each time */
		if (s != NULL && s->live == 0) {
			s->free = NULL;
			s->bump = 0;
			(void)madvise((char *)s + 4096, SLAB_SIZE - 4096, MADV_DONTNEED);
		}
	}
	pthread_mutex_unlock(&lock);
}

unsigned int
store_dbmem_slabs(void)
{
	unsigned int n;

	pthread_mutex_lock(&lock);
	n = nslabs;
	pthread_mutex_unlock(&lock);
	return n;
}
