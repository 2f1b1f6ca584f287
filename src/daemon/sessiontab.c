/*
 * sessiontab: session counts shared by the imap workers; see sessiontab.h.
 *
 * A slot is a page of header and a dense array of (key, count) entries,
 * in no order: a lookup reads the live entries of every slot, a few
 * thousand at most (three per session), which costs microseconds at a
 * connection or a login and touches only the pages in use (a hashed
 * table would touch a page per key, in every worker that looks). Only
 * the slot's worker writes it, so a count needs no lock, only atomic
 * loads and stores other processes can read at any time. An entry whose
 * count falls to 0 gives its place to the last one; a reader at that
 * moment may miss a count, as in any race between two workers.
 */
#include "daemon/sessiontab.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#define HEADER_SIZE 4096

struct slot_header {
	_Atomic int32_t pid;		/* 0: no worker */
	_Atomic uint32_t accepting;
	_Atomic uint32_t sessions;
	_Atomic uint32_t n;		/* entries in use */
};

struct entry {
	_Atomic uint64_t key;
	_Atomic uint32_t count;
	uint32_t pad;
};

struct slot {
	struct slot_header h;
	char pad[HEADER_SIZE - sizeof(struct slot_header)];
	struct entry e[SESSIONTAB_KEYS];
};

struct sessiontab {
	int fd;				/* -1: private */
	struct slot *slots;
	unsigned int nslots;
	int self;			/* -1: the master */
};

#define TAB_SIZE(n) ((size_t)(n) * sizeof(struct slot))

static struct sessiontab *
map(int fd, unsigned int nslots, char **error_r)
{
	struct sessiontab *t;
	void *p = mmap(NULL, TAB_SIZE(nslots), PROT_READ | PROT_WRITE,
	    fd >= 0 ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS, fd, 0);

	if (p == MAP_FAILED) {
		*error_r = xasprintf("mmap: %s", strerror(errno));
		return NULL;
	}
	t = xcalloc(1, sizeof(*t));
	t->fd = fd;
	t->slots = p;
	t->nslots = nslots;
	t->self = -1;
	return t;
}

struct sessiontab *
sessiontab_create(char **error_r)
{
	struct sessiontab *t;
	int fd = memfd_create("tegami-imap-sessions", MFD_CLOEXEC);

	if (fd < 0) {
		*error_r = xasprintf("memfd_create: %s", strerror(errno));
		return NULL;
	}
	if (ftruncate(fd, (off_t)TAB_SIZE(SESSIONTAB_SLOTS)) < 0) {
		*error_r = xasprintf("ftruncate: %s", strerror(errno));
		close(fd);
		return NULL;
	}
	t = map(fd, SESSIONTAB_SLOTS, error_r);
	if (t == NULL)
		close(fd);
	return t;
}

int
sessiontab_fd(const struct sessiontab *t)
{
	return t->fd;
}

/* Zeroes a slot and gives its pages back (a hole in the memfd reads 0). */
static void
clear_slot(struct sessiontab *t, unsigned int i)
{
	atomic_store(&t->slots[i].h.pid, 0);
	if (t->fd < 0 || fallocate(t->fd, FALLOC_FL_PUNCH_HOLE |
	    FALLOC_FL_KEEP_SIZE, (off_t)TAB_SIZE(i),
	    (off_t)sizeof(struct slot)) < 0)
		memset(&t->slots[i], 0, sizeof(struct slot));
}

void
sessiontab_release(struct sessiontab *t, int slot)
{
	if (t != NULL && slot >= 0 && (unsigned int)slot < t->nslots)
		clear_slot(t, (unsigned int)slot);
}

struct sessiontab *
sessiontab_attach(int fd, int slot, char **error_r)
{
	struct sessiontab *t;

	if (fd < 0 || slot < 0 || slot >= SESSIONTAB_SLOTS) {
		fd = -1;
		slot = 0;
	}
	t = map(fd, fd >= 0 ? SESSIONTAB_SLOTS : 1, error_r);
	if (t == NULL)
		return NULL;
	t->self = slot;
	clear_slot(t, (unsigned int)slot);
	atomic_store(&t->slots[slot].h.accepting, 1);
	atomic_store(&t->slots[slot].h.pid, (int32_t)getpid());
	return t;
}

void
sessiontab_free(struct sessiontab **tp)
{
	struct sessiontab *t = *tp;

	if (t == NULL)
		return;
	*tp = NULL;
	if (t->self >= 0) {
		atomic_store(&t->slots[t->self].h.accepting, 0);
		atomic_store(&t->slots[t->self].h.pid, 0);
	}
	munmap(t->slots, TAB_SIZE(t->nslots));
	if (t->fd >= 0)
		close(t->fd);
	free(t);
}

void
sessiontab_set_accepting(struct sessiontab *t, bool accepting)
{
	atomic_store(&t->slots[t->self].h.accepting, accepting ? 1 : 0);
}

uint64_t
sessiontab_key(const char *kind, const char *value, const char *value2)
{
	/* FNV-1a, 64 bits, over kind NUL value NUL value2 */
	const char *parts[3] = { kind, value, value2 != NULL ? value2 : "" };
	uint64_t h = 14695981039346656037ULL;

	for (int i = 0; i < 3; i++) {
		for (const unsigned char *p = (const unsigned char *)parts[i];
		    *p != '\0'; p++) {
			h ^= *p;
			h *= 1099511628211ULL;
		}
		h ^= 0xff;		/* the separator: not a byte of text */
		h *= 1099511628211ULL;
	}
	return h != 0 ? h : 1;
}

/* The entry of key in slot s, or -1. */
static long
find(const struct slot *s, uint64_t key)
{
	uint32_t n = atomic_load(&s->h.n);

	if (n > SESSIONTAB_KEYS)
		n = SESSIONTAB_KEYS;
	for (uint32_t i = 0; i < n; i++)
		if (atomic_load_explicit(&s->e[i].key, memory_order_relaxed) == key)
			return (long)i;
	return -1;
}

void
sessiontab_add(struct sessiontab *t, uint64_t key, int delta)
{
	struct slot *s = &t->slots[t->self];
	long at = find(s, key);
	uint32_t n = atomic_load(&s->h.n), c;

	if (at < 0) {
		if (delta <= 0 || n == SESSIONTAB_KEYS)
			return;	/* never counted, or no room: uncounted */
		/* the entry first, then the length that shows it */
		atomic_store(&s->e[n].count, (uint32_t)delta);
		atomic_store(&s->e[n].key, key);
		atomic_store(&s->h.n, n + 1);
		return;
	}
	c = atomic_load(&s->e[at].count);
	c = delta < 0 && c <= (uint32_t)-delta ? 0 :
	    (uint32_t)((int64_t)c + delta);
	if (c > 0) {
		atomic_store(&s->e[at].count, c);
		return;
	}
	/* gone: the last entry takes its place */
	if ((uint32_t)at != n - 1) {
		atomic_store(&s->e[at].count, 0);
		atomic_store(&s->e[at].key, atomic_load(&s->e[n - 1].key));
		atomic_store(&s->e[at].count, atomic_load(&s->e[n - 1].count));
	}
	atomic_store(&s->h.n, n - 1);
	atomic_store(&s->e[n - 1].count, 0);
	atomic_store(&s->e[n - 1].key, 0);
}

unsigned int
sessiontab_count(const struct sessiontab *t, uint64_t key)
{
	unsigned int sum = 0;

	for (unsigned int i = 0; i < t->nslots; i++) {
		const struct slot *s = &t->slots[i];
		long at;

		if (atomic_load(&s->h.pid) == 0)
			continue;
		at = find(s, key);
		if (at >= 0)
			sum += atomic_load(&s->e[at].count);
	}
	return sum;
}

void
sessiontab_set_sessions(struct sessiontab *t, unsigned int n)
{
	atomic_store(&t->slots[t->self].h.sessions, n);
}

bool
sessiontab_should_yield(const struct sessiontab *t, unsigned int slack)
{
	unsigned int mine = atomic_load(&t->slots[t->self].h.sessions);

	for (unsigned int i = 0; i < t->nslots; i++) {
		const struct slot *s = &t->slots[i];

		if ((int)i == t->self || atomic_load(&s->h.pid) == 0 ||
		    atomic_load(&s->h.accepting) == 0)
			continue;
		if (atomic_load(&s->h.sessions) + slack < mine)
			return true;
	}
	return false;
}

unsigned int
sessiontab_workers(const struct sessiontab *t)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < t->nslots; i++)
		if (atomic_load(&t->slots[i].h.pid) != 0)
			n++;
	return n;
}
