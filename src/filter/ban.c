/* Brute-force bans: failure counting per client in SQLite, shared by the
 * processes that take logins; a snapshot of the bans in memory. */
#include "filter/ban.h"

#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* One active ban in the snapshot. */
struct snap_entry {
	struct snap_entry *next;	/* hash chain */
	struct client_key key;
	time_t until;
};

struct snap {
	struct snap_entry **buckets;
	size_t nbuckets;		/* a power of two */
	size_t count;
};

struct ban {
	struct ban_settings set;
	pthread_mutex_t db_lock;	/* the connection and its statements */
	sqlite3 *db;
	sqlite3_stmt *get_ban, *put_ban, *del_ban, *get_fail, *put_fail,
	    *del_fail, *count_fail, *list_bans;
	long long data_version;
	pthread_mutex_t snap_lock;	/* the snapshot */
	struct snap snap;
};

static const char schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=NORMAL;"
	/* 512 KiB of page cache, not 2 MiB: the kernel's page cache holds
	 * the file anyway, and each worker has several such connections */
	"PRAGMA cache_size=-512;"
	/* times: the latest failures, unix seconds, oldest first */
	"CREATE TABLE IF NOT EXISTS failures ("
	"  client TEXT PRIMARY KEY NOT NULL, last INTEGER NOT NULL,"
	"  times TEXT NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS failures_last ON failures (last);"
	"CREATE TABLE IF NOT EXISTS bans ("
	"  client TEXT PRIMARY KEY NOT NULL, until INTEGER NOT NULL,"
	"  reason TEXT NOT NULL) WITHOUT ROWID;";

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
	/* "2001:db8::/64" as we write it ourselves */
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

/* ------------------------------------------------------------------ */
/* The snapshot.                                                       */

static size_t
key_hash(const struct client_key *k, size_t nbuckets)
{
	uint32_t h = 2166136261u;

	h = (h ^ k->family) * 16777619u;
	for (int i = 0; i < 16; i++)
		h = (h ^ k->addr[i]) * 16777619u;
	return h & (nbuckets - 1);
}

static void
snap_init(struct snap *s, size_t expect)
{
	s->nbuckets = 64;
	while (s->nbuckets < expect && s->nbuckets < (1u << 20))
		s->nbuckets *= 2;
	s->buckets = xcalloc(s->nbuckets, sizeof(*s->buckets));
	s->count = 0;
}

static void
snap_free(struct snap *s)
{
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct snap_entry *e = s->buckets[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(s->buckets);
	memset(s, 0, sizeof(*s));
}

static struct snap_entry **
snap_find(struct snap *s, const struct client_key *k)
{
	struct snap_entry **link = &s->buckets[key_hash(k, s->nbuckets)];

	for (; *link != NULL; link = &(*link)->next)
		if (memcmp(&(*link)->key, k, sizeof(*k)) == 0)
			break;
	return link;
}

static void
snap_put(struct snap *s, const struct client_key *k, time_t until)
{
	struct snap_entry **link = snap_find(s, k);

	if (*link == NULL) {
		*link = xcalloc(1, sizeof(**link));
		(*link)->key = *k;
		s->count++;
	}
	(*link)->until = until;
}

static void
snap_del(struct snap *s, const struct client_key *k)
{
	struct snap_entry **link = snap_find(s, k), *e = *link;

	if (e != NULL) {
		*link = e->next;
		free(e);
		s->count--;
	}
}

/* ------------------------------------------------------------------ */
/* The database. Callers hold db_lock.                                 */

static int
db_fail(struct ban *b, const char *what, char **error_r)
{
	const char *msg = sqlite3_errmsg(b->db);

	if (error_r != NULL)
		*error_r = xasprintf("ban: %s: %s", what, msg);
	else
		log_error("event=ban_db_failed step=%s error=\"%s\"", what, msg);
	return -1;
}

static int
exec(struct ban *b, const char *sql, char **error_r)
{
	if (sqlite3_exec(b->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(b, sql, error_r);
	return 0;
}

/* Runs a statement without rows; resets it. */
static int
step_done(struct ban *b, sqlite3_stmt *st, const char *what, char **error_r)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return db_fail(b, what, error_r);
	return 0;
}

/* The ban's end on file for client (0 = none); -1 on error. */
static int
db_ban_until(struct ban *b, const char *client, long long *until_r)
{
	int rc;

	*until_r = 0;
	sqlite3_bind_text(b->get_ban, 1, client, -1, SQLITE_STATIC);
	rc = sqlite3_step(b->get_ban);
	if (rc == SQLITE_ROW)
		*until_r = sqlite3_column_int64(b->get_ban, 0);
	sqlite3_reset(b->get_ban);
	sqlite3_clear_bindings(b->get_ban);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_fail(b, "read ban", NULL);
	return 0;
}

static int
db_put_ban(struct ban *b, const char *client, long long until,
    const char *reason, char **error_r)
{
	sqlite3_bind_text(b->put_ban, 1, client, -1, SQLITE_STATIC);
	sqlite3_bind_int64(b->put_ban, 2, until);
	sqlite3_bind_text(b->put_ban, 3, reason, -1, SQLITE_STATIC);
	return step_done(b, b->put_ban, "write ban", error_r);
}

static int
db_del(struct ban *b, sqlite3_stmt *st, const char *client, char **error_r)
{
	sqlite3_bind_text(st, 1, client, -1, SQLITE_STATIC);
	return step_done(b, st, "delete", error_r);
}

static long long
db_count_failures(struct ban *b)
{
	long long n = -1;

	if (sqlite3_step(b->count_fail) == SQLITE_ROW)
		n = sqlite3_column_int64(b->count_fail, 0);
	sqlite3_reset(b->count_fail);
	return n;
}

/*
 * Keeps at most max_tracked clients with failures: the dead ones (last
 * failure older than findtime) go first, then the quietest tenth.
 */
static void
db_prune(struct ban *b, time_t now)
{
	long long n = db_count_failures(b);
	char sql[256];

	if (n < 0 || (size_t)n <= b->set.max_tracked)
		return;
	snprintf(sql, sizeof(sql), "DELETE FROM failures WHERE last <= %lld;"
	    "DELETE FROM bans WHERE until <= %lld;",
	    (long long)now - (long long)b->set.findtime, (long long)now);
	if (exec(b, sql, NULL) < 0)
		return;
	n = db_count_failures(b);
	if (n < 0 || (size_t)n <= b->set.max_tracked)
		return;
	snprintf(sql, sizeof(sql), "DELETE FROM failures WHERE client IN "
	    "(SELECT client FROM failures ORDER BY last LIMIT %lld)",
	    n - (long long)(b->set.max_tracked - b->set.max_tracked / 10));
	(void)exec(b, sql, NULL);
}

/* "t1 t2 ..." into times[], those after `after` only; returns the count. */
static size_t
parse_times(const char *text, time_t after, time_t *times, size_t max)
{
	size_t n = 0;
	const char *p = text;

	while (*p != '\0' && n < max) {
		char *end;
		unsigned long long v = strtoull(p, &end, 10);

		if (end == p)
			break;
		if ((time_t)v > after)
			times[n++] = (time_t)v;
		p = end;
		while (*p == ' ')
			p++;
	}
	return n;
}

/* ------------------------------------------------------------------ */

static int
load_snapshot(struct ban *b, time_t now, struct snap *out, char **error_r)
{
	int rc;

	snap_init(out, 64);
	sqlite3_bind_int64(b->list_bans, 1, (long long)now);
	while ((rc = sqlite3_step(b->list_bans)) == SQLITE_ROW) {
		const char *client = (const char *)sqlite3_column_text(b->list_bans,
		    0);
		struct client_key k;

		if (client != NULL && client_key_parse(client, &k) == 0)
			snap_put(out, &k, (time_t)sqlite3_column_int64(b->list_bans,
			    1));
	}
	sqlite3_reset(b->list_bans);
	sqlite3_clear_bindings(b->list_bans);
	if (rc != SQLITE_DONE) {
		snap_free(out);
		return db_fail(b, "list bans", error_r);
	}
	return 0;
}

static long long
data_version(struct ban *b)
{
	sqlite3_stmt *st;
	long long v = -1;

	if (sqlite3_prepare_v2(b->db, "PRAGMA data_version", -1, &st, NULL) !=
	    SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

int
ban_open(const char *path, const struct ban_settings *settings, time_t now,
    struct ban **ban_r, char **error_r)
{
	struct ban *b = xcalloc(1, sizeof(*b));
	struct snap snap;
	char sql[128];

	*ban_r = NULL;
	b->set = settings != NULL ? *settings : ban_default_settings;
	pthread_mutex_init(&b->db_lock, NULL);
	pthread_mutex_init(&b->snap_lock, NULL);
	snap_init(&b->snap, 64);
	if (b->set.maxretry == 0 || b->set.maxretry > BAN_MAXRETRY_MAX) {
		*error_r = xasprintf("ban: maxretry must be 1-%d", BAN_MAXRETRY_MAX);
		goto fail;
	}
	if (b->set.max_tracked == 0)
		b->set.max_tracked = 1;
	if (sqlite3_open_v2(path != NULL ? path : ":memory:", &b->db,
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	    NULL) != SQLITE_OK) {
		*error_r = xasprintf("ban: cannot open %s: %s", path != NULL ?
		    path : "memory", b->db != NULL ? sqlite3_errmsg(b->db) :
		    "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(b->db, 5000);
	if (exec(b, schema, error_r) < 0)
		goto fail;
#define PREP(sql, st) \
	if (sqlite3_prepare_v2(b->db, sql, -1, &b->st, NULL) != SQLITE_OK) { \
		db_fail(b, "prepare", error_r); goto fail; }
	PREP("SELECT until FROM bans WHERE client=?1", get_ban);
	PREP("INSERT OR REPLACE INTO bans (client, until, reason) "
	    "VALUES (?1, ?2, ?3)", put_ban);
	PREP("DELETE FROM bans WHERE client=?1", del_ban);
	PREP("SELECT times FROM failures WHERE client=?1", get_fail);
	PREP("INSERT OR REPLACE INTO failures (client, last, times) "
	    "VALUES (?1, ?2, ?3)", put_fail);
	PREP("DELETE FROM failures WHERE client=?1", del_fail);
	PREP("SELECT count(*) FROM failures", count_fail);
	PREP("SELECT client, until FROM bans WHERE until > ?1", list_bans);
#undef PREP
	/* Ended bans are of no use to anyone. */
	snprintf(sql, sizeof(sql), "DELETE FROM bans WHERE until <= %lld",
	    (long long)now);
	/* may fail on a file we can only read: fine for a list */
	(void)sqlite3_exec(b->db, sql, NULL, NULL, NULL);
	b->data_version = data_version(b);
	if (load_snapshot(b, now, &snap, error_r) < 0)
		goto fail;
	snap_free(&b->snap);
	b->snap = snap;
	*ban_r = b;
	return 0;
fail:
	ban_close(&b);
	return -1;
}

void
ban_close(struct ban **bp)
{
	struct ban *b = *bp;

	if (b == NULL)
		return;
	sqlite3_finalize(b->get_ban);
	sqlite3_finalize(b->put_ban);
	sqlite3_finalize(b->del_ban);
	sqlite3_finalize(b->get_fail);
	sqlite3_finalize(b->put_fail);
	sqlite3_finalize(b->del_fail);
	sqlite3_finalize(b->count_fail);
	sqlite3_finalize(b->list_bans);
	if (b->db != NULL)
		sqlite3_close(b->db);
	snap_free(&b->snap);
	pthread_mutex_destroy(&b->db_lock);
	pthread_mutex_destroy(&b->snap_lock);
	free(b);
	*bp = NULL;
}

int
ban_record_failure(struct ban *b, const char *ip, time_t now)
{
	struct client_key k;
	char client[64], *times_text = NULL;
	time_t times[BAN_MAXRETRY_MAX + 1];
	long long until = 0;
	size_t n = 0;
	bool known = false;
	int ret = -1, rc;

	if (client_key_parse(ip, &k) < 0)
		return -1;
	client_key_format(&k, client, sizeof(client));
	pthread_mutex_lock(&b->db_lock);
	/* IMMEDIATE: the write lock first, so two processes counting the
	 * same client take turns instead of failing to upgrade. */
	if (exec(b, "BEGIN IMMEDIATE", NULL) < 0)
		goto out;
	if (db_ban_until(b, client, &until) < 0)
		goto rollback;
	if (until > (long long)now) {
		ret = 0;	/* banned by someone else meanwhile */
		goto commit;
	}
	sqlite3_bind_text(b->get_fail, 1, client, -1, SQLITE_STATIC);
	rc = sqlite3_step(b->get_fail);
	if (rc == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(b->get_fail, 0);

		known = true;
		n = parse_times(t != NULL ? t : "", now - (time_t)b->set.findtime,
		    times, b->set.maxretry);
	}
	sqlite3_reset(b->get_fail);
	sqlite3_clear_bindings(b->get_fail);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		db_fail(b, "read failures", NULL);
		goto rollback;
	}
	times[n++] = now;
	if (n >= b->set.maxretry) {
		until = (long long)now + (long long)b->set.bantime;
		if (db_put_ban(b, client, until, "failures", NULL) < 0 ||
		    db_del(b, b->del_fail, client, NULL) < 0)
			goto rollback;
		ret = 1;
	} else {
		char txt[BAN_MAXRETRY_MAX * 21 + 1];
		size_t off = 0;

		/* n < maxretry times, each at most 20 digits and a space */
		txt[0] = '\0';
		for (size_t i = 0; i < n; i++)
			off += (size_t)snprintf(txt + off, sizeof(txt) - off,
			    "%s%lld", i > 0 ? " " : "", (long long)times[i]);
		times_text = xstrdup(txt);
		sqlite3_bind_text(b->put_fail, 1, client, -1, SQLITE_STATIC);
		sqlite3_bind_int64(b->put_fail, 2, (long long)now);
		sqlite3_bind_text(b->put_fail, 3, times_text, -1, SQLITE_STATIC);
		if (step_done(b, b->put_fail, "write failures", NULL) < 0)
			goto rollback;
		if (!known)
			db_prune(b, now);
		ret = 0;
	}
commit:
	if (exec(b, "COMMIT", NULL) < 0) {
		ret = -1;
		goto rollback;
	}
	goto out;
rollback:
	(void)sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
out:
	pthread_mutex_unlock(&b->db_lock);
	free(times_text);
	if (until > (long long)now && ret >= 0) {
		pthread_mutex_lock(&b->snap_lock);
		snap_put(&b->snap, &k, (time_t)until);
		pthread_mutex_unlock(&b->snap_lock);
	}
	if (ret == 1)
		log_info("event=ban ip=%s until=%lld reason=failures count=%u",
		    client, until, b->set.maxretry);
	return ret;
}

bool
ban_is_banned(struct ban *b, const char *ip, time_t now, time_t *until_r)
{
	struct client_key k;
	struct snap_entry *e;
	bool banned = false;

	if (until_r != NULL)
		*until_r = 0;
	if (client_key_parse(ip, &k) < 0)
		return false;
	pthread_mutex_lock(&b->snap_lock);
	e = *snap_find(&b->snap, &k);
	if (e != NULL && e->until > now) {
		banned = true;
		if (until_r != NULL)
			*until_r = e->until;
	}
	pthread_mutex_unlock(&b->snap_lock);
	return banned;
}

int
ban_add(struct ban *b, const char *ip, time_t now, unsigned int seconds,
    char **error_r)
{
	struct client_key k;
	char client[64];
	long long until;
	int ret;

	if (client_key_parse(ip, &k) < 0) {
		*error_r = xasprintf("ban: not an IP address: %.64s", ip);
		return -1;
	}
	client_key_format(&k, client, sizeof(client));
	until = (long long)now + (long long)(seconds != 0 ? seconds :
	    b->set.bantime);
	pthread_mutex_lock(&b->db_lock);
	ret = db_put_ban(b, client, until, "manual", error_r);
	pthread_mutex_unlock(&b->db_lock);
	if (ret == 0) {
		pthread_mutex_lock(&b->snap_lock);
		snap_put(&b->snap, &k, (time_t)until);
		pthread_mutex_unlock(&b->snap_lock);
	}
	return ret;
}

int
ban_remove(struct ban *b, const char *ip, time_t now, char **error_r)
{
	struct client_key k;
	char client[64];
	long long until = 0;
	int ret = -1;

	if (client_key_parse(ip, &k) < 0) {
		*error_r = xasprintf("ban: not an IP address: %.64s", ip);
		return -1;
	}
	client_key_format(&k, client, sizeof(client));
	pthread_mutex_lock(&b->db_lock);
	if (exec(b, "BEGIN IMMEDIATE", error_r) < 0)
		goto out;
	if (db_ban_until(b, client, &until) < 0 ||
	    db_del(b, b->del_ban, client, error_r) < 0 ||
	    db_del(b, b->del_fail, client, error_r) < 0 ||
	    exec(b, "COMMIT", error_r) < 0) {
		if (*error_r == NULL)
			*error_r = xstrdup("ban: cannot read the ban list");
		(void)sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
		goto out;
	}
	ret = until > (long long)now ? 1 : 0;
out:
	pthread_mutex_unlock(&b->db_lock);
	if (ret >= 0) {
		pthread_mutex_lock(&b->snap_lock);
		snap_del(&b->snap, &k);
		pthread_mutex_unlock(&b->snap_lock);
	}
	return ret;
}

int
ban_refresh(struct ban *b, time_t now, char **error_r)
{
	struct snap fresh, old;
	long long v;
	int ret = 0;

	pthread_mutex_lock(&b->db_lock);
	v = data_version(b);
	if (v < 0) {
		ret = db_fail(b, "data_version", error_r);
	} else if (v != b->data_version) {
		if (load_snapshot(b, now, &fresh, error_r) < 0) {
			ret = -1;
		} else {
			b->data_version = v;
			pthread_mutex_lock(&b->snap_lock);
			old = b->snap;
			b->snap = fresh;
			pthread_mutex_unlock(&b->snap_lock);
			snap_free(&old);
			ret = 1;
		}
	}
	pthread_mutex_unlock(&b->db_lock);
	return ret;
}

size_t
ban_list(struct ban *b, time_t now, struct ban_entry *out, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&b->snap_lock);
	for (size_t i = 0; i < b->snap.nbuckets; i++) {
		for (struct snap_entry *e = b->snap.buckets[i]; e != NULL;
		    e = e->next) {
			if (e->until <= now)
				continue;
			if (n < max) {
				client_key_format(&e->key, out[n].ip,
				    sizeof(out[n].ip));
				out[n].until = e->until;
			}
			n++;
		}
	}
	pthread_mutex_unlock(&b->snap_lock);
	return n;
}

size_t
ban_tracked(struct ban *b, time_t now)
{
	sqlite3_stmt *st;
	long long n = 0;
	char sql[200];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM (SELECT client FROM "
	    "failures UNION SELECT client FROM bans WHERE until > %lld)",
	    (long long)now);
	pthread_mutex_lock(&b->db_lock);
	if (sqlite3_prepare_v2(b->db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&b->db_lock);
	return n < 0 ? 0 : (size_t)n;
}
