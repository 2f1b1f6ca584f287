/* A bounded LRU cache of DNS answers with their TTLs. */
#include "dns/cache.h"

#include "lib/xalloc.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ENTRY_OVERHEAD 128	/* the entry, hash slot, allocator slack */

struct entry {
	struct entry *hnext;		/* hash chain */
	struct entry *prev, *next;	/* LRU list, most recent first */
	uint32_t hash;
	enum dns_type type;
	time_t stored, expires;
	size_t bytes;
	struct dns_result *res;
};

struct dns_cache {
	pthread_mutex_t lock;
	size_t max_bytes, bytes, count;
	unsigned int max_ttl;
	struct entry **buckets;
	size_t nbuckets;	/* a power of two */
	struct entry *head, *tail;
	uint64_t hits, misses;
};

static uint32_t
name_hash(const char *name, enum dns_type type)
{
	uint32_t h = 2166136261u ^ (uint32_t)type;

	for (const char *p = name; *p != '\0'; p++)
		h = (h ^ (uint32_t)tolower((unsigned char)*p)) * 16777619u;
	return h;
}

struct dns_cache *
dns_cache_create(size_t max_bytes, unsigned int max_ttl)
{
	struct dns_cache *c = xcalloc(1, sizeof(*c));

	c->max_bytes = max_bytes != 0 ? max_bytes : DNS_CACHE_DEFAULT_BYTES;
	c->max_ttl = max_ttl != 0 ? max_ttl : DNS_CACHE_DEFAULT_MAX_TTL;
	/* about one bucket per expected entry of 512 bytes */
	c->nbuckets = 64;
	while (c->nbuckets < c->max_bytes / 512 && c->nbuckets < (1u << 16))
		c->nbuckets *= 2;
	c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

static void
lru_unlink(struct dns_cache *c, struct entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
lru_push(struct dns_cache *c, struct entry *e)
{
	e->next = c->head;
	e->prev = NULL;
	if (c->head != NULL)
		c->head->prev = e;
	c->head = e;
	if (c->tail == NULL)
		c->tail = e;
}

static void
entry_remove(struct dns_cache *c, struct entry *e)
{
	struct entry **link = &c->buckets[e->hash & (c->nbuckets - 1)];

	for (; *link != NULL; link = &(*link)->hnext) {
		if (*link == e) {
			*link = e->hnext;
			break;
		}
	}
	lru_unlink(c, e);
	c->bytes -= e->bytes;
	c->count--;
	dns_result_free(&e->res);
	free(e);
}

static struct entry *
find(struct dns_cache *c, const char *name, enum dns_type type, uint32_t h)
{
	for (struct entry *e = c->buckets[h & (c->nbuckets - 1)]; e != NULL;
	    e = e->hnext)
		if (e->hash == h && e->type == type &&
		    strcasecmp(e->res->name, name) == 0)
			return e;
	return NULL;
}

void
dns_cache_destroy(struct dns_cache **cp)
{
	struct dns_cache *c = *cp;

	if (c == NULL)
		return;
	while (c->head != NULL)
		entry_remove(c, c->head);
	free(c->buckets);
	pthread_mutex_destroy(&c->lock);
	free(c);
	*cp = NULL;
}

static size_t
result_bytes(const struct dns_result *r)
{
	size_t n = ENTRY_OVERHEAD + strlen(r->name) + 1;

	for (size_t i = 0; i < r->count; i++) {
		if (r->mx != NULL)
			n += sizeof(*r->mx) + strlen(r->mx[i].host) + 1;
		if (r->addrs != NULL)
			n += sizeof(*r->addrs);
		if (r->txt != NULL)
			n += sizeof(*r->txt) + r->txt[i].len + 1;
		if (r->names != NULL)
			n += sizeof(char *) + strlen(r->names[i]) + 1;
	}
	return n;
}

struct dns_result *
dns_result_dup(const struct dns_result *r)
{
	struct dns_result *d = xcalloc(1, sizeof(*d));

	*d = *r;
	d->name = xstrdup(r->name);
	d->mx = NULL;
	d->addrs = NULL;
	d->txt = NULL;
	d->names = NULL;
	if (r->mx != NULL) {
		d->mx = xcalloc(r->count + 1, sizeof(*d->mx));
		for (size_t i = 0; i < r->count; i++) {
			d->mx[i].preference = r->mx[i].preference;
			d->mx[i].host = xstrdup(r->mx[i].host);
		}
	}
	if (r->addrs != NULL) {
		d->addrs = xcalloc(r->count + 1, sizeof(*d->addrs));
		memcpy(d->addrs, r->addrs, r->count * sizeof(*d->addrs));
	}
	if (r->txt != NULL) {
		d->txt = xcalloc(r->count + 1, sizeof(*d->txt));
		for (size_t i = 0; i < r->count; i++) {
			d->txt[i].data = xmalloc(r->txt[i].len + 1);
			memcpy(d->txt[i].data, r->txt[i].data, r->txt[i].len);
			d->txt[i].data[r->txt[i].len] = '\0';
			d->txt[i].len = r->txt[i].len;
		}
	}
	if (r->names != NULL) {
		d->names = xcalloc(r->count + 1, sizeof(*d->names));
		for (size_t i = 0; i < r->count; i++)
			d->names[i] = xstrdup(r->names[i]);
	}
	return d;
}

struct dns_result *
dns_cache_get(struct dns_cache *c, const char *name, enum dns_type type,
    time_t now)
{
	uint32_t h = name_hash(name, type);
	struct dns_result *out = NULL;
	struct entry *e;

	pthread_mutex_lock(&c->lock);
	e = find(c, name, type, h);
	if (e != NULL && e->expires <= now) {
		entry_remove(c, e);
		e = NULL;
	}
	if (e != NULL) {
		lru_unlink(c, e);
		lru_push(c, e);
		out = dns_result_dup(e->res);
		out->ttl = (uint32_t)(e->expires - now);
		c->hits++;
	} else {
		c->misses++;
	}
	pthread_mutex_unlock(&c->lock);
	return out;
}

void
dns_cache_put(struct dns_cache *c, const struct dns_result *res, time_t now)
{
	uint32_t h, ttl = res->ttl;
	struct entry *e;
	size_t bytes;

	if (res->status == DNS_TEMPFAIL || ttl == 0 || res->name == NULL)
		return;
	bytes = result_bytes(res);
	if (bytes > DNS_CACHE_ENTRY_MAX || bytes > c->max_bytes / 4)
		return;
	if (ttl > c->max_ttl)
		ttl = c->max_ttl;
	h = name_hash(res->name, res->type);
	e = xcalloc(1, sizeof(*e));
	e->hash = h;
	e->type = res->type;
	e->stored = now;
	e->expires = now + (time_t)ttl;
	e->bytes = bytes;
	e->res = dns_result_dup(res);
	pthread_mutex_lock(&c->lock);
	{
		struct entry *old = find(c, res->name, res->type, h);

		if (old != NULL)
			entry_remove(c, old);
	}
	while (c->bytes + bytes > c->max_bytes && c->tail != NULL)
		entry_remove(c, c->tail);
	e->hnext = c->buckets[h & (c->nbuckets - 1)];
	c->buckets[h & (c->nbuckets - 1)] = e;
	lru_push(c, e);
	c->bytes += bytes;
	c->count++;
	pthread_mutex_unlock(&c->lock);
}

void
dns_cache_stats(struct dns_cache *c, struct dns_cache_stats *st)
{
	pthread_mutex_lock(&c->lock);
	st->hits = c->hits;
	st->misses = c->misses;
	st->entries = c->count;
	st->bytes = c->bytes;
	pthread_mutex_unlock(&c->lock);
}
