/*
 * store/index: the per-account SQLite index and the operations on
 * messages (sync, flags, expunge, append, copy).
 *
 * The Maildir is the truth; the index is a cache of it plus what a
 * Maildir cannot hold (UIDs, modseqs). UIDs are also written to each
 * folder's dovecot-uidlist, so a lost or corrupt index is rebuilt with the
 * same UIDVALIDITY and UIDs, and Dovecot can read the folder back.
 *
 * Every change runs in one BEGIN IMMEDIATE transaction that first re-reads
 * the mailbox row: sessions in this and other processes serialize on
 * SQLite's lock (busy timeout), and the directory scan happens under it,
 * so a file is never given two UIDs.
 */
#include "store/mailbox-private.h"

#include "lib/buf.h"
#include "lib/file.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "mail/mime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define UIDLIST_FILE "dovecot-uidlist"
#define KEYWORDS_FILE "dovecot-keywords"
#define UIDLIST_MAX (256u * 1024 * 1024)
#define KEYWORDS_MAX (64 * 1024)
#define MESSAGE_READ_MAX (1024u * 1024 * 1024)
#define BUSY_TIMEOUT_MS 10000

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
	"CREATE TABLE IF NOT EXISTS mailbox(id INTEGER PRIMARY KEY,"
	" name TEXT UNIQUE NOT NULL, uidvalidity INTEGER NOT NULL,"
	" uidnext INTEGER NOT NULL, highestmodseq INTEGER NOT NULL,"
	" guid TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS message(mailbox INTEGER NOT NULL,"
	" uid INTEGER NOT NULL, base TEXT NOT NULL, path TEXT NOT NULL,"
	" flags INTEGER NOT NULL, keywords TEXT NOT NULL,"
	" modseq INTEGER NOT NULL, internaldate INTEGER NOT NULL,"
	" size INTEGER NOT NULL, envelope TEXT, bodystructure TEXT,"
	" PRIMARY KEY(mailbox, uid)) WITHOUT ROWID;"
	"CREATE UNIQUE INDEX IF NOT EXISTS message_base ON message(mailbox, base);"
	/* tombstones for QRESYNC (VANISHED) */
	"CREATE TABLE IF NOT EXISTS expunged(mailbox INTEGER NOT NULL,"
	" uid INTEGER NOT NULL, modseq INTEGER NOT NULL,"
	" PRIMARY KEY(mailbox, uid)) WITHOUT ROWID;"
	/* opaque per-message data of upper layers (SORT keys), added to
	   schema 1 without changing it: a kind names its own format */
	"CREATE TABLE IF NOT EXISTS msgcache(mailbox INTEGER NOT NULL,"
	" kind TEXT NOT NULL, uid INTEGER NOT NULL, uidvalidity INTEGER NOT NULL,"
	" data BLOB NOT NULL, PRIMARY KEY(mailbox, kind, uid)) WITHOUT ROWID;"
	"INSERT OR IGNORE INTO meta VALUES('schema', '1');";

/* --- database ------------------------------------------------------------ */

static bool
rc_is_corrupt(int rc)
{
	rc &= 0xff;
	return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB;
}

static int
db_try_open(const char *path, sqlite3 **db_r, int *rc_r)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
		rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL;"
		    "PRAGMA synchronous=NORMAL;", NULL, NULL, NULL);
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, schema_sql, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db,
		    "SELECT value FROM meta WHERE key='schema'", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW &&
		    strcmp((const char *)sqlite3_column_text(st, 0), "1") == 0)
			rc = SQLITE_OK;
		else if (rc == SQLITE_ROW || rc == SQLITE_DONE)
			rc = SQLITE_NOTADB;	/* a schema we do not know */
	}
	sqlite3_finalize(st);
	*rc_r = rc;
	if (rc != SQLITE_OK) {
		sqlite3_close(db);
		return -1;
	}
	*db_r = db;
	return 0;
}

/* Moves a broken index aside; the next open starts from the Maildir. */
static void
db_move_aside(const char *path)
{
	char *aside = xasprintf("%s.corrupt", path);
	char *wal = xasprintf("%s-wal", path);
	char *shm = xasprintf("%s-shm", path);

	if (rename(path, aside) < 0 && errno != ENOENT)
		(void)unlink(path);
	(void)unlink(wal);
	(void)unlink(shm);
	free(aside);
	free(wal);
	free(shm);
}

int
store_index_open(struct store_account *acct, char **error_r)
{
	char *path = xasprintf("%s/" STORE_INDEX_FILE, acct->root);
	int rc;

	if (db_try_open(path, &acct->db, &rc) < 0) {
		if (!rc_is_corrupt(rc)) {
			*error_r = xasprintf("Cannot open index %s: %s", path,
			    sqlite3_errstr(rc));
			free(path);
			return -1;
		}
		log_warn("event=index_corrupt path=%s error=\"%s\" action=rebuild",
		    path, sqlite3_errstr(rc));
		db_move_aside(path);
		if (db_try_open(path, &acct->db, &rc) < 0) {
			*error_r = xasprintf("Cannot create index %s: %s", path,
			    sqlite3_errstr(rc));
			free(path);
			return -1;
		}
	}
	free(path);
	return 0;
}

void
store_index_close(struct store_account *acct)
{
	if (acct->db != NULL)
		sqlite3_close(acct->db);
	acct->db = NULL;
}

/* A broken index found while in use: start over from the Maildir. */
static int
db_rebuild(struct store_account *acct, char **error_r)
{
	char *path = xasprintf("%s/" STORE_INDEX_FILE, acct->root);

	log_warn("event=index_corrupt path=%s action=rebuild", path);
	store_index_close(acct);
	db_move_aside(path);
	free(path);
	return store_index_open(acct, error_r);
}

static sqlite3_stmt *
prep(struct store_account *acct, const char *sql, int *rc_r)
{
	sqlite3_stmt *st = NULL;

	*rc_r = sqlite3_prepare_v2(acct->db, sql, -1, &st, NULL);
	return *rc_r == SQLITE_OK ? st : NULL;
}

static int
db_exec(struct store_account *acct, const char *sql, int *rc_r)
{
	*rc_r = sqlite3_exec(acct->db, sql, NULL, NULL, NULL);
	return *rc_r == SQLITE_OK ? 0 : -1;
}

static int
db_error(struct store_account *acct, int rc, const char *what, char **error_r)
{
	*error_r = xasprintf("Index error (%s): %s", what,
	    acct->db != NULL ? sqlite3_errmsg(acct->db) : sqlite3_errstr(rc));
	return -1;
}

static const char *
index_name(const char *name)
{
	return store_is_inbox(name) ? "INBOX" : name;
}

int
store_index_forget_mailbox(struct store_account *acct, const char *name,
    char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	st = prep(acct, "DELETE FROM message WHERE mailbox IN"
	    " (SELECT id FROM mailbox WHERE name=?1);"
	    , &rc);
	if (st == NULL)
		return db_error(acct, rc, "forget", error_r);
	sqlite3_bind_text(st, 1, index_name(name), -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_error(acct, rc, "forget", error_r);
	st = prep(acct, "DELETE FROM mailbox WHERE name=?1", &rc);
	if (st == NULL)
		return db_error(acct, rc, "forget", error_r);
	sqlite3_bind_text(st, 1, index_name(name), -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_error(acct, rc, "forget", error_r);
}

int
store_index_rename_mailbox(struct store_account *acct, const char *from,
    const char *to, char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	/* a stale row under the new name would shadow the moved folder */
	if (store_index_forget_mailbox(acct, to, error_r) < 0)
		return -1;
	st = prep(acct, "UPDATE mailbox SET name=?2 WHERE name=?1", &rc);
	if (st == NULL)
		return db_error(acct, rc, "rename", error_r);
	sqlite3_bind_text(st, 1, index_name(from), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, index_name(to), -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_error(acct, rc, "rename", error_r);
}

/* --- file names ------------------------------------------------------------ */

/* "<base>:2,<info>" -> base length, system flags, keyword letters */
static void
parse_filename(const char *name, size_t *base_len_r, unsigned int *flags_r,
    char *kwl_r)
{
	const char *colon = strchr(name, ':');
	size_t nk = 0;

	*base_len_r = colon != NULL ? (size_t)(colon - name) : strlen(name);
	*flags_r = 0;
	if (colon != NULL && strncmp(colon, ":2,", 3) == 0) {
		*flags_r = store_flags_from_letters(colon + 3);
		for (const char *p = colon + 3; *p != '\0'; p++) {
			if (*p >= 'a' && *p <= 'z' && nk < STORE_MAX_KEYWORDS &&
			    memchr(kwl_r, *p, nk) == NULL)
				kwl_r[nk++] = *p;
		}
	}
	kwl_r[nk] = '\0';
}

/* ",W=<n>" (or ",S=" when want_s) in a base name; -1 if missing. */
static long long
base_field(const char *base, char field)
{
	char pat[4] = { ',', field, '=', '\0' };
	const char *p = strstr(base, pat);
	unsigned long long v = 0;

	if (p == NULL)
		return -1;
	p += 3;
	if (*p < '0' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (unsigned long long)(*p - '0');
		if (v > (1ULL << 50))
			return -1;
		p++;
	}
	return (long long)v;
}

static int
char_cmp(const void *a, const void *b)
{
	return *(const char *)a - *(const char *)b;
}

static char *
make_path(unsigned int flags, const char *kwl, const char *base)
{
	char letters[8], kw[STORE_MAX_KEYWORDS + 1];

	store_flags_to_letters(flags, letters);
	str_copy(kw, sizeof(kw), kwl);
	qsort(kw, strlen(kw), 1, char_cmp);
	return xasprintf("cur/%s:2,%s%s", base, letters, kw);
}

static char *
make_base(uint64_t size, uint64_t vsize)
{
	static unsigned int counter;
	static char host[128];
	struct timeval tv;
	unsigned int q = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);

	if (host[0] == '\0') {
		char h[100];
		size_t o = 0;

		if (gethostname(h, sizeof(h)) < 0)
			str_copy(h, sizeof(h), "localhost");
		h[sizeof(h) - 1] = '\0';
		/* '/' and ':' cannot be in the name (Maildir spec) */
		for (const char *c = h; *c != '\0' && o + 5 < sizeof(host); c++) {
			if (*c == '/')
				o += (size_t)snprintf(host + o, sizeof(host) - o, "\\057");
			else if (*c == ':')
				o += (size_t)snprintf(host + o, sizeof(host) - o, "\\072");
			else
				host[o++] = *c;
		}
		host[o] = '\0';
	}
	gettimeofday(&tv, NULL);
	return xasprintf("%lld.M%06ldP%dQ%u.%s,S=%llu,W=%llu",
	    (long long)tv.tv_sec, (long)tv.tv_usec, (int)getpid(), q, host,
	    (unsigned long long)size, (unsigned long long)vsize);
}

/* --- keywords (dovecot-keywords: "<n> <name>" lines, letter 'a'+n) ------ */

static void
kw_clear(struct store_mailbox *box)
{
	for (unsigned int i = 0; i < STORE_MAX_KEYWORDS; i++)
		x_free(&box->kw[i]);
	box->nkw = 0;
}

static void
kw_load(struct store_mailbox *box)
{
	char *path = xasprintf("%s/" KEYWORDS_FILE, box->dir);
	char *data, *line, *save = NULL;
	size_t len;

	kw_clear(box);
	if (file_read_all(path, KEYWORDS_MAX, &data, &len) == 0) {
		for (line = strtok_r(data, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save)) {
			char *end;
			unsigned long n = strtoul(line, &end, 10);

			if (end == line || *end != ' ' || n >= STORE_MAX_KEYWORDS ||
			    end[1] == '\0')
				continue;
			free(box->kw[n]);
			box->kw[n] = xstrdup(end + 1);
			if (n + 1 > box->nkw)
				box->nkw = (unsigned int)n + 1;
		}
		free(data);
	}
	free(path);
}

static int
kw_save(struct store_mailbox *box)
{
	struct buf b;
	char *path = xasprintf("%s/" KEYWORDS_FILE, box->dir);
	int r;

	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "");
	for (unsigned int i = 0; i < box->nkw; i++) {
		if (box->kw[i] != NULL)
			buf_printf(&b, "%u %s\n", i, box->kw[i]);
	}
	r = file_write_atomic(path, b.data, b.len, 0600);
	buf_free(&b);
	free(path);
	return r;
}

static int
str_ptr_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted, duplicates dropped, space-separated (malloc'd). */
static char *
kw_normalize(const char *keywords)
{
	size_t n;
	char **v = str_split(keywords != NULL ? keywords : "", " ", &n);
	struct buf b;

	if (n > 1)
		qsort(v, n, sizeof(*v), str_ptr_cmp);
	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "");
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && strcmp(v[i], v[i - 1]) == 0)
			continue;
		if (b.len > 0)
			buf_append_c(&b, ' ');
		buf_append_str(&b, v[i]);
	}
	str_array_free(v);
	return buf_steal(&b);
}

static char *
kw_from_letters(const struct store_mailbox *box, const char *kwl)
{
	struct buf b;
	char *r;

	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "");
	for (const char *p = kwl; *p != '\0'; p++) {
		unsigned int i = (unsigned int)(*p - 'a');

		/* a letter without a name in dovecot-keywords is dropped */
		if (i < box->nkw && box->kw[i] != NULL) {
			if (b.len > 0)
				buf_append_c(&b, ' ');
			buf_append_str(&b, box->kw[i]);
		}
	}
	r = kw_normalize(buf_cstr(&b));
	buf_free(&b);
	return r;
}

/* Keyword names -> letters, adding names to dovecot-keywords as needed. */
static int
kw_to_letters(struct store_mailbox *box, const char *keywords, char *kwl,
    char **error_r)
{
	size_t n, nk = 0;
	char **v = str_split(keywords, " ", &n);
	bool added = false;

	for (size_t i = 0; i < n; i++) {
		unsigned int j;

		for (j = 0; j < box->nkw; j++) {
			if (box->kw[j] != NULL && strcmp(box->kw[j], v[i]) == 0)
				break;
		}
		if (j == box->nkw) {
			if (box->nkw == STORE_MAX_KEYWORDS) {
				str_array_free(v);
				*error_r = xstrdup("[LIMIT] Too many keywords in this mailbox");
				return -1;
			}
			box->kw[box->nkw++] = xstrdup(v[i]);
			added = true;
		}
		if (memchr(kwl, 'a' + (int)j, nk) == NULL)
			kwl[nk++] = (char)('a' + j);
	}
	kwl[nk] = '\0';
	str_array_free(v);
	if (added && kw_save(box) < 0) {
		*error_r = xasprintf("Cannot write keywords: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* --- dovecot-uidlist ---------------------------------------------------------- */

struct uid_entry {
	char *base;
	uint32_t uid;
};

struct uidlist {
	uint32_t uidvalidity, uidnext;
	struct uid_entry *e;
	unsigned int n;
};

static void
uidlist_free(struct uidlist *ul)
{
	for (unsigned int i = 0; i < ul->n; i++)
		free(ul->e[i].base);
	free(ul->e);
	memset(ul, 0, sizeof(*ul));
}

static int
uid_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct uid_entry *)a)->base,
	    ((const struct uid_entry *)b)->base);
}

static unsigned long
parse_ulong(const char *s, char **end)
{
	if (*s < '0' || *s > '9') {
		*end = (char *)s;
		return 0;
	}
	return strtoul(s, end, 10);
}

/*
 * Reads Dovecot's uidlist: version 3 ("3 V<uidvalidity> N<uidnext> ...",
 * then "<uid> [<ext> ...] :<base>") or version 1 ("1 <uidvalidity>
 * <uidnext>", then "<uid> <base>"). 1 = read, 0 = none or unusable.
 */
static int
uidlist_read(const char *dir, struct uidlist *ul)
{
	char *path = xasprintf("%s/" UIDLIST_FILE, dir);
	char *data, *line, *save = NULL, *end;
	size_t len;
	unsigned int cap = 0, version;

	memset(ul, 0, sizeof(*ul));
	if (file_read_all(path, UIDLIST_MAX, &data, &len) < 0) {
		free(path);
		return 0;
	}
	line = strtok_r(data, "\n", &save);
	if (line == NULL)
		goto bad;
	version = (unsigned int)parse_ulong(line, &end);
	if (version == 1) {
		ul->uidvalidity = (uint32_t)parse_ulong(end + (*end == ' '), &end);
		ul->uidnext = (uint32_t)parse_ulong(end + (*end == ' '), &end);
	} else if (version == 3) {
		for (char *p = end; *p != '\0'; ) {
			while (*p == ' ')
				p++;
			if (*p == 'V')
				ul->uidvalidity = (uint32_t)parse_ulong(p + 1, &end);
			else if (*p == 'N')
				ul->uidnext = (uint32_t)parse_ulong(p + 1, &end);
			while (*p != ' ' && *p != '\0')
				p++;
		}
	} else {
		goto bad;
	}
	if (ul->uidvalidity == 0)
		goto bad;
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		unsigned long uid = parse_ulong(line, &end);
		char *base;

		if (uid == 0 || uid >= UINT32_MAX || *end != ' ')
			continue;
		if (version == 1) {
			base = end + 1;
		} else {
			base = strstr(end, " :");
			if (base == NULL)
				continue;
			base += 2;
		}
		if (*base == '\0')
			continue;
		if (ul->n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			ul->e = xreallocarray(ul->e, cap, sizeof(*ul->e));
		}
		ul->e[ul->n].base = xstrdup(base);
		ul->e[ul->n].uid = (uint32_t)uid;
		ul->n++;
		if (uid >= ul->uidnext)
			ul->uidnext = (uint32_t)uid + 1;
	}
	free(data);
	free(path);
	if (ul->n > 1)
		qsort(ul->e, ul->n, sizeof(*ul->e), uid_entry_cmp);
	return 1;
bad:
	log_warn("event=uidlist_unusable path=%s", path);
	free(data);
	free(path);
	uidlist_free(ul);
	return 0;
}

static uint32_t
uidlist_lookup(const struct uidlist *ul, const char *base)
{
	struct uid_entry key = { .base = (char *)base };
	struct uid_entry *e;

	if (ul == NULL || ul->n == 0)
		return 0;
	e = bsearch(&key, ul->e, ul->n, sizeof(*ul->e), uid_entry_cmp);
	return e != NULL ? e->uid : 0;
}

/*
 * Rewrites the folder's dovecot-uidlist from the index (atomically).
 * O(messages) per change: fine for personal mailboxes; appending lines
 * as Dovecot does is the refinement for very large ones.
 */
static int
uidlist_write(struct store_mailbox *box, char **error_r)
{
	struct store_account *acct = box->acct;
	sqlite3_stmt *st;
	struct buf b;
	char *path;
	const char *guid = "";
	int rc, r;

	buf_init(&b, BUF_UNLIMITED);
	st = prep(acct, "SELECT guid FROM mailbox WHERE id=?1", &rc);
	if (st == NULL)
		return db_error(acct, rc, "uidlist", error_r);
	sqlite3_bind_int64(st, 1, box->id);
	if (sqlite3_step(st) == SQLITE_ROW)
		guid = (const char *)sqlite3_column_text(st, 0);
	buf_printf(&b, "3 V%u N%u G%s\n", box->uidvalidity, box->uidnext, guid);
	sqlite3_finalize(st);
	st = prep(acct, "SELECT uid, base FROM message WHERE mailbox=?1"
	    " ORDER BY uid", &rc);
	if (st == NULL) {
		buf_free(&b);
		return db_error(acct, rc, "uidlist", error_r);
	}
	sqlite3_bind_int64(st, 1, box->id);
	while (sqlite3_step(st) == SQLITE_ROW)
		buf_printf(&b, "%u :%s\n", (unsigned int)sqlite3_column_int64(st, 0),
		    (const char *)sqlite3_column_text(st, 1));
	sqlite3_finalize(st);
	path = xasprintf("%s/" UIDLIST_FILE, box->dir);
	r = file_write_atomic(path, b.data, b.len, 0600);
	if (r < 0)
		*error_r = xasprintf("Cannot write %s: %s", path, strerror(errno));
	free(path);
	buf_free(&b);
	return r;
}

/* --- mailbox row ---------------------------------------------------------------- */

static int
row_reload(struct store_mailbox *box, bool *found_r, int *rc_r)
{
	sqlite3_stmt *st = prep(box->acct,
	    "SELECT id, uidvalidity, uidnext, highestmodseq FROM mailbox"
	    " WHERE name=?1", rc_r);

	*found_r = false;
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, index_name(box->name), -1, SQLITE_STATIC);
	*rc_r = sqlite3_step(st);
	if (*rc_r == SQLITE_ROW) {
		box->id = sqlite3_column_int64(st, 0);
		box->uidvalidity = (uint32_t)sqlite3_column_int64(st, 1);
		box->uidnext = (uint32_t)sqlite3_column_int64(st, 2);
		box->highestmodseq = (uint64_t)sqlite3_column_int64(st, 3);
		*found_r = true;
		*rc_r = SQLITE_OK;
	} else if (*rc_r == SQLITE_DONE) {
		*rc_r = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return *rc_r == SQLITE_OK ? 0 : -1;
}

static int
row_store(struct store_mailbox *box, int *rc_r)
{
	sqlite3_stmt *st = prep(box->acct,
	    "UPDATE mailbox SET uidnext=?2, highestmodseq=?3 WHERE id=?1", rc_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, box->id);
	sqlite3_bind_int64(st, 2, box->uidnext);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)box->highestmodseq);
	*rc_r = sqlite3_step(st);
	sqlite3_finalize(st);
	if (*rc_r != SQLITE_DONE)
		return -1;
	*rc_r = SQLITE_OK;
	return 0;
}

/*
 * First sight of a folder: take UIDVALIDITY and UIDs over from
 * dovecot-uidlist when there is one (Dovecot's, or ours after an index
 * rebuild), else start a new UIDVALIDITY.
 */
/*
 * UIDVALIDITY for a folder made anew: the time, but always above the last
 * one given in this account, so that a folder deleted and created again
 * within one second does not come back with the same UIDVALIDITY and
 * UIDs (RFC 9051 2.3.1.1). 0 on a database error.
 */
static uint32_t
new_uidvalidity(struct store_account *acct, int *rc_r)
{
	sqlite3_stmt *st = prep(acct, "SELECT value FROM meta"
	    " WHERE key='last_uidvalidity'", rc_r);
	uint32_t v = (uint32_t)time(NULL);
	unsigned long long last = 0;

	if (st == NULL)
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);

		if (t != NULL && str_to_ullong(t, &last) == 0 && last >= v &&
		    last < UINT32_MAX)
			v = (uint32_t)last + 1;
	}
	sqlite3_finalize(st);
	st = prep(acct, "INSERT OR REPLACE INTO meta(key, value)"
	    " VALUES('last_uidvalidity', ?1)", rc_r);
	if (st == NULL)
		return 0;
	sqlite3_bind_int64(st, 1, v);
	*rc_r = sqlite3_step(st);
	sqlite3_finalize(st);
	if (*rc_r != SQLITE_DONE)
		return 0;
	*rc_r = SQLITE_OK;
	return v;
}

static int
row_create(struct store_mailbox *box, struct uidlist *ul, int *rc_r)
{
	sqlite3_stmt *st;
	unsigned char rnd[16];
	char guid[33];
	int fd;

	if (uidlist_read(box->dir, ul) > 0) {
		box->uidvalidity = ul->uidvalidity;
		box->uidnext = ul->uidnext > 0 ? ul->uidnext : 1;
	} else {
		box->uidvalidity = new_uidvalidity(box->acct, rc_r);
		if (box->uidvalidity == 0)
			return -1;
		box->uidnext = 1;
	}
	/* modseqs start at the current time in microseconds: a folder seen
	   anew (first open, index rebuilt) then never reports a HIGHESTMODSEQ
	   below one a CONDSTORE client may have cached from before */
	{
		struct timeval tv;

		gettimeofday(&tv, NULL);
		box->highestmodseq = (uint64_t)tv.tv_sec * 1000000 +
		    (uint64_t)tv.tv_usec;
	}
	memset(rnd, 0, sizeof(rnd));
	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, rnd, sizeof(rnd)) != (ssize_t)sizeof(rnd))
			log_warn("event=guid_short_read");
		close(fd);
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(guid + 2 * i, 3, "%02x", rnd[i]);
	st = prep(box->acct, "INSERT INTO mailbox(name, uidvalidity, uidnext,"
	    " highestmodseq, guid) VALUES(?1, ?2, ?3, ?4, ?5)", rc_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, index_name(box->name), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, box->uidvalidity);
	sqlite3_bind_int64(st, 3, box->uidnext);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)box->highestmodseq);
	sqlite3_bind_text(st, 5, guid, -1, SQLITE_TRANSIENT);
	*rc_r = sqlite3_step(st);
	sqlite3_finalize(st);
	if (*rc_r != SQLITE_DONE)
		return -1;
	box->id = sqlite3_last_insert_rowid(box->acct->db);
	*rc_r = SQLITE_OK;
	return 0;
}

/* --- loading messages ----------------------------------------------------------- */

static int
msgs_load(struct store_account *acct, int64_t id, struct store_msg **msgs_r,
    unsigned int *count_r, int *rc_r)
{
	sqlite3_stmt *st = prep(acct, "SELECT uid, flags, keywords, modseq,"
	    " internaldate, size, base, path FROM message WHERE mailbox=?1"
	    " ORDER BY uid", rc_r);
	struct store_msg *msgs = NULL;
	unsigned int n = 0, cap = 0;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	while ((*rc_r = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_msg *m;

		if (n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			msgs = xreallocarray(msgs, cap, sizeof(*msgs));
		}
		m = &msgs[n++];
		m->uid = (uint32_t)sqlite3_column_int64(st, 0);
		m->flags = (unsigned int)sqlite3_column_int(st, 1);
		m->keywords = xstrdup((const char *)sqlite3_column_text(st, 2));
		m->modseq = (uint64_t)sqlite3_column_int64(st, 3);
		m->internaldate = (time_t)sqlite3_column_int64(st, 4);
		m->size = (uint64_t)sqlite3_column_int64(st, 5);
		m->base = xstrdup((const char *)sqlite3_column_text(st, 6));
		m->path = xstrdup((const char *)sqlite3_column_text(st, 7));
	}
	sqlite3_finalize(st);
	if (*rc_r != SQLITE_DONE) {
		store_msgs_free(msgs, n);
		return -1;
	}
	*rc_r = SQLITE_OK;
	*msgs_r = msgs;
	*count_r = n;
	return 0;
}

/* --- the directory scan ---------------------------------------------------------- */

struct disk_entry {
	char *base;
	char *path;		/* "cur/<name>" or "new/<name>" */
	unsigned int flags;
	char kwl[STORE_MAX_KEYWORDS + 1];
	bool matched;
};

struct disk_list {
	struct disk_entry *e;
	unsigned int n, cap;
};

static void
disk_free(struct disk_list *dl)
{
	for (unsigned int i = 0; i < dl->n; i++) {
		free(dl->e[i].base);
		free(dl->e[i].path);
	}
	free(dl->e);
	memset(dl, 0, sizeof(*dl));
}

static int
disk_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct disk_entry *)a)->base,
	    ((const struct disk_entry *)b)->base);
}

static void
disk_add(struct disk_list *dl, const char *sub, const char *name)
{
	struct disk_entry *e;
	size_t blen;

	if (dl->n == dl->cap) {
		dl->cap = dl->cap == 0 ? 64 : dl->cap * 2;
		dl->e = xreallocarray(dl->e, dl->cap, sizeof(*dl->e));
	}
	e = &dl->e[dl->n++];
	memset(e, 0, sizeof(*e));
	parse_filename(name, &blen, &e->flags, e->kwl);
	e->base = xstrndup(name, blen);
	e->path = xasprintf("%s/%s", sub, name);
}

/*
 * Lists cur/ (and new/): when not read-only, each file in new/ is first
 * moved to cur/ with an empty info (":2,"), as Dovecot does when a folder
 * is opened.
 */
static int
disk_scan(struct store_mailbox *box, struct disk_list *dl, char **error_r)
{
	static const char *const subs[] = { "new", "cur" };

	memset(dl, 0, sizeof(*dl));
	for (size_t s = 0; s < 2; s++) {
		char *dirpath = xasprintf("%s/%s", box->dir, subs[s]);
		DIR *d = opendir(dirpath);
		struct dirent *de;
		bool moved = false;

		if (d == NULL) {
			*error_r = xasprintf("Cannot read %s: %s", dirpath,
			    strerror(errno));
			free(dirpath);
			disk_free(dl);
			return -1;
		}
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			if (s == 0 && !box->readonly) {
				char *from = xasprintf("%s/new/%s", box->dir, de->d_name);
				char *to = xasprintf("%s/cur/%s%s", box->dir,
				    de->d_name, strchr(de->d_name, ':') != NULL ? "" : ":2,");

				/* ENOENT: another session moved it; cur/ has it */
				if (rename(from, to) == 0)
					moved = true;
				free(from);
				free(to);
				continue;
			}
			disk_add(dl, subs[s], de->d_name);
		}
		closedir(d);
		free(dirpath);
		if (moved) {
			char *cur = xasprintf("%s/cur", box->dir);

			(void)fsync_dir(cur);
			free(cur);
		}
	}
	if (dl->n > 1)
		qsort(dl->e, dl->n, sizeof(*dl->e), disk_entry_cmp);
	return 0;
}

static struct disk_entry *
disk_find(struct disk_list *dl, const char *base)
{
	struct disk_entry key = { .base = (char *)base };

	if (dl->n == 0)
		return NULL;
	return bsearch(&key, dl->e, dl->n, sizeof(*dl->e), disk_entry_cmp);
}

/* Delivery order: the leading time stamp of the name, then the name. */
static int
delivery_cmp(const void *a, const void *b)
{
	const struct disk_entry *x = *(struct disk_entry *const *)a;
	const struct disk_entry *y = *(struct disk_entry *const *)b;
	unsigned long long tx = strtoull(x->base, NULL, 10);
	unsigned long long ty = strtoull(y->base, NULL, 10);

	if (tx != ty)
		return tx < ty ? -1 : 1;
	return strcmp(x->base, y->base);
}

/* RFC822.SIZE of a file: W= when the name has it, else counted. */
static uint64_t
file_vsize(const char *path, const char *base)
{
	long long w = base_field(base, 'W');
	char *data;
	size_t len;
	uint64_t v;

	if (w >= 0)
		return (uint64_t)w;
	if (file_read_all(path, MESSAGE_READ_MAX, &data, &len) < 0)
		return 0;
	v = mime_vsize(data, 0, len);
	free(data);
	return v;
}

/* --- sync ---------------------------------------------------------------------------- */

static int
update_row(struct store_mailbox *box, uint32_t uid, const char *path,
    unsigned int flags, const char *kw, uint64_t modseq, int *rc_r)
{
	sqlite3_stmt *st = prep(box->acct, "UPDATE message SET path=?3,"
	    " flags=?4, keywords=?5, modseq=?6 WHERE mailbox=?1 AND uid=?2", rc_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, box->id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_text(st, 3, path, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, (int)flags);
	sqlite3_bind_text(st, 5, kw, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)modseq);
	*rc_r = sqlite3_step(st);
	sqlite3_finalize(st);
	if (*rc_r != SQLITE_DONE)
		return -1;
	*rc_r = SQLITE_OK;
	return 0;
}

static int
insert_row(struct store_mailbox *box, uint32_t uid, const char *base,
    const char *path, unsigned int flags, const char *kw, uint64_t modseq,
    time_t internaldate, uint64_t size, int *rc_r)
{
	sqlite3_stmt *st = prep(box->acct, "INSERT INTO message(mailbox, uid,"
	    " base, path, flags, keywords, modseq, internaldate, size)"
	    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)", rc_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, box->id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_text(st, 3, base, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, path, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, (int)flags);
	sqlite3_bind_text(st, 6, kw, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)modseq);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)internaldate);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)size);
	*rc_r = sqlite3_step(st);
	sqlite3_finalize(st);
	if (*rc_r != SQLITE_DONE)
		return -1;
	*rc_r = SQLITE_OK;
	return 0;
}

static int
delete_row(struct store_mailbox *box, uint32_t uid, uint64_t modseq, int *rc_r)
{
	sqlite3_stmt *st = prep(box->acct,
	    "DELETE FROM message WHERE mailbox=?1 AND uid=?2", rc_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, box->id);
	sqlite3_bind_int64(st, 2, uid);
	*rc_r = sqlite3_step(st);
	sqlite3_finalize(st);
	if (*rc_r != SQLITE_DONE)
		return -1;
	st = prep(box->acct, "INSERT OR REPLACE INTO expunged(mailbox, uid, modseq)"
	    " VALUES(?1, ?2, ?3)", rc_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, box->id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)modseq);
	*rc_r = sqlite3_step(st);
	sqlite3_finalize(st);
	if (*rc_r != SQLITE_DONE)
		return -1;
	*rc_r = SQLITE_OK;
	return 0;
}

static int
begin(struct store_mailbox *box, int *rc_r)
{
	bool found;

	if (db_exec(box->acct, "BEGIN IMMEDIATE", rc_r) < 0)
		return -1;
	/* another session or process may have moved uidnext on */
	if (row_reload(box, &found, rc_r) < 0 || !found) {
		if (found == false && *rc_r == SQLITE_OK)
			*rc_r = SQLITE_NOTFOUND;
		(void)sqlite3_exec(box->acct->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

static int
commit(struct store_mailbox *box, int *rc_r)
{
	if (row_store(box, rc_r) < 0 ||
	    db_exec(box->acct, "COMMIT", rc_r) < 0) {
		(void)sqlite3_exec(box->acct->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

/*
 * Disk -> index, inside one transaction. *wrote_uids_r: UIDs were given
 * or taken away (the uidlist must be rewritten).
 */
static int
sync_disk(struct store_mailbox *box, struct uidlist *import,
    bool *wrote_uids_r, int *rc_r, char **error_r)
{
	struct disk_list dl, dl2 = { 0 };
	struct store_msg *rows = NULL;
	unsigned int nrows = 0;
	struct disk_entry **fresh = NULL;
	unsigned int nfresh = 0;
	bool rescanned = false;
	int ret = -1;

	*rc_r = SQLITE_OK;
	*wrote_uids_r = false;
	if (disk_scan(box, &dl, error_r) < 0)
		return -1;
	if (msgs_load(box->acct, box->id, &rows, &nrows, rc_r) < 0)
		goto out;
	for (unsigned int i = 0; i < nrows; i++) {
		struct store_msg *r = &rows[i];
		struct disk_entry *e = disk_find(&dl, r->base);
		char *kw;

		if (e == NULL && !rescanned) {
			/* a file renamed (flags) between our readdir of cur/
			   and now must not look expunged: look once more */
			if (disk_scan(box, &dl2, error_r) < 0)
				goto out;
			rescanned = true;
		}
		if (e == NULL && rescanned) {
			e = disk_find(&dl2, r->base);
			if (e != NULL) {
				/* carry it over into the main list's role */
				e->matched = true;
			}
		}
		if (e == NULL) {
			if (delete_row(box, r->uid, ++box->highestmodseq, rc_r) < 0)
				goto out;
			*wrote_uids_r = true;
			continue;
		}
		e->matched = true;
		if (strcmp(e->path, r->path) == 0)
			continue;
		kw = kw_from_letters(box, e->kwl);
		if (e->flags != (r->flags & ~0u) || strcmp(kw, r->keywords) != 0) {
			if (update_row(box, r->uid, e->path, e->flags, kw,
			    ++box->highestmodseq, rc_r) < 0) {
				free(kw);
				goto out;
			}
		} else if (update_row(box, r->uid, e->path, r->flags,
		    r->keywords, r->modseq, rc_r) < 0) {
			free(kw);
			goto out;
		}
		free(kw);
	}
	/* files with no row: new mail, in delivery order */
	fresh = xcalloc(dl.n + 1, sizeof(*fresh));
	for (unsigned int i = 0; i < dl.n; i++) {
		if (!dl.e[i].matched && disk_find(&dl2, dl.e[i].base) == NULL)
			fresh[nfresh++] = &dl.e[i];
		else if (!dl.e[i].matched) {
			struct disk_entry *e2 = disk_find(&dl2, dl.e[i].base);

			if (!e2->matched)
				fresh[nfresh++] = &dl.e[i];
		}
	}
	if (nfresh > 1)
		qsort(fresh, nfresh, sizeof(*fresh), delivery_cmp);
	for (unsigned int i = 0; i < nfresh; i++) {
		struct disk_entry *e = fresh[i];
		char *full = xasprintf("%s/%s", box->dir, e->path);
		struct stat st;
		uint32_t uid = uidlist_lookup(import, e->base);
		char *kw;
		int r;

		if (stat(full, &st) < 0) {
			free(full);
			continue;	/* gone meanwhile */
		}
		if (uid == 0 || uid >= UINT32_MAX) {
			if (box->uidnext >= UINT32_MAX) {
				free(full);
				*error_r = xstrdup("UID space exhausted");
				goto out;
			}
			uid = box->uidnext++;
		} else if (uid >= box->uidnext) {
			box->uidnext = uid + 1;
		}
		kw = kw_from_letters(box, e->kwl);
		r = insert_row(box, uid, e->base, e->path, e->flags, kw,
		    ++box->highestmodseq, st.st_mtime, file_vsize(full, e->base),
		    rc_r);
		free(kw);
		free(full);
		if (r < 0)
			goto out;
		*wrote_uids_r = true;
	}
	ret = 0;
out:
	if (ret < 0 && *rc_r != SQLITE_OK && *error_r == NULL)
		db_error(box->acct, *rc_r, "sync", error_r);
	free(fresh);
	store_msgs_free(rows, nrows);
	disk_free(&dl);
	disk_free(&dl2);
	return ret;
}

static int
uint32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* What changed between the array the session saw and the new one. */
static void
diff_msgs(const struct store_msg *old, unsigned int nold,
    const struct store_msg *new, unsigned int nnew,
    struct store_sync_changes *c)
{
	unsigned int i = 0, j = 0;

	memset(c, 0, sizeof(*c));
	c->expunged = xcalloc(nold + 1, sizeof(uint32_t));
	c->changed = xcalloc(nold + 1, sizeof(uint32_t));
	while (i < nold || j < nnew) {
		if (j == nnew || (i < nold && old[i].uid < new[j].uid)) {
			c->expunged[c->nexpunged++] = old[i++].uid;
		} else if (i == nold || new[j].uid < old[i].uid) {
			c->nnew++;
			j++;
		} else {
			if (new[j].modseq != old[i].modseq)
				c->changed[c->nchanged++] = old[i].uid;
			i++;
			j++;
		}
	}
	if (c->nexpunged > 1)
		qsort(c->expunged, c->nexpunged, sizeof(uint32_t), uint32_cmp);
}

void
store_sync_changes_free(struct store_sync_changes *c)
{
	x_free(&c->expunged);
	x_free(&c->changed);
	c->nexpunged = c->nchanged = c->nnew = 0;
}

static int64_t
data_version(struct store_account *acct)
{
	sqlite3_stmt *st;
	int rc;
	int64_t v = -1;

	st = prep(acct, "PRAGMA data_version", &rc);
	if (st == NULL)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static bool
dir_mtime(const struct store_mailbox *box, const char *sub, struct timespec *ts)
{
	char *path = xasprintf("%s/%s", box->dir, sub);
	struct stat st;
	bool ok = stat(path, &st) == 0;

	free(path);
	if (ok)
		*ts = st.st_mtim;
	return ok;
}

/* Taken before a sync looks, so a change during the sync is not missed. */
static void
stamp_take(struct store_mailbox *box, struct timespec *n, struct timespec *c,
    int64_t *dv, bool *ok)
{
	*ok = dir_mtime(box, "new", n) && dir_mtime(box, "cur", c);
	*dv = data_version(box->acct);
	if (*dv < 0)
		*ok = false;
}

bool
store_mailbox_changed(struct store_mailbox *box)
{
	struct timespec n, c;
	int64_t dv;
	bool ok;

	if (!box->stamp_valid)
		return true;
	stamp_take(box, &n, &c, &dv, &ok);
	return !ok || dv != box->data_version ||
	    n.tv_sec != box->new_mtime.tv_sec || n.tv_nsec != box->new_mtime.tv_nsec ||
	    c.tv_sec != box->cur_mtime.tv_sec || c.tv_nsec != box->cur_mtime.tv_nsec;
}

static int
sync_once(struct store_mailbox *box, struct store_sync_changes *changes_r,
    int *rc_r, char **error_r)
{
	struct timespec stamp_new, stamp_cur;
	int64_t stamp_dv;
	bool stamp_ok;
	struct uidlist ul = { 0 };
	struct store_msg *msgs;
	unsigned int n;
	bool found, wrote = false, in_tx = false;

	*rc_r = SQLITE_OK;
	box->stamp_valid = false;
	stamp_take(box, &stamp_new, &stamp_cur, &stamp_dv, &stamp_ok);
	if (row_reload(box, &found, rc_r) < 0)
		goto fail;
	if (db_exec(box->acct, "BEGIN IMMEDIATE", rc_r) < 0)
		goto fail;
	in_tx = true;
	if (row_reload(box, &found, rc_r) < 0)
		goto fail;
	if (!found && row_create(box, &ul, rc_r) < 0)
		goto fail;
	kw_load(box);
	if (sync_disk(box, &ul, &wrote, rc_r, error_r) < 0)
		goto fail;
	if (commit(box, rc_r) < 0) {
		in_tx = false;
		goto fail;
	}
	in_tx = false;
	uidlist_free(&ul);
	if (msgs_load(box->acct, box->id, &msgs, &n, rc_r) < 0)
		goto fail;
	if (changes_r != NULL)
		diff_msgs(box->msgs, box->count, msgs, n, changes_r);
	store_msgs_free(box->msgs, box->count);
	box->msgs = msgs;
	box->count = n;
	/* also when read-only: UIDs given must survive an index rebuild */
	if ((wrote || !found) && uidlist_write(box, error_r) < 0)
		return -1;
	/* the stamp from before the scan: our own moves from new/ make the
	   next check say "changed" once, which costs one quiet sync */
	box->stamp_valid = stamp_ok;
	box->new_mtime = stamp_new;
	box->cur_mtime = stamp_cur;
	box->data_version = stamp_dv;
	return 0;
fail:
	if (in_tx)
		(void)sqlite3_exec(box->acct->db, "ROLLBACK", NULL, NULL, NULL);
	uidlist_free(&ul);
	if (*error_r == NULL)
		db_error(box->acct, *rc_r, "sync", error_r);
	return -1;
}

int
store_mailbox_sync(struct store_mailbox *box,
    struct store_sync_changes *changes_r, char **error_r)
{
	int rc;

	*error_r = NULL;
	if (sync_once(box, changes_r, &rc, error_r) == 0)
		return 0;
	if (!rc_is_corrupt(rc))
		return -1;
	/* the index is broken: start it again from the Maildir (UIDs come
	   back from dovecot-uidlist) and sync once more */
	x_free(error_r);
	if (db_rebuild(box->acct, error_r) < 0)
		return -1;
	return sync_once(box, changes_r, &rc, error_r);
}

/* --- open / close ---------------------------------------------------------------------- */

int
store_mailbox_open(struct store_account *acct, const char *name,
    bool readonly, struct store_mailbox **box_r, char **error_r)
{
	struct store_mailbox *box;
	char *dir = store_folder_path(acct, name), *cur;
	struct stat st;

	if (dir == NULL) {
		*error_r = xstrdup("Invalid mailbox name");
		return -1;
	}
	cur = xasprintf("%s/cur", dir);
	if (stat(cur, &st) < 0 || !S_ISDIR(st.st_mode)) {
		free(cur);
		free(dir);
		*error_r = xstrdup("[NONEXISTENT] Mailbox doesn't exist");
		return -1;
	}
	free(cur);
	box = xcalloc(1, sizeof(*box));
	box->acct = acct;
	box->name = xstrdup(index_name(name));
	box->dir = dir;
	box->readonly = readonly;
	if (store_mailbox_sync(box, NULL, error_r) < 0) {
		store_mailbox_close(&box);
		return -1;
	}
	*box_r = box;
	return 0;
}

void
store_mailbox_close(struct store_mailbox **boxp)
{
	struct store_mailbox *box = *boxp;

	if (box == NULL)
		return;
	store_msgs_free(box->msgs, box->count);
	kw_clear(box);
	free(box->name);
	free(box->dir);
	free(box);
	*boxp = NULL;
}

const char *
store_mailbox_name(const struct store_mailbox *box)
{
	return box->name;
}

uint32_t
store_mailbox_uidvalidity(const struct store_mailbox *box)
{
	return box->uidvalidity;
}

uint32_t
store_mailbox_uidnext(const struct store_mailbox *box)
{
	return box->uidnext;
}

uint64_t
store_mailbox_highestmodseq(const struct store_mailbox *box)
{
	return box->highestmodseq;
}

const struct store_msg *
store_mailbox_msgs(const struct store_mailbox *box, unsigned int *count_r)
{
	*count_r = box->count;
	return box->msgs;
}

/* the first UID not yet claimed as recent; kept in meta under the folder's
   GUID (a folder id may be used again after a delete) */
static int
recent_get(struct store_mailbox *box, uint32_t *first_r, int *rc_r)
{
	sqlite3_stmt *st = prep(box->acct, "SELECT value FROM meta WHERE key="
	    "'recent.' || (SELECT guid FROM mailbox WHERE id=?1)", rc_r);
	unsigned long long v = 1;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, box->id);
	*rc_r = sqlite3_step(st);
	if (*rc_r == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);

		if (t == NULL || str_to_ullong(t, &v) < 0 || v > UINT32_MAX)
			v = 1;
	} else if (*rc_r != SQLITE_DONE) {
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	*rc_r = SQLITE_OK;
	*first_r = (uint32_t)v;
	return 0;
}

int
store_mailbox_recent(struct store_mailbox *box, bool claim, uint32_t *first_r,
    char **error_r)
{
	sqlite3_stmt *st;
	uint32_t next;
	int rc;

	*error_r = NULL;
	if (!claim || box->readonly) {
		if (recent_get(box, first_r, &rc) < 0)
			return db_error(box->acct, rc, "recent", error_r);
		return 0;
	}
	if (begin(box, &rc) < 0)
		return db_error(box->acct, rc, "recent", error_r);
	if (recent_get(box, first_r, &rc) < 0)
		goto fail;
	/* only what this session has in its array: mail that arrived since
	   its last sync stays recent for whoever syncs it first */
	next = box->count > 0 ? box->msgs[box->count - 1].uid + 1 : 1;
	if (next > *first_r) {
		st = prep(box->acct, "INSERT OR REPLACE INTO meta(key, value)"
		    " SELECT 'recent.' || guid, ?2 FROM mailbox WHERE id=?1", &rc);
		if (st == NULL)
			goto fail;
		sqlite3_bind_int64(st, 1, box->id);
		sqlite3_bind_int64(st, 2, next);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			goto fail;
	}
	if (commit(box, &rc) < 0)
		goto fail;
	return 0;
fail:
	(void)sqlite3_exec(box->acct->db, "ROLLBACK", NULL, NULL, NULL);
	return db_error(box->acct, rc, "recent", error_r);
}

int
store_mailbox_find_uid(const struct store_mailbox *box, uint32_t uid)
{
	unsigned int lo = 0, hi = box->count;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (box->msgs[mid].uid == uid)
			return (int)mid;
		if (box->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

char *
store_msg_full_path(const struct store_mailbox *box, const struct store_msg *msg)
{
	return xasprintf("%s/%s", box->dir, msg->path);
}

/* --- changes ------------------------------------------------------------------------------ */

static int
readonly_error(const struct store_mailbox *box, char **error_r)
{
	if (!box->readonly)
		return 0;
	*error_r = xstrdup("[READ-ONLY] Mailbox is read-only");
	return -1;
}

/* Keywords a op b on space-separated sets: '+' union, '-' minus (malloc'd). */
static char *
kw_apply(const char *cur, const char *delta, char op)
{
	size_t nc, nd;
	char **c = str_split(cur, " ", &nc), **d = str_split(delta, " ", &nd);
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "");
	for (size_t i = 0; i < nc; i++) {
		bool in_d = false;

		for (size_t j = 0; j < nd; j++)
			in_d |= strcmp(c[i], d[j]) == 0;
		if (op == '-' && in_d)
			continue;
		buf_printf(&b, "%s%s", b.len > 0 ? " " : "", c[i]);
	}
	if (op == '+') {
		for (size_t j = 0; j < nd; j++)
			buf_printf(&b, "%s%s", b.len > 0 ? " " : "", d[j]);
	}
	str_array_free(c);
	str_array_free(d);
	return buf_steal(&b);
}

/*
 * Message m as the index has it now (another session or process may have
 * changed its flags and renamed its file since our last sync). 1 = still
 * there, 0 = expunged meanwhile, -1 = database error. Inside a transaction.
 */
static int
row_refresh(struct store_mailbox *box, struct store_msg *m, int *rc_r)
{
	sqlite3_stmt *st = prep(box->acct, "SELECT path, flags, keywords, modseq"
	    " FROM message WHERE mailbox=?1 AND uid=?2", rc_r);
	int ret;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, box->id);
	sqlite3_bind_int64(st, 2, m->uid);
	*rc_r = sqlite3_step(st);
	if (*rc_r == SQLITE_ROW) {
		const char *path = (const char *)sqlite3_column_text(st, 0);
		const char *kw = (const char *)sqlite3_column_text(st, 2);

		free(m->path);
		m->path = xstrdup(path != NULL ? path : "");
		m->flags = (unsigned int)sqlite3_column_int(st, 1);
		free(m->keywords);
		m->keywords = xstrdup(kw != NULL ? kw : "");
		m->modseq = (uint64_t)sqlite3_column_int64(st, 3);
		ret = 1;
	} else {
		ret = *rc_r == SQLITE_DONE ? 0 : -1;
	}
	sqlite3_finalize(st);
	if (ret >= 0)
		*rc_r = SQLITE_OK;
	return ret;
}

int
store_msg_change_flags(struct store_mailbox *box, unsigned int i, char op,
    unsigned int flags, const char *keywords, char **error_r)
{
	struct store_msg *m;
	char kwl[STORE_MAX_KEYWORDS + 1];
	char *kw, *nk, *path, *from, *to;
	unsigned int nf;
	int rc, r;

	*error_r = NULL;
	if (readonly_error(box, error_r) < 0)
		return -1;
	if (i >= box->count)
		panic("store_msg_change_flags: index %u of %u", i, box->count);
	if (op != '+' && op != '-' && op != '=')
		panic("store_msg_change_flags: op %c", op);
	m = &box->msgs[i];
	if (begin(box, &rc) < 0)
		return db_error(box->acct, rc, "flags", error_r);
	/* read-modify-write on the current row, so that two sessions'
	   +FLAGS/-FLAGS on one message both take effect */
	if ((r = row_refresh(box, m, &rc)) <= 0) {
		(void)sqlite3_exec(box->acct->db, "ROLLBACK", NULL, NULL, NULL);
		return r == 0 ? 1 : db_error(box->acct, rc, "flags", error_r);
	}
	nf = op == '+' ? m->flags | flags : op == '-' ? m->flags & ~flags :
	    (m->flags & STORE_FLAG_PASSED) | flags;
	if (keywords == NULL)
		nk = xstrdup(m->keywords);
	else if (op == '=')
		nk = xstrdup(keywords);
	else
		nk = kw_apply(m->keywords, keywords, op);
	kw = kw_normalize(nk);
	free(nk);
	if (nf == m->flags && strcmp(kw, m->keywords) == 0) {
		(void)sqlite3_exec(box->acct->db, "ROLLBACK", NULL, NULL, NULL);
		free(kw);
		return 0;
	}
	if (kw_to_letters(box, kw, kwl, error_r) < 0) {
		(void)sqlite3_exec(box->acct->db, "ROLLBACK", NULL, NULL, NULL);
		free(kw);
		return -1;
	}
	path = make_path(nf, kwl, m->base);
	from = xasprintf("%s/%s", box->dir, m->path);
	to = xasprintf("%s/%s", box->dir, path);
	if (strcmp(from, to) != 0 && rename(from, to) < 0) {
		int err = errno;

		(void)sqlite3_exec(box->acct->db, "ROLLBACK", NULL, NULL, NULL);
		*error_r = err == ENOENT ?
		    xstrdup("Message was changed or expunged meanwhile") :
		    xasprintf("Cannot rename %s: %s", from, strerror(err));
		free(from);
		free(to);
		free(kw);
		free(path);
		return -1;
	}
	free(from);
	free(to);
	if (update_row(box, m->uid, path, nf, kw, ++box->highestmodseq,
	    &rc) < 0 || commit(box, &rc) < 0) {
		(void)sqlite3_exec(box->acct->db, "ROLLBACK", NULL, NULL, NULL);
		free(kw);
		free(path);
		return db_error(box->acct, rc, "flags", error_r);
	}
	m->flags = nf;
	free(m->keywords);
	m->keywords = kw;
	free(m->path);
	m->path = path;
	m->modseq = box->highestmodseq;
	return 0;
}

int
store_msg_set_flags(struct store_mailbox *box, unsigned int i,
    unsigned int flags, const char *keywords, char **error_r)
{
	int r = store_msg_change_flags(box, i, '=', flags, keywords, error_r);

	if (r > 0) {
		*error_r = xstrdup("Message was expunged meanwhile");
		return -1;
	}
	return r;
}

int
store_mailbox_expunge(struct store_mailbox *box, const uint32_t *uids,
    unsigned int count, char **error_r)
{
	int rc;

	*error_r = NULL;
	if (readonly_error(box, error_r) < 0)
		return -1;
	if (begin(box, &rc) < 0)
		return db_error(box->acct, rc, "expunge", error_r);
	for (unsigned int k = 0; k < count; k++) {
		int i = store_mailbox_find_uid(box, uids[k]);
		char *full;

		if (i < 0)
			continue;
		full = store_msg_full_path(box, &box->msgs[i]);
		if (unlink(full) < 0 && errno != ENOENT) {
			*error_r = xasprintf("Cannot expunge %s: %s", full,
			    strerror(errno));
			free(full);
			(void)sqlite3_exec(box->acct->db, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
		free(full);
		if (delete_row(box, uids[k], ++box->highestmodseq, &rc) < 0) {
			(void)sqlite3_exec(box->acct->db, "ROLLBACK", NULL, NULL, NULL);
			return db_error(box->acct, rc, "expunge", error_r);
		}
	}
	if (commit(box, &rc) < 0)
		return db_error(box->acct, rc, "expunge", error_r);
	return uidlist_write(box, error_r);
}

static int
write_file(const char *path, const void *data, size_t len, time_t mtime)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	struct timespec ts[2];

	if (fd < 0)
		return -1;
	ts[0].tv_sec = ts[1].tv_sec = mtime;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	if (write_full(fd, data, len) < 0 || fsync(fd) < 0 ||
	    futimens(fd, ts) < 0) {
		int err = errno;

		close(fd);
		(void)unlink(path);
		errno = err;
		return -1;
	}
	return close(fd);
}

/*
 * The message with every CRLF made LF (a lone CR stays): Maildir files keep
 * LF line ends, as SMTP delivery and Dovecot write them. Returns a malloc'd
 * copy, its length in *len_r.
 */
static char *
crlf_to_lf(const char *data, size_t len, size_t *len_r)
{
	char *out = xmalloc(len + 1);
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
			continue;
		out[o++] = data[i];
	}
	out[o] = '\0';
	*len_r = o;
	return out;
}

int
store_mailbox_append(struct store_mailbox *box, const void *crlf_data,
    size_t crlf_len, unsigned int flags, const char *keywords,
    time_t internaldate, uint32_t *uid_r, char **error_r)
{
	struct store_append m = {
		.data = crlf_data, .len = crlf_len, .flags = flags,
		.keywords = keywords, .internaldate = internaldate,
	};

	return store_mailbox_append_many(box, &m, 1, uid_r, error_r);
}

/* One message of store_mailbox_append_many on its way in. */
struct append_file {
	char *base, *tmp, *path, *full, *kw;
	uint64_t vsize;
	time_t date;
	bool in_cur;
};

int
store_mailbox_append_many(struct store_mailbox *box,
    const struct store_append *msgs, unsigned int count, uint32_t *uids_r,
    char **error_r)
{
	struct append_file *f = xcalloc(count + 1, sizeof(*f));
	char *cur = xasprintf("%s/cur", box->dir);
	unsigned int written = 0;
	int rc, ret = -1;
	bool in_tx = false;

	*error_r = NULL;
	/* 1: every file written and fsync'd in tmp/, where nobody looks */
	for (; written < count; written++) {
		struct append_file *a = &f[written];
		char kwl[STORE_MAX_KEYWORDS + 1];
		size_t len;
		char *data = crlf_to_lf(msgs[written].data, msgs[written].len, &len);
		int r;

		a->vsize = mime_vsize(data, 0, len);
		a->base = make_base(len, a->vsize);
		a->tmp = xasprintf("%s/tmp/%s", box->dir, a->base);
		a->kw = kw_normalize(msgs[written].keywords);
		a->date = msgs[written].internaldate != 0 ?
		    msgs[written].internaldate : time(NULL);
		if (kw_to_letters(box, a->kw, kwl, error_r) < 0) {
			free(data);
			goto fail;
		}
		a->path = make_path(msgs[written].flags, kwl, a->base);
		a->full = xasprintf("%s/%s", box->dir, a->path);
		r = write_file(a->tmp, data, len, a->date);
		free(data);
		if (r < 0) {
			*error_r = xasprintf("Cannot write %s: %s", a->tmp,
			    strerror(errno));
			goto fail;
		}
	}
	/* 2: all of them into cur/ under the index lock, then their rows in
	   one transaction: another session sees all or none */
	if (begin(box, &rc) < 0) {
		db_error(box->acct, rc, "append", error_r);
		goto fail;
	}
	in_tx = true;
	for (unsigned int i = 0; i < count; i++) {
		if (rename(f[i].tmp, f[i].full) < 0) {
			*error_r = xasprintf("Cannot store %s: %s", f[i].full,
			    strerror(errno));
			goto fail;
		}
		f[i].in_cur = true;
	}
	if (fsync_dir(cur) < 0) {
		*error_r = xasprintf("Cannot store in %s: %s", cur, strerror(errno));
		goto fail;
	}
	for (unsigned int i = 0; i < count; i++) {
		uids_r[i] = box->uidnext++;
		if (insert_row(box, uids_r[i], f[i].base, f[i].path,
		    msgs[i].flags, f[i].kw, ++box->highestmodseq, f[i].date,
		    f[i].vsize, &rc) < 0) {
			db_error(box->acct, rc, "append", error_r);
			goto fail;
		}
	}
	if (commit(box, &rc) < 0) {
		in_tx = false;
		db_error(box->acct, rc, "append", error_r);
		goto fail;
	}
	in_tx = false;
	ret = uidlist_write(box, error_r);
	goto out;
fail:
	if (in_tx)
		(void)sqlite3_exec(box->acct->db, "ROLLBACK", NULL, NULL, NULL);
	/* the row reload at the next begin() puts uidnext back */
	for (unsigned int i = 0; i < written && i < count; i++)
		(void)unlink(f[i].in_cur ? f[i].full : f[i].tmp);
	if (written < count && f[written].tmp != NULL)
		(void)unlink(f[written].tmp);
out:
	for (unsigned int i = 0; i <= count; i++) {
		free(f[i].base);
		free(f[i].tmp);
		free(f[i].path);
		free(f[i].full);
		free(f[i].kw);
	}
	free(f);
	free(cur);
	return ret;
}

/* A copy of a file where a hard link is not possible (EXDEV, EPERM). */
static int
copy_file(const char *from, const char *to, time_t mtime)
{
	char *data;
	size_t len;
	int r;

	if (file_read_all(from, MESSAGE_READ_MAX, &data, &len) < 0)
		return -1;
	r = write_file(to, data, len, mtime);
	free(data);
	return r;
}

int
store_mailbox_copy(struct store_mailbox *src, const unsigned int *indexes,
    unsigned int count, struct store_mailbox *dst, uint32_t *dst_uids_r,
    char **error_r)
{
	char *cur = xasprintf("%s/cur", dst->dir);
	char **made = xcalloc(count + 1, sizeof(*made));
	unsigned int nmade = 0;
	int rc, ret = -1;

	*error_r = NULL;
	if (readonly_error(dst, error_r) < 0)
		goto out_nobegin;
	if (begin(dst, &rc) < 0) {
		db_error(dst->acct, rc, "copy", error_r);
		goto out_nobegin;
	}
	for (unsigned int k = 0; k < count; k++) {
		const struct store_msg *m;
		char kwl[STORE_MAX_KEYWORDS + 1];
		char *from, *base, *path, *to;
		long long s, w;
		uint32_t uid;
		int r;

		if (indexes[k] >= src->count)
			panic("store_mailbox_copy: index %u of %u", indexes[k],
			    src->count);
		m = &src->msgs[indexes[k]];
		if (kw_to_letters(dst, m->keywords, kwl, error_r) < 0)
			goto fail;
		s = base_field(m->base, 'S');
		w = base_field(m->base, 'W');
		from = store_msg_full_path(src, m);
		if (s < 0) {
			struct stat st;

			s = stat(from, &st) == 0 ? (long long)st.st_size : 0;
		}
		base = make_base((uint64_t)s, w >= 0 ? (uint64_t)w : m->size);
		path = make_path(m->flags, kwl, base);
		to = xasprintf("%s/%s", dst->dir, path);
		r = link(from, to);
		if (r < 0 && (errno == EXDEV || errno == EPERM || errno == EMLINK))
			r = copy_file(from, to, m->internaldate);
		if (r < 0) {
			*error_r = xasprintf("Cannot copy %s: %s", from,
			    errno == ENOENT ? "message expunged meanwhile" :
			    strerror(errno));
			free(from);
			free(base);
			free(path);
			free(to);
			goto fail;
		}
		made[nmade++] = to;
		uid = dst->uidnext++;
		r = insert_row(dst, uid, base, path, m->flags, m->keywords,
		    ++dst->highestmodseq, m->internaldate, m->size, &rc);
		free(from);
		free(base);
		free(path);
		if (r < 0) {
			db_error(dst->acct, rc, "copy", error_r);
			goto fail;
		}
		dst_uids_r[k] = uid;
	}
	if (fsync_dir(cur) < 0) {
		*error_r = xasprintf("Cannot sync %s: %s", cur, strerror(errno));
		goto fail;
	}
	if (commit(dst, &rc) < 0) {
		db_error(dst->acct, rc, "copy", error_r);
		goto fail_nocommit;
	}
	ret = uidlist_write(dst, error_r);
	goto out_nobegin;
fail:
	(void)sqlite3_exec(dst->acct->db, "ROLLBACK", NULL, NULL, NULL);
fail_nocommit:
	/* all or nothing: take back the links made */
	for (unsigned int i = 0; i < nmade; i++)
		(void)unlink(made[i]);
out_nobegin:
	for (unsigned int i = 0; i < nmade; i++)
		free(made[i]);
	free(made);
	free(cur);
	return ret;
}

/* --- cache ---------------------------------------------------------------------------- */

int
store_msg_cache_get(struct store_mailbox *box, uint32_t uid,
    char **envelope_r, char **bodystructure_r)
{
	sqlite3_stmt *st;
	int rc, ret = 0;

	*envelope_r = *bodystructure_r = NULL;
	st = prep(box->acct, "SELECT envelope, bodystructure FROM message"
	    " WHERE mailbox=?1 AND uid=?2", &rc);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, box->id);
	sqlite3_bind_int64(st, 2, uid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *e = (const char *)sqlite3_column_text(st, 0);
		const char *b = (const char *)sqlite3_column_text(st, 1);

		if (e != NULL)
			*envelope_r = xstrdup(e);
		if (b != NULL)
			*bodystructure_r = xstrdup(b);
		ret = e != NULL || b != NULL ? 1 : 0;
	} else if (rc != SQLITE_DONE) {
		ret = -1;
	}
	sqlite3_finalize(st);
	return ret;
}

int
store_msg_cache_set(struct store_mailbox *box, uint32_t uid,
    const char *envelope, const char *bodystructure, char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	st = prep(box->acct, "UPDATE message SET envelope=coalesce(?3, envelope),"
	    " bodystructure=coalesce(?4, bodystructure)"
	    " WHERE mailbox=?1 AND uid=?2", &rc);
	if (st == NULL)
		return db_error(box->acct, rc, "cache", error_r);
	sqlite3_bind_int64(st, 1, box->id);
	sqlite3_bind_int64(st, 2, uid);
	if (envelope != NULL)
		sqlite3_bind_text(st, 3, envelope, -1, SQLITE_STATIC);
	if (bodystructure != NULL)
		sqlite3_bind_text(st, 4, bodystructure, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_error(box->acct, rc, "cache", error_r);
}

/* --- opaque per-message data -------------------------------------------------- */

int
store_msg_blobs_load(struct store_mailbox *box, const char *kind,
    store_blob_fn *fn, void *ctx, char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	/* rows of expunged messages and of an older UIDVALIDITY (a folder
	   made again) go first; they would never be asked for */
	st = prep(box->acct, "DELETE FROM msgcache WHERE mailbox=?1 AND kind=?2"
	    " AND (uidvalidity<>?3 OR uid NOT IN"
	    " (SELECT uid FROM message WHERE mailbox=?1))", &rc);
	if (st == NULL)
		return db_error(box->acct, rc, "msgcache", error_r);
	sqlite3_bind_int64(st, 1, box->id);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, box->uidvalidity);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_error(box->acct, rc, "msgcache", error_r);
	st = prep(box->acct, "SELECT uid, data FROM msgcache"
	    " WHERE mailbox=?1 AND kind=?2 AND uidvalidity=?3 ORDER BY uid", &rc);
	if (st == NULL)
		return db_error(box->acct, rc, "msgcache", error_r);
	sqlite3_bind_int64(st, 1, box->id);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, box->uidvalidity);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *data = sqlite3_column_blob(st, 1);
		int len = sqlite3_column_bytes(st, 1);

		fn((uint32_t)sqlite3_column_int64(st, 0), data != NULL ? data : "",
		    (size_t)(len > 0 ? len : 0), ctx);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : db_error(box->acct, rc, "msgcache", error_r);
}

int
store_msg_blobs_save(struct store_mailbox *box, const char *kind,
    const uint32_t *uids, const void *const *data, const size_t *lens,
    unsigned int n, char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	if (n == 0)
		return 0;
	if (db_exec(box->acct, "BEGIN IMMEDIATE", &rc) < 0)
		return db_error(box->acct, rc, "msgcache", error_r);
	st = prep(box->acct, "INSERT OR REPLACE INTO msgcache"
	    "(mailbox, kind, uid, uidvalidity, data) VALUES(?1, ?2, ?3, ?4, ?5)",
	    &rc);
	for (unsigned int i = 0; st != NULL && i < n; i++) {
		sqlite3_bind_int64(st, 1, box->id);
		sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, uids[i]);
		sqlite3_bind_int64(st, 4, box->uidvalidity);
		sqlite3_bind_blob(st, 5, data[i], (int)lens[i], SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			break;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK) {
		int ignored;

		(void)db_error(box->acct, rc, "msgcache", error_r);
		(void)db_exec(box->acct, "ROLLBACK", &ignored);
		return -1;
	}
	if (db_exec(box->acct, "COMMIT", &rc) < 0)
		return db_error(box->acct, rc, "msgcache", error_r);
	return 0;
}
