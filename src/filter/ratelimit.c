/* Connection and event rate limits, in memory. */
#include "filter/ratelimit.h"

#include "lib/str.h"
#include "lib/xalloc.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 320

/* A string-keyed chained hash table, shared by both limiters. */
struct entry {
	struct entry *next;
	char *key;
	unsigned int conns;	/* connlimit */
	time_t start;		/* ratelimit: start of the current window */
	unsigned int cur, prev;
};

struct table {
	struct entry **buckets;
	size_t nbuckets;
	size_t count;
};

static void
table_init(struct table *t, size_t max)
{
	t->nbuckets = 64;
	while (t->nbuckets < max && t->nbuckets < (1u << 20))
		t->nbuckets *= 2;
	t->buckets = xcalloc(t->nbuckets, sizeof(*t->buckets));
	t->count = 0;
}

static void
table_free(struct table *t)
{
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct entry *e = t->buckets[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			free(e->key);
			free(e);
		}
	}
	free(t->buckets);
}

static struct entry **
table_link(struct table *t, const char *key)
{
	uint32_t h = 2166136261u;
	struct entry **link;

	for (const char *p = key; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	link = &t->buckets[h & (t->nbuckets - 1)];
	while (*link != NULL && strcmp((*link)->key, key) != 0)
		link = &(*link)->next;
	return link;
}

static struct entry *
table_add(struct table *t, struct entry **link, const char *key)
{
	struct entry *e = xcalloc(1, sizeof(*e));

	e->key = xstrdup(key);
	*link = e;
	t->count++;
	return e;
}

static void
table_remove(struct table *t, struct entry **link)
{
	struct entry *e = *link;

	*link = e->next;
	free(e->key);
	free(e);
	t->count--;
}

/* ------------------------------------------------------------------ */

struct connlimit {
	pthread_mutex_t lock;
	unsigned int max_per_client;
	size_t max_clients;
	struct table t;
};

/* "192.0.2.1" or "2001:db8:1:2::/64"; -1 if ip is no address. */
static int
client_key(const char *ip, char *out, size_t outsize)
{
	uint8_t a[16];
	char txt[INET6_ADDRSTRLEN];

	if (inet_pton(AF_INET, ip, a) == 1) {
		inet_ntop(AF_INET, a, txt, sizeof(txt));
		return str_copy(out, outsize, txt);
	}
	if (inet_pton(AF_INET6, ip, a) != 1)
		return -1;
	if (memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
		inet_ntop(AF_INET, a + 12, txt, sizeof(txt));
		return str_copy(out, outsize, txt);
	}
	memset(a + 8, 0, 8);
	inet_ntop(AF_INET6, a, txt, sizeof(txt));
	snprintf(out, outsize, "%s/64", txt);
	return 0;
}

struct connlimit *
connlimit_create(unsigned int max_per_client, size_t max_clients)
{
	struct connlimit *cl = xcalloc(1, sizeof(*cl));

	pthread_mutex_init(&cl->lock, NULL);
	cl->max_per_client = max_per_client;
	cl->max_clients = max_clients;
	table_init(&cl->t, max_clients);
	return cl;
}

void
connlimit_destroy(struct connlimit **clp)
{
	struct connlimit *cl = *clp;

	if (cl == NULL)
		return;
	table_free(&cl->t);
	pthread_mutex_destroy(&cl->lock);
	free(cl);
	*clp = NULL;
}

int
connlimit_acquire(struct connlimit *cl, const char *ip)
{
	char key[64];
	struct entry **link, *e;
	int ret = 0;

	if (client_key(ip, key, sizeof(key)) < 0)
		return -1;
	pthread_mutex_lock(&cl->lock);
	link = table_link(&cl->t, key);
	e = *link;
	if (e == NULL) {
		if (cl->t.count >= cl->max_clients)
			goto out;
		e = table_add(&cl->t, link, key);
	}
	if (e->conns < cl->max_per_client) {
		e->conns++;
		ret = 1;
	} else if (e->conns == 0) {
		table_remove(&cl->t, link);	/* max_per_client == 0 */
	}
out:
	pthread_mutex_unlock(&cl->lock);
	return ret;
}

void
connlimit_release(struct connlimit *cl, const char *ip)
{
	char key[64];
	struct entry **link;

	if (client_key(ip, key, sizeof(key)) < 0)
		return;
	pthread_mutex_lock(&cl->lock);
	link = table_link(&cl->t, key);
	if (*link != NULL && --(*link)->conns == 0)
		table_remove(&cl->t, link);
	pthread_mutex_unlock(&cl->lock);
}

unsigned int
connlimit_count(struct connlimit *cl, const char *ip)
{
	char key[64];
	struct entry **link;
	unsigned int n = 0;

	if (client_key(ip, key, sizeof(key)) < 0)
		return 0;
	pthread_mutex_lock(&cl->lock);
	link = table_link(&cl->t, key);
	if (*link != NULL)
		n = (*link)->conns;
	pthread_mutex_unlock(&cl->lock);
	return n;
}

/* ------------------------------------------------------------------ */

struct ratelimit {
	pthread_mutex_t lock;
	unsigned int limit;
	unsigned int window;
	size_t max_keys;
	struct table t;
};

struct ratelimit *
ratelimit_create(unsigned int limit, unsigned int window, size_t max_keys)
{
	struct ratelimit *rl = xcalloc(1, sizeof(*rl));

	pthread_mutex_init(&rl->lock, NULL);
	rl->limit = limit;
	rl->window = window > 0 ? window : 1;
	rl->max_keys = max_keys;
	table_init(&rl->t, max_keys);
	return rl;
}

void
ratelimit_destroy(struct ratelimit **rlp)
{
	struct ratelimit *rl = *rlp;

	if (rl == NULL)
		return;
	table_free(&rl->t);
	pthread_mutex_destroy(&rl->lock);
	free(rl);
	*rlp = NULL;
}

/* Moves e's windows forward to the one holding now. */
static void
roll(const struct ratelimit *rl, struct entry *e, time_t now)
{
	time_t start = now - now % (time_t)rl->window;

	if (e->start == start)
		return;
	e->prev = e->start == start - (time_t)rl->window ? e->cur : 0;
	e->cur = 0;
	e->start = start;
}

static double
estimate(const struct ratelimit *rl, const struct entry *e, time_t now)
{
	double left = (double)((time_t)rl->window - (now - e->start)) /
	    (double)rl->window;

	return (double)e->prev * left + (double)e->cur;
}

/* Drops keys with nothing in either window. */
static void
purge(struct ratelimit *rl, time_t now)
{
	for (size_t i = 0; i < rl->t.nbuckets; i++) {
		struct entry **link = &rl->t.buckets[i];

		while (*link != NULL) {
			roll(rl, *link, now);
			if ((*link)->cur == 0 && (*link)->prev == 0)
				table_remove(&rl->t, link);
			else
				link = &(*link)->next;
		}
	}
}

int
ratelimit_take(struct ratelimit *rl, const char *key, unsigned int n,
    time_t now, unsigned int *retry_after_r)
{
	char k[KEY_MAX];
	struct entry **link, *e;
	int ret = 1;

	if (retry_after_r != NULL)
		*retry_after_r = 0;
	str_copy(k, sizeof(k), key);
	pthread_mutex_lock(&rl->lock);
	link = table_link(&rl->t, k);
	if (*link == NULL) {
		if (rl->t.count >= rl->max_keys) {
			purge(rl, now);
			link = table_link(&rl->t, k);
		}
		if (rl->t.count >= rl->max_keys)
			goto out;	/* fail open, see the header */
		table_add(&rl->t, link, k);
	}
	e = *link;
	roll(rl, e, now);
	if (estimate(rl, e, now) + n > (double)rl->limit) {
		ret = 0;
		if (retry_after_r != NULL)
			*retry_after_r = (unsigned int)((time_t)rl->window -
			    (now - e->start));
	} else {
		e->cur += n;
	}
out:
	pthread_mutex_unlock(&rl->lock);
	return ret;
}

double
ratelimit_level(struct ratelimit *rl, const char *key, time_t now)
{
	char k[KEY_MAX];
	struct entry **link;
	double level = 0;

	str_copy(k, sizeof(k), key);
	pthread_mutex_lock(&rl->lock);
	link = table_link(&rl->t, k);
	if (*link != NULL) {
		roll(rl, *link, now);
		level = estimate(rl, *link, now);
	}
	pthread_mutex_unlock(&rl->lock);
	return level;
}
