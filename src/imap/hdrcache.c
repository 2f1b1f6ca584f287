/*
 * imap/hdrcache: recently fetched header blocks (contract in hdrcache.h).
 *
 * A fixed table of chains plus one list in order of use: a lookup is a
 * hash of the base name, a hit moves the entry to the front, and room is
 * made by dropping from the back.
 */
#include "imap/hdrcache.h"

#include "lib/str.h"
#include "lib/xalloc.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 1024u	/* power of two */

struct entry {
	struct entry *chain;		/* in its bucket */
	struct entry *newer, *older;	/* in the use list */
	uint64_t size;			/* the message's, part of the key */
	time_t used;
	size_t len;			/* header bytes */
	unsigned int hash;
	char *base;
	char *data;
};

static struct entry *buckets[NBUCKETS];
static struct entry *newest, *oldest;
static size_t held;

static time_t
now_secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static size_t
cost(const struct entry *e)
{
	return sizeof(*e) + e->len + 1 + strlen(e->base) + 1;
}

static void
list_unlink(struct entry *e)
{
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		newest = e->older;
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		oldest = e->newer;
	e->newer = e->older = NULL;
}

static void
list_push(struct entry *e)
{
	e->older = newest;
	e->newer = NULL;
	if (newest != NULL)
		newest->newer = e;
	newest = e;
	if (oldest == NULL)
		oldest = e;
}

static void
drop(struct entry *e)
{
	struct entry **pp = &buckets[e->hash & (NBUCKETS - 1)];

	while (*pp != e)
		pp = &(*pp)->chain;
	*pp = e->chain;
	list_unlink(e);
	held -= cost(e);
	free(e->base);
	free(e->data);
	free(e);
}

static struct entry *
find(const char *base, uint64_t size, unsigned int h)
{
	for (struct entry *e = buckets[h & (NBUCKETS - 1)]; e != NULL; e = e->chain) {
		if (e->hash == h && e->size == size && strcmp(e->base, base) == 0)
			return e;
	}
	return NULL;
}

int
imap_hdrcache_get(const char *base, uint64_t size, char **data_r,
    size_t *len_r)
{
	struct entry *e = find(base, size, str_hash(base));

	if (e == NULL)
		return -1;
	e->used = now_secs();
	list_unlink(e);
	list_push(e);
	*data_r = xmalloc(e->len + 1);
	memcpy(*data_r, e->data, e->len + 1);
	*len_r = e->len;
	return 0;
}

void
imap_hdrcache_put(const char *base, uint64_t size, const char *data,
    size_t len)
{
	unsigned int h = str_hash(base);
	struct entry *e;

	if (len > HDRCACHE_ENTRY_MAX)
		return;
	e = find(base, size, h);
	if (e != NULL)
		drop(e);
	e = xcalloc(1, sizeof(*e));
	e->hash = h;
	e->size = size;
	e->used = now_secs();
	e->len = len;
	e->base = xstrdup(base);
	e->data = xmalloc(len + 1);
	memcpy(e->data, data, len);
	e->data[len] = '\0';
	while (oldest != NULL && held + cost(e) > HDRCACHE_BYTES)
		drop(oldest);
	e->chain = buckets[h & (NBUCKETS - 1)];
	buckets[h & (NBUCKETS - 1)] = e;
	list_push(e);
	held += cost(e);
}

unsigned int
imap_hdrcache_expire(time_t now)
{
	unsigned int n = 0;

	if (now == 0)
		now = now_secs();
	while (oldest != NULL && now - oldest->used >= HDRCACHE_IDLE_SECS) {
		drop(oldest);
		n++;
	}
	return n;
}

void
imap_hdrcache_clear(void)
{
	while (oldest != NULL)
		drop(oldest);
}

size_t
imap_hdrcache_bytes(void)
{
	return held;
}
