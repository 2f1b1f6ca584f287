/* Greylisting, Postgrey style, on SQLite. */
#include "filter/greylist.h"

#include "lib/file.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <regex.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KEY_MAX 320
#define WL_FILE_MAX (1024 * 1024)
#define WL_ENTRIES_MAX 10000

const struct greylist_settings greylist_default_settings = {
	.delay = 300,
	.max_age_days = 35,
	.awl_clients = 5,
};

const char *
greylist_verdict_name(enum greylist_verdict v)
{
	switch (v) {
	case GREYLIST_PASS: return "pass";
	case GREYLIST_DEFER: return "defer";
	case GREYLIST_WHITELISTED: return "whitelisted";
	}
	return "?";
}

enum wl_kind {
	WL_NET,		/* address or network (also an IPv4 "a.b.c." prefix) */
	WL_DOMAIN,	/* name and its subdomains */
	WL_REGEX,
	WL_ADDR,	/* full address */
	WL_LOCALPART,	/* "postmaster@" */
};

struct wl_entry {
	enum wl_kind kind;
	char *text;
	int family;
	uint8_t addr[16];
	unsigned int bits;
	regex_t re;
};

struct wl_list {
	struct wl_entry *e;
	size_t n;
};

struct greylist {
	sqlite3 *db;
	struct greylist_settings set;
	struct wl_list clients;
	struct wl_list recipients;
	sqlite3_stmt *get;
	sqlite3_stmt *put;
	sqlite3_stmt *touch;
	sqlite3_stmt *get_client;
	sqlite3_stmt *bump_client;
	sqlite3_stmt *get_domain;
	sqlite3_stmt *put_domain;
};

static const char schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=NORMAL;"
	/* 512 KiB of page cache, not 2 MiB: the kernel's page cache holds
	 * the file anyway, and each worker has several such connections */
	"PRAGMA cache_size=-512;"
	"CREATE TABLE IF NOT EXISTS greylist ("
	"  net TEXT NOT NULL, sender TEXT NOT NULL, rcpt TEXT NOT NULL,"
	"  first INTEGER NOT NULL, last INTEGER NOT NULL, passed INTEGER NOT NULL,"
	"  PRIMARY KEY (net, sender, rcpt)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS greylist_last ON greylist (last);"
	"CREATE TABLE IF NOT EXISTS greylist_clients ("
	"  net TEXT PRIMARY KEY NOT NULL, count INTEGER NOT NULL,"
	"  last INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS greylist_domains ("
	"  domain TEXT PRIMARY KEY NOT NULL, last INTEGER NOT NULL);";

static int
db_error(struct greylist *gl, const char *what, char **error_r)
{
	*error_r = xasprintf("greylist: %s: %s", what, sqlite3_errmsg(gl->db));
	return -1;
}

static void
wl_free(struct wl_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		if (l->e[i].kind == WL_REGEX)
			regfree(&l->e[i].re);
		free(l->e[i].text);
	}
	free(l->e);
	l->e = NULL;
	l->n = 0;
}

int
greylist_open(const char *dir, const struct greylist_settings *settings,
    struct greylist **gl_r, char **error_r)
{
	struct greylist *gl = xcalloc(1, sizeof(*gl));
	char *path = xasprintf("%s/greylist.db", dir), *err = NULL;
	int ret = -1;

	*gl_r = NULL;
	gl->set = settings != NULL ? *settings : greylist_default_settings;
	if (sqlite3_open_v2(path, &gl->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		*error_r = xasprintf("greylist: cannot open %s: %s", path,
		    gl->db != NULL ? sqlite3_errmsg(gl->db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(gl->db, 5000);
	if (sqlite3_exec(gl->db, schema, NULL, NULL, &err) != SQLITE_OK) {
		*error_r = xasprintf("greylist: schema of %s: %s", path,
		    err != NULL ? err : "?");
		sqlite3_free(err);
		goto out;
	}
#define PREP(sql, st) \
	if (sqlite3_prepare_v2(gl->db, sql, -1, &gl->st, NULL) != SQLITE_OK) { \
		db_error(gl, "prepare", error_r); goto out; }
	PREP("SELECT first, last, passed FROM greylist WHERE net=?1 AND "
	    "sender=?2 AND rcpt=?3", get);
	PREP("INSERT OR REPLACE INTO greylist (net, sender, rcpt, first, last, "
	    "passed) VALUES (?1, ?2, ?3, ?4, ?4, 0)", put);
	PREP("UPDATE greylist SET last=?4, passed=?5 WHERE net=?1 AND sender=?2 "
	    "AND rcpt=?3", touch);
	PREP("SELECT count, last FROM greylist_clients WHERE net=?1", get_client);
	PREP("INSERT INTO greylist_clients (net, count, last) VALUES (?1, 1, ?2) "
	    "ON CONFLICT (net) DO UPDATE SET count = count + 1, last = ?2 "
	    "WHERE last <= ?2 - 3600", bump_client);	/* once an hour */
	PREP("SELECT last FROM greylist_domains WHERE domain=?1", get_domain);
	PREP("INSERT INTO greylist_domains (domain, last) VALUES (?1, ?2) "
	    "ON CONFLICT (domain) DO UPDATE SET last = ?2", put_domain);
#undef PREP
	ret = 0;
out:
	free(path);
	if (ret < 0)
		greylist_close(&gl);
	*gl_r = gl;
	return ret;
}

void
greylist_close(struct greylist **glp)
{
	struct greylist *gl = *glp;

	if (gl == NULL)
		return;
	sqlite3_finalize(gl->get);
	sqlite3_finalize(gl->put);
	sqlite3_finalize(gl->touch);
	sqlite3_finalize(gl->get_client);
	sqlite3_finalize(gl->bump_client);
	sqlite3_finalize(gl->get_domain);
	sqlite3_finalize(gl->put_domain);
	sqlite3_close(gl->db);
	wl_free(&gl->clients);
	wl_free(&gl->recipients);
	free(gl);
	*glp = NULL;
}

/* ------------------------------------------------------------------ */
/* Keys.                                                               */

static int
parse_ip(const char *s, int *family_r, uint8_t addr[16])
{
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, s, addr) == 1) {
		*family_r = 4;
		return 0;
	}
	if (inet_pton(AF_INET6, s, addr) == 1) {
		static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		    0xff, 0xff };

		if (memcmp(addr, mapped, 12) == 0) {
			memmove(addr, addr + 12, 4);
			memset(addr + 4, 0, 12);
			*family_r = 4;
		} else {
			*family_r = 6;
		}
		return 0;
	}
	return -1;
}

int
greylist_net_key(const char *ip, char *out, size_t outsize)
{
	uint8_t a[16];
	int family;
	char txt[INET6_ADDRSTRLEN];

	if (parse_ip(ip, &family, a) < 0)
		return -1;
	if (family == 4) {
		a[3] = 0;
		inet_ntop(AF_INET, a, txt, sizeof(txt));
		snprintf(out, outsize, "%s/24", txt);
	} else {
		memset(a + 8, 0, 8);
		inet_ntop(AF_INET6, a, txt, sizeof(txt));
		snprintf(out, outsize, "%s/64", txt);
	}
	return 0;
}

void
greylist_sender_key(const char *sender, char *out, size_t outsize)
{
	const char *at = strrchr(sender, '@');
	size_t llen = at != NULL ? (size_t)(at - sender) : strlen(sender);
	size_t n = 0;

	if (outsize == 0)
		return;
	if (sender[0] == '\0') {
		str_copy(out, outsize, "<>");
		return;
	}
	for (size_t i = 0; i < llen && n + 2 < outsize; i++) {
		char c = (char)tolower((unsigned char)sender[i]);

		if (c == '+')
			break;	/* the extension varies per message */
		if (isdigit((unsigned char)c)) {
			/* a number standing alone (not inside a word) becomes '#' */
			size_t j = i;
			bool alone = i == 0 || !isalpha((unsigned char)sender[i - 1]);

			while (j < llen && isdigit((unsigned char)sender[j]))
				j++;
			if (alone && (j == llen || !isalpha((unsigned char)sender[j]))) {
				out[n++] = '#';
			} else {
				for (size_t k = i; k < j && n + 2 < outsize; k++)
					out[n++] = sender[k];
			}
			i = j - 1;
			continue;
		}
		out[n++] = c;
	}
	for (size_t i = llen; sender[i] != '\0' && n + 1 < outsize; i++)
		out[n++] = (char)tolower((unsigned char)sender[i]);
	out[n] = '\0';
}

/* ------------------------------------------------------------------ */
/* Whitelists.                                                         */

static bool
is_all_ip_chars(const char *s)
{
	for (; *s != '\0'; s++) {
		if (!isxdigit((unsigned char)*s) && *s != '.' && *s != ':' &&
		    *s != '/')
			return false;
	}
	return true;
}

static int
wl_parse_line(struct wl_entry *e, char *line, bool clients, char **error_r)
{
	size_t len = strlen(line);
	char *slash;
	int rc;

	memset(e, 0, sizeof(*e));
	if (len >= 2 && line[0] == '/' && line[len - 1] == '/') {
		line[len - 1] = '\0';
		rc = regcomp(&e->re, line + 1, REG_EXTENDED | REG_ICASE | REG_NOSUB);
		if (rc != 0) {
			char msg[128];

			regerror(rc, &e->re, msg, sizeof(msg));
			*error_r = xstrdup(msg);
			return -1;
		}
		e->kind = WL_REGEX;
		e->text = xstrdup(line + 1);
		return 0;
	}
	str_lower(line);
	e->text = xstrdup(line);
	if (clients && is_all_ip_chars(line) && (strchr(line, '.') != NULL ||
	    strchr(line, ':') != NULL)) {
		char addr[64];
		unsigned long long bits = 0;

		e->kind = WL_NET;
		str_copy(addr, sizeof(addr), line);
		slash = strchr(addr, '/');
		if (slash != NULL)
			*slash = '\0';
		if (len > 0 && line[len - 1] == '.' && slash == NULL) {
			/* "192.0.2." = 192.0.2.0/24 */
			int dots = 0;

			for (char *p = addr; *p != '\0'; p++)
				dots += *p == '.';
			for (int i = dots; i < 4; i++)
				strcat(addr, i == dots ? "0" : ".0");
			bits = (unsigned long long)dots * 8;
			slash = addr;	/* bits given */
		}
		if (parse_ip(addr, &e->family, e->addr) < 0 ||
		    (slash != NULL && slash != addr &&
		    (str_to_ullong(slash + 1, &bits) < 0 ||
		    bits > (e->family == 4 ? 32u : 128u)))) {
			/* "cafe.de" is made of hex digits too: a domain */
			if (strchr(line, '/') == NULL && strchr(line, ':') == NULL &&
			    line[len - 1] != '.') {
				e->kind = WL_DOMAIN;
				return 0;
			}
			*error_r = xstrdup("bad address or network");
			free(e->text);
			return -1;
		}
		e->bits = slash != NULL ? (unsigned int)bits :
		    (e->family == 4 ? 32 : 128);
		return 0;
	}
	if (!clients && len > 1 && line[len - 1] == '@') {
		e->kind = WL_LOCALPART;
		return 0;
	}
	e->kind = !clients && strchr(line, '@') != NULL ? WL_ADDR : WL_DOMAIN;
	return 0;
}

static int
wl_load(const char *path, bool clients, struct wl_list *out, char **error_r)
{
	char *data, **lines;
	size_t len, n;
	struct wl_list l = { NULL, 0 };

	memset(out, 0, sizeof(*out));
	if (path == NULL)
		return 0;
	if (file_read_all(path, WL_FILE_MAX, &data, &len) < 0)
		return 0;	/* no file, no list (as Postgrey) */
	lines = str_split(data, "\n", &n);
	free(data);
	l.e = xcalloc(n + 1, sizeof(*l.e));
	for (size_t i = 0; i < n && l.n < WL_ENTRIES_MAX; i++) {
		char *hash = strchr(lines[i], '#'), *line, *err = NULL;

		if (hash != NULL && lines[i][0] != '/')
			*hash = '\0';
		line = str_trim(lines[i]);
		if (*line == '\0')
			continue;
		if (wl_parse_line(&l.e[l.n], line, clients, &err) < 0) {
			*error_r = xasprintf("%s: \"%.100s\": %s", path, line, err);
			free(err);
			str_array_free(lines);
			wl_free(&l);
			return -1;
		}
		l.n++;
	}
	str_array_free(lines);
	*out = l;
	return 0;
}

int
greylist_load_whitelists(struct greylist *gl, const char *clients_path,
    const char *recipients_path, char **error_r)
{
	struct wl_list c, r;

	if (wl_load(clients_path, true, &c, error_r) < 0)
		return -1;
	if (wl_load(recipients_path, false, &r, error_r) < 0) {
		wl_free(&c);
		return -1;
	}
	wl_free(&gl->clients);
	wl_free(&gl->recipients);
	gl->clients = c;
	gl->recipients = r;
	return 0;
}

static bool
prefix_match(const uint8_t *a, const uint8_t *b, unsigned int bits)
{
	for (unsigned int i = 0; i < bits / 8; i++) {
		if (a[i] != b[i])
			return false;
	}
	if (bits % 8 != 0) {
		uint8_t mask = (uint8_t)(0xff << (8 - bits % 8));

		return (a[bits / 8] & mask) == (b[bits / 8] & mask);
	}
	return true;
}

static bool
domain_within(const char *name, const char *domain)
{
	size_t n = strlen(name), d = strlen(domain);

	if (d == 0 || n < d || strcasecmp(name + n - d, domain) != 0)
		return false;
	return n == d || name[n - d - 1] == '.';
}

static bool
client_whitelisted(const struct greylist *gl, const char *ip,
    const char *name)
{
	uint8_t a[16];
	int family;
	bool have_ip = parse_ip(ip, &family, a) == 0;

	for (size_t i = 0; i < gl->clients.n; i++) {
		const struct wl_entry *e = &gl->clients.e[i];

		switch (e->kind) {
		case WL_NET:
			if (have_ip && family == e->family &&
			    prefix_match(a, e->addr, e->bits))
				return true;
			break;
		case WL_DOMAIN:
			if (name != NULL && domain_within(name, e->text))
				return true;
			break;
		case WL_REGEX:
			if (name != NULL && regexec(&e->re, name, 0, NULL, 0) == 0)
				return true;
			break;
		default:
			break;
		}
	}
	return false;
}

static bool
recipient_whitelisted(const struct greylist *gl, const char *rcpt)
{
	const char *at = strrchr(rcpt, '@');

	for (size_t i = 0; i < gl->recipients.n; i++) {
		const struct wl_entry *e = &gl->recipients.e[i];

		switch (e->kind) {
		case WL_ADDR:
			if (strcasecmp(rcpt, e->text) == 0)
				return true;
			break;
		case WL_LOCALPART:
			if (at != NULL && (size_t)(at - rcpt) + 1 == strlen(e->text) &&
			    strncasecmp(rcpt, e->text, strlen(e->text)) == 0)
				return true;
			break;
		case WL_DOMAIN:
			if (at != NULL && domain_within(at + 1, e->text))
				return true;
			break;
		case WL_REGEX:
			if (regexec(&e->re, rcpt, 0, NULL, 0) == 0)
				return true;
			break;
		default:
			break;
		}
	}
	return false;
}

/* ------------------------------------------------------------------ */
/* The check.                                                          */

static int
step_done(struct greylist *gl, sqlite3_stmt *st, char **error_r)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : db_error(gl, "write", error_r);
}

static int
bump_client(struct greylist *gl, const char *net, time_t now, char **error_r)
{
	if (gl->set.awl_clients == 0)
		return 0;
	sqlite3_bind_text(gl->bump_client, 1, net, -1, SQLITE_STATIC);
	sqlite3_bind_int64(gl->bump_client, 2, (sqlite3_int64)now);
	return step_done(gl, gl->bump_client, error_r);
}

static int
client_auto_whitelisted(struct greylist *gl, const char *net, time_t now,
    bool *yes_r, char **error_r)
{
	sqlite3_stmt *st = gl->get_client;
	int rc;

	*yes_r = false;
	if (gl->set.awl_clients == 0)
		return 0;
	sqlite3_bind_text(st, 1, net, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		long long count = sqlite3_column_int64(st, 0);
		time_t last = (time_t)sqlite3_column_int64(st, 1);

		*yes_r = count >= (long long)gl->set.awl_clients &&
		    now - last <= (time_t)gl->set.max_age_days * 86400;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(gl, "read client", error_r);
	return 0;
}

int
greylist_check(struct greylist *gl, const struct greylist_request *req,
    enum greylist_verdict *verdict_r, unsigned int *wait_r, char **error_r)
{
	char net[64], sender[KEY_MAX], rcpt[KEY_MAX];
	time_t now = req->now, max_age = (time_t)gl->set.max_age_days * 86400;
	sqlite3_stmt *st = gl->get;
	bool awl;
	int rc;

	if (wait_r != NULL)
		*wait_r = 0;
	*verdict_r = GREYLIST_PASS;
	if (greylist_net_key(req->client_ip, net, sizeof(net)) < 0) {
		*error_r = xasprintf("greylist: bad client address %.64s",
		    req->client_ip);
		return -1;
	}
	if (client_whitelisted(gl, req->client_ip, req->client_name) ||
	    recipient_whitelisted(gl, req->recipient)) {
		*verdict_r = GREYLIST_WHITELISTED;
		return 0;
	}
	if (req->verified_domain != NULL && req->verified_domain[0] != '\0') {
		char dom[KEY_MAX];
		time_t last = 0;

		str_copy(dom, sizeof(dom), req->verified_domain);
		str_lower(dom);
		sqlite3_bind_text(gl->get_domain, 1, dom, -1, SQLITE_STATIC);
		rc = sqlite3_step(gl->get_domain);
		if (rc == SQLITE_ROW)
			last = (time_t)sqlite3_column_int64(gl->get_domain, 0);
		sqlite3_reset(gl->get_domain);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return db_error(gl, "read domain", error_r);
		if (rc == SQLITE_ROW && now - last <= max_age) {
			*verdict_r = GREYLIST_WHITELISTED;
			return 0;
		}
	}
	if (client_auto_whitelisted(gl, net, now, &awl, error_r) < 0)
		return -1;
	if (awl) {
		*verdict_r = GREYLIST_WHITELISTED;
		return bump_client(gl, net, now, error_r);
	}
	greylist_sender_key(req->sender, sender, sizeof(sender));
	str_copy(rcpt, sizeof(rcpt), req->recipient);
	str_lower(rcpt);

	sqlite3_bind_text(st, 1, net, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sender, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, rcpt, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		time_t first = (time_t)sqlite3_column_int64(st, 0);
		time_t last = (time_t)sqlite3_column_int64(st, 1);
		bool passed = sqlite3_column_int(st, 2) != 0;

		sqlite3_reset(st);
		if (now - last <= max_age) {
			sqlite3_stmt *t = gl->touch;

			if (!passed && now - first < (time_t)gl->set.delay) {
				*verdict_r = GREYLIST_DEFER;
				if (wait_r != NULL)
					*wait_r = (unsigned int)(gl->set.delay -
					    (unsigned int)(now - first));
			}
			sqlite3_bind_text(t, 1, net, -1, SQLITE_STATIC);
			sqlite3_bind_text(t, 2, sender, -1, SQLITE_STATIC);
			sqlite3_bind_text(t, 3, rcpt, -1, SQLITE_STATIC);
			sqlite3_bind_int64(t, 4, (sqlite3_int64)now);
			sqlite3_bind_int(t, 5, *verdict_r == GREYLIST_PASS ? 1 : 0);
			if (step_done(gl, t, error_r) < 0)
				return -1;
			if (*verdict_r == GREYLIST_PASS)
				return bump_client(gl, net, now, error_r);
			return 0;
		}
		/* too old: a new first try */
	} else {
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return db_error(gl, "read triplet", error_r);
	}
	sqlite3_bind_text(gl->put, 1, net, -1, SQLITE_STATIC);
	sqlite3_bind_text(gl->put, 2, sender, -1, SQLITE_STATIC);
	sqlite3_bind_text(gl->put, 3, rcpt, -1, SQLITE_STATIC);
	sqlite3_bind_int64(gl->put, 4, (sqlite3_int64)now);
	if (step_done(gl, gl->put, error_r) < 0)
		return -1;
	if (gl->set.delay > 0) {
		*verdict_r = GREYLIST_DEFER;
		if (wait_r != NULL)
			*wait_r = gl->set.delay;
	}
	return 0;
}

int
greylist_note_verified(struct greylist *gl, const char *domain, time_t now,
    char **error_r)
{
	char dom[KEY_MAX];

	if (domain == NULL || domain[0] == '\0')
		return 0;
	str_copy(dom, sizeof(dom), domain);
	str_lower(dom);
	sqlite3_bind_text(gl->put_domain, 1, dom, -1, SQLITE_STATIC);
	sqlite3_bind_int64(gl->put_domain, 2, (sqlite3_int64)now);
	return step_done(gl, gl->put_domain, error_r);
}

int
greylist_expire(struct greylist *gl, time_t now, char **error_r)
{
	sqlite3_stmt *st;
	static const char *const sql[] = {
		"DELETE FROM greylist WHERE last < ?1",
		"DELETE FROM greylist_clients WHERE last < ?1",
		"DELETE FROM greylist_domains WHERE last < ?1",
	};

	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		if (sqlite3_prepare_v2(gl->db, sql[i], -1, &st, NULL) != SQLITE_OK)
			return db_error(gl, "prepare", error_r);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)(now -
		    (time_t)gl->set.max_age_days * 86400));
		if (sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_finalize(st);
			return db_error(gl, "expire", error_r);
		}
		sqlite3_finalize(st);
	}
	return 0;
}

long long
greylist_count(struct greylist *gl)
{
	sqlite3_stmt *st;
	long long n = -1;

	if (sqlite3_prepare_v2(gl->db, "SELECT count(*) FROM greylist", -1, &st,
	    NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}
