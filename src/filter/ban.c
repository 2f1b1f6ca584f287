/* Brute-force bans: failure counting per client, bans, a persisted list. */
#include "filter/ban.h"

#include "lib/buf.h"
#include "lib/file.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BAN_FILE_MAX (16 * 1024 * 1024)

const struct ban_settings ban_default_settings = {
	.maxretry = 6,
	.findtime = 604800,
	.bantime = 604800,
	.max_tracked = 100000,
};

struct client_key {
	uint8_t family;
	uint8_t addr[16];
};

/* About 80 bytes for maxretry 6: a botnet of 100,000 addresses costs
 * under 10 MB. Times are unsigned 32-bit (good until 2106). */
struct client {
	struct client *next;	/* hash chain */
	struct client_key key;
	uint8_t nfails;
	uint8_t head;		/* where the next failure goes */
	uint32_t last;		/* last failure or ban */
	uint32_t banned_until;	/* 0 = not banned */
	uint32_t fails[];	/* ring of the latest maxretry failures */
};

struct ban {
	pthread_mutex_t lock;
	struct ban_settings set;
	char *path;
	struct client **buckets;
	size_t nbuckets;
	size_t count;
};

static int
client_key_parse(const char *ip, struct client_key *k)
{
	memset(k, 0, sizeof(*k));
	if (inet_pton(AF_INET, ip, k->addr) == 1) {
		k->family = 4;
		return 0;
	}
	if (inet_pton(AF_INET6, ip, k->addr) == 1) {
		static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		    0xff, 0xff };

		if (memcmp(k->addr, mapped, 12) == 0) {
			memmove(k->addr, k->addr + 12, 4);
			memset(k->addr + 4, 0, 12);
			k->family = 4;
		} else {
			memset(k->addr + 8, 0, 8);	/* the /64 */
			k->family = 6;
		}
		return 0;
	}
	/* "2001:db8::/64" as written in our own list */
	{
		char tmp[64];
		char *slash;

		if (str_copy(tmp, sizeof(tmp), ip) < 0)
			return -1;
		slash = strchr(tmp, '/');
		if (slash == NULL || strcmp(slash, "/64") != 0)
			return -1;
		*slash = '\0';
		if (inet_pton(AF_INET6, tmp, k->addr) != 1)
			return -1;
		memset(k->addr + 8, 0, 8);
		k->family = 6;
		return 0;
	}
}

static void
client_key_format(const struct client_key *k, char *out, size_t outsize)
{
	char txt[INET6_ADDRSTRLEN];

	inet_ntop(k->family == 4 ? AF_INET : AF_INET6, k->addr, txt, sizeof(txt));
	snprintf(out, outsize, k->family == 4 ? "%s" : "%s/64", txt);
}

static size_t
key_hash(const struct client_key *k, size_t nbuckets)
{
	uint32_t h = 2166136261u;

	h = (h ^ k->family) * 16777619u;
	for (int i = 0; i < 16; i++)
		h = (h ^ k->addr[i]) * 16777619u;
	return h & (nbuckets - 1);
}

static struct client *
find(struct ban *b, const struct client_key *k, struct client ***link_r)
{
	struct client **link = &b->buckets[key_hash(k, b->nbuckets)];

	for (; *link != NULL; link = &(*link)->next) {
		if (memcmp(&(*link)->key, k, sizeof(*k)) == 0)
			break;
	}
	if (link_r != NULL)
		*link_r = link;
	return *link;
}

static bool
is_banned(const struct client *c, time_t now)
{
	return c->banned_until != 0 && (time_t)c->banned_until > now;
}

/* Is the client worth keeping: banned, or failures within findtime? */
static bool
is_live(const struct ban *b, const struct client *c, time_t now)
{
	return is_banned(c, now) ||
	    (c->nfails > 0 && now - (time_t)c->last < (time_t)b->set.findtime);
}

static int
cmp_time(const void *a, const void *b)
{
	time_t x = *(const time_t *)a, y = *(const time_t *)b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* Makes room: drops dead clients, then the quietest tenth of the rest
 * (never a banned one). Amortized: runs only when the table is full. */
static void
evict(struct ban *b, time_t now)
{
	time_t *lasts, cutoff;
	size_t n = 0;

	for (size_t i = 0; i < b->nbuckets; i++) {
		struct client **link = &b->buckets[i];

		while (*link != NULL) {
			struct client *c = *link;

			if (!is_live(b, c, now)) {
				*link = c->next;
				free(c);
				b->count--;
			} else {
				link = &c->next;
			}
		}
	}
	if (b->count < b->set.max_tracked)
		return;
	lasts = xcalloc(b->count + 1, sizeof(*lasts));
	for (size_t i = 0; i < b->nbuckets; i++) {
		for (struct client *c = b->buckets[i]; c != NULL; c = c->next) {
			if (!is_banned(c, now))
				lasts[n++] = c->last;
		}
	}
	if (n == 0) {
		free(lasts);
		return;
	}
	qsort(lasts, n, sizeof(*lasts), cmp_time);
	cutoff = lasts[n / 10];
	free(lasts);
	for (size_t i = 0; i < b->nbuckets; i++) {
		struct client **link = &b->buckets[i];

		while (*link != NULL) {
			struct client *c = *link;

			if (!is_banned(c, now) && c->last <= cutoff) {
				*link = c->next;
				free(c);
				b->count--;
			} else {
				link = &c->next;
			}
		}
	}
}

/* The client for k, created if needed; NULL if the table is full of
 * banned clients. */
static struct client *
get(struct ban *b, const struct client_key *k, time_t now)
{
	struct client **link, *c = find(b, k, &link);

	if (c != NULL)
		return c;
	if (b->count >= b->set.max_tracked) {
		evict(b, now);
		if (b->count >= b->set.max_tracked)
			return NULL;
		find(b, k, &link);
	}
	c = xcalloc(1, sizeof(*c) + b->set.maxretry * sizeof(c->fails[0]));
	c->key = *k;
	*link = c;
	b->count++;
	return c;
}

/* Writes the active bans; called with the lock held. */
static int
save(struct ban *b, time_t now, char **error_r)
{
	struct buf out;
	int ret;

	if (b->path == NULL)
		return 0;
	buf_init(&out, BUF_UNLIMITED);
	buf_append_str(&out, "# tegami bans: address-or-/64 until-unix-time\n");
	for (size_t i = 0; i < b->nbuckets; i++) {
		for (struct client *c = b->buckets[i]; c != NULL; c = c->next) {
			char ip[64];

			if (!is_banned(c, now))
				continue;
			client_key_format(&c->key, ip, sizeof(ip));
			buf_printf(&out, "%s %lld\n", ip, (long long)c->banned_until);
		}
	}
	ret = file_write_atomic(b->path, out.data, out.len, 0600);
	buf_free(&out);
	if (ret < 0) {
		*error_r = xasprintf("ban: cannot write %s: %m", b->path);
		return -1;
	}
	return 0;
}

static void
load(struct ban *b, time_t now)
{
	char *data, **lines;
	size_t len, n;

	if (file_read_all(b->path, BAN_FILE_MAX, &data, &len) < 0)
		return;
	lines = str_split(data, "\n", &n);
	free(data);
	for (size_t i = 0; i < n; i++) {
		char **f;
		size_t nf;
		struct client_key k;
		unsigned long long until;
		struct client *c;

		if (lines[i][0] == '#')
			continue;
		f = str_split(lines[i], " \t", &nf);
		if (nf != 2 || client_key_parse(f[0], &k) < 0 ||
		    str_to_ullong(f[1], &until) < 0) {
			char esc[128];

			log_escape(esc, sizeof(esc), lines[i], strlen(lines[i]));
			log_warn("event=ban_list_skip file=%s line=\"%s\"", b->path,
			    esc);
		} else if ((time_t)until > now && until <= UINT32_MAX &&
		    (c = get(b, &k, now)) != NULL) {
			c->banned_until = (uint32_t)until;
			c->last = (uint32_t)now;
		}
		str_array_free(f);
	}
	str_array_free(lines);
}

int
ban_open(const char *state_path, const struct ban_settings *settings,
    time_t now, struct ban **ban_r, char **error_r)
{
	struct ban *b = xcalloc(1, sizeof(*b));

	b->set = settings != NULL ? *settings : ban_default_settings;
	if (b->set.maxretry == 0 || b->set.maxretry > BAN_MAXRETRY_MAX) {
		*error_r = xasprintf("ban: maxretry must be 1-%d", BAN_MAXRETRY_MAX);
		free(b);
		*ban_r = NULL;
		return -1;
	}
	if (b->set.max_tracked == 0)
		b->set.max_tracked = 1;
	b->nbuckets = 64;
	while (b->nbuckets < b->set.max_tracked && b->nbuckets < (1u << 20))
		b->nbuckets *= 2;
	b->buckets = xcalloc(b->nbuckets, sizeof(*b->buckets));
	pthread_mutex_init(&b->lock, NULL);
	if (state_path != NULL) {
		b->path = xstrdup(state_path);
		load(b, now);
	}
	*ban_r = b;
	return 0;
}

void
ban_close(struct ban **bp)
{
	struct ban *b = *bp;

	if (b == NULL)
		return;
	for (size_t i = 0; i < b->nbuckets; i++) {
		struct client *c = b->buckets[i], *next;

		for (; c != NULL; c = next) {
			next = c->next;
			free(c);
		}
	}
	pthread_mutex_destroy(&b->lock);
	free(b->buckets);
	free(b->path);
	free(b);
	*bp = NULL;
}

int
ban_record_failure(struct ban *b, const char *ip, time_t now)
{
	struct client_key k;
	struct client *c;
	int ret = 0;

	if (client_key_parse(ip, &k) < 0)
		return -1;
	pthread_mutex_lock(&b->lock);
	c = get(b, &k, now);
	if (c == NULL || is_banned(c, now))
		goto out;
	c->fails[c->head] = (uint32_t)now;
	c->head = (uint8_t)((c->head + 1) % b->set.maxretry);
	if (c->nfails < b->set.maxretry)
		c->nfails++;
	c->last = (uint32_t)now;
	/* the oldest of the last maxretry failures is at head now */
	if (c->nfails == b->set.maxretry &&
	    now - (time_t)c->fails[c->head] < (time_t)b->set.findtime) {
		char *err = NULL, txt[64];

		c->banned_until = (uint32_t)(now + (time_t)b->set.bantime);
		c->nfails = 0;
		c->head = 0;
		ret = 1;
		client_key_format(&c->key, txt, sizeof(txt));
		log_info("event=ban ip=%s until=%lld reason=failures count=%u",
		    txt, (long long)c->banned_until, b->set.maxretry);
		if (save(b, now, &err) < 0) {
			log_error("event=ban_save_failed error=\"%s\"", err);
			free(err);
		}
	}
out:
	pthread_mutex_unlock(&b->lock);
	return ret;
}

bool
ban_is_banned(struct ban *b, const char *ip, time_t now, time_t *until_r)
{
	struct client_key k;
	struct client *c;
	bool banned = false;

	if (until_r != NULL)
		*until_r = 0;
	if (client_key_parse(ip, &k) < 0)
		return false;
	pthread_mutex_lock(&b->lock);
	c = find(b, &k, NULL);
	if (c != NULL && is_banned(c, now)) {
		banned = true;
		if (until_r != NULL)
			*until_r = (time_t)c->banned_until;
	}
	pthread_mutex_unlock(&b->lock);
	return banned;
}

int
ban_add(struct ban *b, const char *ip, time_t now, unsigned int seconds,
    char **error_r)
{
	struct client_key k;
	struct client *c;
	int ret;

	if (client_key_parse(ip, &k) < 0) {
		*error_r = xasprintf("ban: not an IP address: %.64s", ip);
		return -1;
	}
	pthread_mutex_lock(&b->lock);
	c = get(b, &k, now);
	if (c == NULL) {
		pthread_mutex_unlock(&b->lock);
		*error_r = xstrdup("ban: the table is full of active bans");
		return -1;
	}
	c->banned_until = (uint32_t)(now + (time_t)(seconds != 0 ? seconds :
	    b->set.bantime));
	c->last = (uint32_t)now;
	ret = save(b, now, error_r);
	pthread_mutex_unlock(&b->lock);
	return ret;
}

int
ban_remove(struct ban *b, const char *ip, time_t now, char **error_r)
{
	struct client_key k;
	struct client **link, *c;
	int ret = 0;

	if (client_key_parse(ip, &k) < 0) {
		*error_r = xasprintf("ban: not an IP address: %.64s", ip);
		return -1;
	}
	pthread_mutex_lock(&b->lock);
	c = find(b, &k, &link);
	if (c != NULL) {
		bool was_banned = is_banned(c, now);

		*link = c->next;
		free(c);
		b->count--;
		if (was_banned) {
			ret = 1;
			/* a stale line in the file would bring it back at restart */
			if (save(b, now, error_r) < 0)
				ret = -1;
		}
	}
	pthread_mutex_unlock(&b->lock);
	return ret;
}

size_t
ban_list(struct ban *b, time_t now, struct ban_entry *out, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; i < b->nbuckets; i++) {
		for (struct client *c = b->buckets[i]; c != NULL; c = c->next) {
			if (!is_banned(c, now))
				continue;
			if (n < max) {
				client_key_format(&c->key, out[n].ip, sizeof(out[n].ip));
				out[n].until = (time_t)c->banned_until;
			}
			n++;
		}
	}
	pthread_mutex_unlock(&b->lock);
	return n;
}

size_t
ban_tracked(struct ban *b)
{
	size_t n;

	pthread_mutex_lock(&b->lock);
	n = b->count;
	pthread_mutex_unlock(&b->lock);
	return n;
}
