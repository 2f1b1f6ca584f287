/*
 * store/folder: a folder as the sessions of one process share it (see
 * mailbox-private.h), how it is kept in step with the Maildir and the
 * index, and the changes made to it (flags, expunge, append, copy).
 *
 * Keeping in step, cheapest first:
 *   - changes made here are applied to the shared message array as they
 *     are committed, and the other handles are notified;
 *   - inotify on new/ and cur/ says when mail arrived (new/: only those
 *     files are read and given UIDs) or when something we did not do
 *     happened in cur/ (then the full scan below); the events our own
 *     renames and unlinks cause are recognised by name (watch.c);
 *   - PRAGMA data_version says when another connection wrote the index
 *     (then the array is loaded again);
 *   - without inotify, the mtimes of new/ and cur/ (any change: full scan).
 * The full scan compares every file with the index, inside one BEGIN
 * IMMEDIATE transaction, so two processes never give one file two UIDs.
 *
 * UIDs are also written to the folder's dovecot-uidlist (version 3), so a
 * lost or corrupt index is rebuilt with the same UIDVALIDITY and UIDs, and
 * Dovecot can read the folder back: new UIDs are appended as lines, as
 * Dovecot does; the file is rewritten when it holds more lines for gone
 * messages than for present ones. It is a recovery aid, written inside
 * the index transaction and not fsync'd: a power cut may cost it the same
 * last changes the index's WAL may lose.
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
#include <time.h>
#include <unistd.h>

#define UIDLIST_FILE "dovecot-uidlist"
#define KEYWORDS_FILE "dovecot-keywords"
#define UIDLIST_MAX (256u * 1024 * 1024)
#define KEYWORDS_MAX (64 * 1024)
#define MESSAGE_READ_MAX (1024u * 1024 * 1024)
/* tombstones kept per folder for QRESYNC, and how often to check */
#define TOMBSTONES_MAX 20000
#define PRUNE_EVERY 1000
/* our mark in the uidlist header (Dovecot keeps unknown fields) */
#define UIDLIST_MARK "Xtegami"

/* file names after flag changes (below) */
static int lag_flush(struct store_folder_state *f);
static void lag_clear(struct store_folder_state *f);
static void lag_scan(struct store_folder_state *f);

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

/* ",W=<n>" or ",S=<n>" in a base name; -1 if missing. */
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

/* "cur/x:2,S" -> "cur", "x:2,S" */
static void
split_path(const char *path, char sub[4], const char **name_r)
{
	const char *slash = strchr(path, '/');

	if (slash != NULL && slash - path == 3) {
		memcpy(sub, path, 3);
		sub[3] = '\0';
		*name_r = slash + 1;
	} else {
		str_copy(sub, 4, "cur");
		*name_r = path;
	}
}

/* --- keywords (dovecot-keywords: "<n> <name>" lines, letter 'a'+n) ------ */

static void
kw_clear(struct store_folder_state *f)
{
	for (unsigned int i = 0; i < STORE_MAX_KEYWORDS; i++)
		x_free(&f->kw[i]);
	f->nkw = 0;
}

static void
kw_load(struct store_folder_state *f)
{
	char *path = xasprintf("%s/" KEYWORDS_FILE, f->dir);
	char *data, *line, *save = NULL;
	size_t len;

	kw_clear(f);
	if (file_read_all(path, KEYWORDS_MAX, &data, &len) == 0) {
		for (line = strtok_r(data, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save)) {
			char *end;
			unsigned long n = strtoul(line, &end, 10);

			if (end == line || *end != ' ' || n >= STORE_MAX_KEYWORDS ||
			    end[1] == '\0')
				continue;
			free(f->kw[n]);
			f->kw[n] = xstrdup(end + 1);
			if (n + 1 > f->nkw)
				f->nkw = (unsigned int)n + 1;
		}
		free(data);
	}
	free(path);
}

static int
kw_save(struct store_folder_state *f)
{
	struct buf b;
	char *path = xasprintf("%s/" KEYWORDS_FILE, f->dir);
	int r;

	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "");
	for (unsigned int i = 0; i < f->nkw; i++) {
		if (f->kw[i] != NULL)
			buf_printf(&b, "%u %s\n", i, f->kw[i]);
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
	char **v;
	struct buf b;

	if (keywords == NULL || keywords[0] == '\0')
		return xstrdup("");
	v = str_split(keywords, " ", &n);
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
kw_from_letters(const struct store_folder_state *f, const char *kwl)
{
	struct buf b;
	char *r;

	if (kwl[0] == '\0')
		return xstrdup("");
	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "");
	for (const char *p = kwl; *p != '\0'; p++) {
		unsigned int i = (unsigned int)(*p - 'a');

		/* a letter without a name in dovecot-keywords is dropped */
		if (i < f->nkw && f->kw[i] != NULL) {
			if (b.len > 0)
				buf_append_c(&b, ' ');
			buf_append_str(&b, f->kw[i]);
		}
	}
	r = kw_normalize(buf_cstr(&b));
	buf_free(&b);
	return r;
}

/* The letter of keyword name, or -1 when it has none yet. */
static int
kw_find(const struct store_folder_state *f, const char *name)
{
	for (unsigned int j = 0; j < f->nkw; j++)
		if (f->kw[j] != NULL && strcmp(f->kw[j], name) == 0)
			return (int)j;
	return -1;
}

/*
 * Keyword names -> letters, adding names to dovecot-keywords as needed.
 * A name is added under a lock on the folder directory, after reading the
 * file again: another process (a second imap worker, Dovecot) may have
 * given the next letter to a name of its own meanwhile.
 */
static int
kw_to_letters(struct store_folder_state *f, const char *keywords, char *kwl,
    char **error_r)
{
	size_t n, nk = 0;
	char **v;
	int lockfd = -1, r = 0;
	bool added = false;

	kwl[0] = '\0';
	if (keywords == NULL || keywords[0] == '\0')
		return 0;
	v = str_split(keywords, " ", &n);
	for (size_t i = 0; i < n && lockfd < 0; i++) {
		if (kw_find(f, v[i]) >= 0)
			continue;
		lockfd = file_lock_dir(f->dir);
		if (lockfd < 0) {
			*error_r = xasprintf("Cannot lock keywords: %s",
			    strerror(errno));
			str_array_free(v);
			return -1;
		}
		kw_load(f);
	}
	for (size_t i = 0; i < n; i++) {
		int j = kw_find(f, v[i]);

		if (j < 0) {
			if (f->nkw == STORE_MAX_KEYWORDS) {
				*error_r = xstrdup("[LIMIT] Too many keywords in this mailbox");
				r = -1;
				break;
			}
			j = (int)f->nkw;
			f->kw[f->nkw++] = xstrdup(v[i]);
			added = true;
		}
		if (memchr(kwl, 'a' + j, nk) == NULL)
			kwl[nk++] = (char)('a' + j);
	}
	kwl[nk] = '\0';
	str_array_free(v);
	if (lockfd >= 0) {
		/* another process may have named them all meanwhile */
		if (r == 0 && added && kw_save(f) < 0) {
			*error_r = xasprintf("Cannot write keywords: %s",
			    strerror(errno));
			r = -1;
		}
		if (r < 0)
			kw_load(f);	/* no names kept that the file lacks */
		close(lockfd);		/* the lock goes with it */
	}
	return r;
}

/* --- dovecot-uidlist ----------------------------------------------------------- */

struct uid_entry {
	char *base;
	uint32_t uid;
	char *pop3_uidl;	/* Dovecot's "P" field, or NULL */
};

struct uidlist {
	uint32_t uidvalidity, uidnext;
	bool ours;		/* written by tegami (our mark in the header) */
	struct uid_entry *e;
	unsigned int n;
};

static void
uidlist_free(struct uidlist *ul)
{
	for (unsigned int i = 0; i < ul->n; i++) {
		free(ul->e[i].base);
		free(ul->e[i].pop3_uidl);
	}
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
 * then "<uid> [<ext> ...] :<base>", where ext "P<uidl>" is a POP3 UIDL
 * Dovecot was told to keep) or version 1 ("1 <uidvalidity> <uidnext>",
 * then "<uid> <base>"). 1 = read, 0 = none or unusable.
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
			else if (strncmp(p, UIDLIST_MARK, strlen(UIDLIST_MARK)) == 0)
				ul->ours = true;
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
		char *base, *uidl = NULL;

		if (uid == 0 || uid >= UINT32_MAX || *end != ' ')
			continue;
		if (version == 1) {
			base = end + 1;
		} else {
			base = strstr(end, " :");
			if (base == NULL)
				continue;
			*base = '\0';
			base += 2;
			/* extension fields between the UID and the name */
			for (char *x = end; *x != '\0'; ) {
				while (*x == ' ')
					x++;
				if (*x == 'P' && x[1] != '\0' && x[1] != ' ') {
					size_t l = strcspn(x + 1, " ");

					free(uidl);
					uidl = xstrndup(x + 1, l);
				}
				while (*x != ' ' && *x != '\0')
					x++;
			}
		}
		if (*base == '\0') {
			free(uidl);
			continue;
		}
		if (ul->n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			ul->e = xreallocarray(ul->e, cap, sizeof(*ul->e));
		}
		ul->e[ul->n].base = xstrdup(base);
		ul->e[ul->n].uid = (uint32_t)uid;
		ul->e[ul->n].pop3_uidl = uidl;
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

static const struct uid_entry *
uidlist_lookup(const struct uidlist *ul, const char *base)
{
	struct uid_entry key = { .base = (char *)base };

	if (ul == NULL || ul->n == 0)
		return NULL;
	return bsearch(&key, ul->e, ul->n, sizeof(*ul->e), uid_entry_cmp);
}

/* Writes path via a temporary file and a rename, without fsync. */
static int
write_replace(const char *path, const void *data, size_t len)
{
	char *tmp = xasprintf("%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int r = -1;

	if (fd >= 0) {
		r = write_full(fd, data, len);
		if (close(fd) < 0)
			r = -1;
		if (r == 0)
			r = rename(tmp, path);
		if (r < 0)
			(void)unlink(tmp);
	}
	free(tmp);
	return r;
}

/*
 * Rewrites the folder's dovecot-uidlist from the index, inside the
 * index transaction (so two writers do not interleave).
 */
static int
uidlist_write(struct store_folder_state *f, char **error_r)
{
	struct store_account *acct = f->acct;
	sqlite3_stmt *st;
	struct buf b;
	char *path;
	int rc, r;

	buf_init(&b, BUF_UNLIMITED);
	st = store_stmt(acct, ST_GUID, &rc);
	if (st == NULL)
		return store_db_error(acct, rc, "uidlist", error_r);
	sqlite3_bind_int64(st, 1, f->id);
	buf_printf(&b, "3 V%u N%u G%s " UIDLIST_MARK "\n", f->uidvalidity,
	    f->uidnext, sqlite3_step(st) == SQLITE_ROW ?
	    (const char *)sqlite3_column_text(st, 0) : "");
	sqlite3_reset(st);
	st = store_stmt(acct, ST_UIDLIST, &rc);
	if (st == NULL) {
		buf_free(&b);
		return store_db_error(acct, rc, "uidlist", error_r);
	}
	sqlite3_bind_int64(st, 1, f->id);
	while (sqlite3_step(st) == SQLITE_ROW)
		buf_printf(&b, "%u :%s\n", (unsigned int)sqlite3_column_int64(st, 0),
		    (const char *)sqlite3_column_text(st, 1));
	sqlite3_reset(st);
	path = xasprintf("%s/" UIDLIST_FILE, f->dir);
	r = write_replace(path, b.data, b.len);
	if (r < 0)
		*error_r = xasprintf("Cannot write %s: %s", path, strerror(errno));
	free(path);
	buf_free(&b);
	f->uidlist_stale = 0;
	return r;
}

/*
 * The lines of messages gone stay in the uidlist (Dovecot's reader skips
 * a line without a file, as ours does) until they are most of it: then it
 * is written afresh. Writing it on every change would be a file created
 * and renamed over on the event loop, each time.
 */
static bool
uidlist_due(const struct store_folder_state *f, unsigned int live)
{
	return f->uidlist_stale > 64 && f->uidlist_stale > live;
}

/* Appends the lines for new UIDs (what Dovecot does too). */
static int
uidlist_append(struct store_folder_state *f, const uint32_t *uids,
    char *const *bases, unsigned int n, char **error_r)
{
	char *path = xasprintf("%s/" UIDLIST_FILE, f->dir);
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	struct buf b;
	int r;

	if (fd < 0) {
		free(path);
		/* missing (deleted by hand): write it whole */
		return uidlist_write(f, error_r);
	}
	buf_init(&b, BUF_UNLIMITED);
	for (unsigned int i = 0; i < n; i++)
		buf_printf(&b, "%u :%s\n", uids[i], bases[i]);
	r = write_full(fd, b.data, b.len);
	if (close(fd) < 0)
		r = -1;
	if (r < 0)
		*error_r = xasprintf("Cannot write %s: %s", path, strerror(errno));
	buf_free(&b);
	free(path);
	return r;
}

/* --- snapshots -------------------------------------------------------------------- */

static struct store_snap *
snap_new(unsigned int cap)
{
	struct store_snap *s = xcalloc(1, sizeof(*s));

	s->cap = cap > 0 ? cap : 16;
	s->msgs = xcalloc(s->cap, sizeof(*s->msgs));
	return s;
}

static struct store_snap *
snap_ref(struct store_snap *s)
{
	s->refs++;
	return s;
}

static void
snap_unref(struct store_snap **sp)
{
	struct store_snap *s = *sp;

	if (s == NULL)
		return;
	*sp = NULL;
	if (--s->refs > 0)
		return;
	store_msgs_free(s->msgs, s->count);
	free(s);
}

static void
msg_copy(struct store_msg *dst, const struct store_msg *src)
{
	*dst = *src;
	dst->base = NULL;
	store_msg_set_strings(dst, src->base, src->path, src->keywords);
}

/* Adds m (copied) at the end; UIDs only grow. */
static void
snap_push(struct store_snap *s, const struct store_msg *m)
{
	if (s->count == s->cap) {
		s->cap *= 2;
		s->msgs = xreallocarray(s->msgs, s->cap, sizeof(*s->msgs));
	}
	msg_copy(&s->msgs[s->count++], m);
}

static int
snap_find(const struct store_snap *s, unsigned int count, uint32_t uid)
{
	unsigned int lo = 0, hi = count;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (s->msgs[mid].uid == uid)
			return (int)mid;
		if (s->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/*
 * The folder's array, ready to lose messages: a copy when a handle still
 * views it (its sequence numbers must not move before its next sync).
 */
static struct store_snap *
cur_for_removal(struct store_folder_state *f)
{
	struct store_snap *old = f->cur, *s;

	if (old->refs == 1)
		return old;
	s = snap_new(old->count + 16);
	for (unsigned int i = 0; i < old->count; i++)
		msg_copy(&s->msgs[i], &old->msgs[i]);
	s->count = old->count;
	f->cur = snap_ref(s);
	snap_unref(&old);
	return s;
}

static void
cur_remove(struct store_folder_state *f, const uint32_t *uids, unsigned int n)
{
	struct store_snap *s;
	unsigned int o = 0;

	if (n == 0)
		return;
	s = cur_for_removal(f);
	for (unsigned int i = 0; i < s->count; i++) {
		bool gone = false;

		for (unsigned int k = 0; k < n && !gone; k++)
			gone = s->msgs[i].uid == uids[k];
		if (gone) {
			free(s->msgs[i].base);
			continue;
		}
		s->msgs[o++] = s->msgs[i];
	}
	s->count = o;
}

/* --- the mailbox row ------------------------------------------------------------ */

static int
row_reload(struct store_folder_state *f, bool *found_r, int *rc_r)
{
	sqlite3_stmt *st = store_stmt(f->acct, ST_ROW_BY_NAME, rc_r);

	*found_r = false;
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, f->name, -1, SQLITE_STATIC);
	*rc_r = sqlite3_step(st);
	if (*rc_r == SQLITE_ROW) {
		const char *scheme = (const char *)sqlite3_column_text(st, 5);

		f->id = sqlite3_column_int64(st, 0);
		f->uidvalidity = (uint32_t)sqlite3_column_int64(st, 1);
		f->uidnext = (uint32_t)sqlite3_column_int64(st, 2);
		f->highestmodseq = (uint64_t)sqlite3_column_int64(st, 3);
		f->vanished_from = (uint64_t)sqlite3_column_int64(st, 4);
		f->uidl_scheme = scheme != NULL && scheme[0] == 'd' ? 'd' : 'b';
		*found_r = true;
		*rc_r = SQLITE_OK;
	} else if (*rc_r == SQLITE_DONE) {
		*rc_r = SQLITE_OK;
	}
	sqlite3_reset(st);
	return *rc_r == SQLITE_OK ? 0 : -1;
}

static int
row_store(struct store_folder_state *f, int *rc_r)
{
	sqlite3_stmt *st = store_stmt(f->acct, ST_ROW_STORE, rc_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, f->id);
	sqlite3_bind_int64(st, 2, f->uidnext);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)f->highestmodseq);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)f->vanished_from);
	*rc_r = sqlite3_step(st);
	sqlite3_reset(st);
	if (*rc_r != SQLITE_DONE)
		return -1;
	*rc_r = SQLITE_OK;
	return 0;
}

static int
meta_get(struct store_account *acct, const char *key, char **value_r,
    int *rc_r)
{
	sqlite3_stmt *st = store_stmt(acct, ST_META_GET, rc_r);

	*value_r = NULL;
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	*rc_r = sqlite3_step(st);
	if (*rc_r == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);

		*value_r = xstrdup(v != NULL ? v : "");
	}
	sqlite3_reset(st);
	if (*rc_r != SQLITE_ROW && *rc_r != SQLITE_DONE)
		return -1;
	*rc_r = SQLITE_OK;
	return 0;
}

static int
meta_set(struct store_account *acct, const char *key, const char *value,
    int *rc_r)
{
	sqlite3_stmt *st = store_stmt(acct, ST_META_SET, rc_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	*rc_r = sqlite3_step(st);
	sqlite3_reset(st);
	if (*rc_r != SQLITE_DONE)
		return -1;
	*rc_r = SQLITE_OK;
	return 0;
}

/*
 * UIDVALIDITY for a folder made anew: the time, but always above the last
 * one given in this account, so that a folder deleted and created again
 * within one second does not come back with the same UIDVALIDITY and
 * UIDs (RFC 9051 2.3.1.1). 0 on a database error.
 */
static uint32_t
new_uidvalidity(struct store_account *acct, int *rc_r)
{
	uint32_t v = (uint32_t)time(NULL);
	unsigned long long last = 0;
	char *t, num[24];

	if (meta_get(acct, "last_uidvalidity", &t, rc_r) < 0)
		return 0;
	if (t != NULL && str_to_ullong(t, &last) == 0 && last >= v &&
	    last < UINT32_MAX)
		v = (uint32_t)last + 1;
	free(t);
	snprintf(num, sizeof(num), "%u", v);
	if (meta_set(acct, "last_uidvalidity", num, rc_r) < 0)
		return 0;
	return v;
}

/*
 * First sight of a folder: take UIDVALIDITY and UIDs over from
 * dovecot-uidlist when there is one (Dovecot's, or ours after an index
 * rebuild), else start a new UIDVALIDITY. A folder whose uidlist Dovecot
 * wrote keeps Dovecot's POP3 UIDLs (scheme 'd'); any other keeps the base
 * names tegami has always used ('b').
 */
static int
row_create(struct store_folder_state *f, struct uidlist *ul, int *rc_r)
{
	sqlite3_stmt *st;
	unsigned char rnd[16];
	char guid[33];
	int fd;

	if (uidlist_read(f->dir, ul) > 0) {
		f->uidvalidity = ul->uidvalidity;
		f->uidnext = ul->uidnext > 0 ? ul->uidnext : 1;
		f->uidl_scheme = ul->ours ? 'b' : 'd';
	} else {
		f->uidvalidity = new_uidvalidity(f->acct, rc_r);
		if (f->uidvalidity == 0)
			return -1;
		f->uidnext = 1;
		f->uidl_scheme = 'b';
	}
	/* modseqs start at the current time in microseconds: a folder seen
	   anew (first open, index rebuilt) then never reports a HIGHESTMODSEQ
	   below one a CONDSTORE client may have cached from before */
	{
		struct timeval tv;

		gettimeofday(&tv, NULL);
		f->highestmodseq = (uint64_t)tv.tv_sec * 1000000 +
		    (uint64_t)tv.tv_usec;
	}
	/* nothing was expunged before this, as far as the log knows */
	f->vanished_from = f->highestmodseq;
	memset(rnd, 0, sizeof(rnd));
	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, rnd, sizeof(rnd)) != (ssize_t)sizeof(rnd))
			log_warn("event=guid_short_read");
		close(fd);
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(guid + 2 * i, 3, "%02x", rnd[i]);
	st = store_stmt(f->acct, ST_ROW_INSERT, rc_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, f->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, f->uidvalidity);
	sqlite3_bind_int64(st, 3, f->uidnext);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)f->highestmodseq);
	sqlite3_bind_text(st, 5, guid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 6, f->uidl_scheme == 'd' ? "d" : "b", -1,
	    SQLITE_STATIC);
	*rc_r = sqlite3_step(st);
	sqlite3_reset(st);
	if (*rc_r != SQLITE_DONE)
		return -1;
	f->id = sqlite3_last_insert_rowid(f->acct->db);
	*rc_r = SQLITE_OK;
	return 0;
}

/* --- transactions ------------------------------------------------------------------ */

static void
rollback(struct store_account *acct)
{
	int rc;

	if (store_tx(acct, ST_ROLLBACK, &rc) < 0)
		(void)sqlite3_exec(acct->db, "ROLLBACK", NULL, NULL, NULL);
}

/*
 * Starts a change on f: BEGIN IMMEDIATE (or joins the batch open on the
 * account), then the mailbox row as it is now: another process may have
 * moved uidnext on.
 */
static int
f_begin(struct store_folder_state *f, int *rc_r)
{
	struct store_account *acct = f->acct;
	bool found;

	if (acct->batch == 0 && store_tx(acct, ST_BEGIN, rc_r) < 0)
		return -1;
	if (row_reload(f, &found, rc_r) < 0 || !found) {
		if (!found && *rc_r == SQLITE_OK)
			*rc_r = SQLITE_NOTFOUND;
		if (acct->batch == 0)
			rollback(acct);
		else
			acct->batch_failed = true;
		return -1;
	}
	return 0;
}

/* The in-memory folders of an account no longer match a rolled back index. */
static void
account_distrust(struct store_account *acct)
{
	for (struct store_folder_state *f = acct->folders; f != NULL; f = f->next) {
		f->need_rescan = true;
		f->need_reload = true;
	}
}

/* Ends what f_begin started: ok = store the row and commit. */
static int
f_end(struct store_folder_state *f, bool ok, int *rc_r)
{
	struct store_account *acct = f->acct;
	int rc = SQLITE_OK;

	if (ok && row_store(f, &rc) < 0)
		ok = false;
	if (acct->batch > 0) {
		if (!ok)
			acct->batch_failed = true;
		if (rc_r != NULL && rc != SQLITE_OK)
			*rc_r = rc;
		return ok ? 0 : -1;
	}
	if (ok && store_tx(acct, ST_COMMIT, &rc) == 0)
		return 0;
	rollback(acct);
	if (rc_r != NULL && rc != SQLITE_OK)
		*rc_r = rc;
	if (ok)
		account_distrust(acct);	/* the COMMIT itself failed */
	return -1;
}

int
store_batch_begin(struct store_mailbox *box, char **error_r)
{
	struct store_account *acct = box->acct;
	int rc;

	*error_r = NULL;
	if (acct->batch == 0) {
		if (store_tx(acct, ST_BEGIN, &rc) < 0)
			return store_db_error(acct, rc, "begin", error_r);
		acct->batch_failed = false;
	}
	acct->batch++;
	return 0;
}

int
store_batch_end(struct store_mailbox *box, char **error_r)
{
	struct store_account *acct = box->acct;
	int rc;

	*error_r = NULL;
	if (acct->batch == 0)
		panic("store_batch_end without store_batch_begin");
	if (--acct->batch > 0)
		return 0;
	if (!acct->batch_failed && store_tx(acct, ST_COMMIT, &rc) == 0) {
		/* nobody calls store_names_flush(): the batch's names now */
		if (!store_names_deferred(acct))
			store_folders_flush_names(acct);
		return 0;
	}
	rollback(acct);
	/* what was applied in memory may be gone from the index */
	account_distrust(acct);
	*error_r = xstrdup("Index error (batch): changes rolled back");
	return -1;
}

/* --- loading messages ----------------------------------------------------------- */

static int
snap_load(struct store_folder_state *f, struct store_snap **snap_r, int *rc_r)
{
	sqlite3_stmt *st = store_stmt(f->acct, ST_MSGS_LOAD, rc_r);
	struct store_snap *s;

	if (st == NULL)
		return -1;
	s = snap_new(f->cur != NULL ? f->cur->count + 16 : 64);
	sqlite3_bind_int64(st, 1, f->id);
	while ((*rc_r = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_msg *m;

		if (s->count == s->cap) {
			s->cap *= 2;
			s->msgs = xreallocarray(s->msgs, s->cap, sizeof(*s->msgs));
		}
		m = &s->msgs[s->count++];
		memset(m, 0, sizeof(*m));
		m->uid = (uint32_t)sqlite3_column_int64(st, 0);
		m->flags = (unsigned int)sqlite3_column_int(st, 1);
		m->modseq = (uint64_t)sqlite3_column_int64(st, 3);
		m->internaldate = (time_t)sqlite3_column_int64(st, 4);
		m->size = (uint64_t)sqlite3_column_int64(st, 5);
		m->savedate = (time_t)sqlite3_column_int64(st, 8);
		store_msg_set_strings(m, (const char *)sqlite3_column_text(st, 6),
		    (const char *)sqlite3_column_text(st, 7),
		    (const char *)sqlite3_column_text(st, 2));
	}
	sqlite3_reset(st);
	if (*rc_r != SQLITE_DONE) {
		s->refs = 1;
		snap_unref(&s);
		return -1;
	}
	*rc_r = SQLITE_OK;
	*snap_r = s;
	return 0;
}

/* Replaces the folder's array with what the index holds now. */
static int
f_reload(struct store_folder_state *f, int *rc_r)
{
	struct store_snap *s;
	bool found;

	if (row_reload(f, &found, rc_r) < 0)
		return -1;
	if (!found) {
		*rc_r = SQLITE_NOTFOUND;
		return -1;
	}
	if (snap_load(f, &s, rc_r) < 0)
		return -1;
	snap_unref(&f->cur);
	f->cur = snap_ref(s);
	f->need_reload = false;
	/* another connection may have claimed \Recent messages */
	f->recent_loaded = false;
	return 0;
}

/* --- rows ---------------------------------------------------------------------------- */

static int
msg_update(struct store_folder_state *f, uint32_t uid, const char *path,
    unsigned int flags, const char *kw, uint64_t modseq, int *rc_r)
{
	sqlite3_stmt *st = store_stmt(f->acct, ST_MSG_UPDATE, rc_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, f->id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_text(st, 3, path, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, (int)flags);
	sqlite3_bind_text(st, 5, kw, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)modseq);
	*rc_r = sqlite3_step(st);
	sqlite3_reset(st);
	if (*rc_r != SQLITE_DONE)
		return -1;
	*rc_r = SQLITE_OK;
	return 0;
}

static int
msg_set_path(struct store_folder_state *f, uint32_t uid, const char *path,
    int *rc_r)
{
	sqlite3_stmt *st = store_stmt(f->acct, ST_MSG_PATH, rc_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, f->id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_text(st, 3, path, -1, SQLITE_STATIC);
	*rc_r = sqlite3_step(st);
	sqlite3_reset(st);
	if (*rc_r != SQLITE_DONE)
		return -1;
	*rc_r = SQLITE_OK;
	return 0;
}

static int
msg_insert(struct store_folder_state *f, const struct store_msg *m,
    const char *pop3_uidl, int *rc_r)
{
	sqlite3_stmt *st = store_stmt(f->acct, ST_MSG_INSERT, rc_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, f->id);
	sqlite3_bind_int64(st, 2, m->uid);
	sqlite3_bind_text(st, 3, m->base, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, m->path, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, (int)m->flags);
	sqlite3_bind_text(st, 6, m->keywords, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, (sqlite3_int64)m->modseq);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)m->internaldate);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)m->size);
	if (pop3_uidl != NULL)
		sqlite3_bind_text(st, 10, pop3_uidl, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 11, (sqlite3_int64)(m->savedate != 0 ?
	    m->savedate : time(NULL)));
	*rc_r = sqlite3_step(st);
	sqlite3_reset(st);
	if (*rc_r != SQLITE_DONE)
		return -1;
	*rc_r = SQLITE_OK;
	return 0;
}

/* The row of a message and a tombstone for QRESYNC. */
static int
msg_delete(struct store_folder_state *f, uint32_t uid, uint64_t modseq,
    int *rc_r)
{
	sqlite3_stmt *st = store_stmt(f->acct, ST_MSG_DELETE, rc_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, f->id);
	sqlite3_bind_int64(st, 2, uid);
	*rc_r = sqlite3_step(st);
	sqlite3_reset(st);
	if (*rc_r != SQLITE_DONE)
		return -1;
	st = store_stmt(f->acct, ST_CACHE_DELETE, rc_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, f->id);
	sqlite3_bind_int64(st, 2, uid);
	*rc_r = sqlite3_step(st);
	sqlite3_reset(st);
	if (*rc_r != SQLITE_DONE)
		return -1;
	st = store_stmt(f->acct, ST_TOMB_INSERT, rc_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, f->id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)modseq);
	*rc_r = sqlite3_step(st);
	sqlite3_reset(st);
	if (*rc_r != SQLITE_DONE)
		return -1;
	*rc_r = SQLITE_OK;
	f->expunges_since_prune++;
	return 0;
}

/* UID and path of the row for a base name: 1 found, 0 not, -1 error. */
static int
msg_by_base(struct store_folder_state *f, const char *base, uint32_t *uid_r,
    char **path_r, int *rc_r)
{
	sqlite3_stmt *st = store_stmt(f->acct, ST_MSG_BY_BASE, rc_r);
	int ret = 0;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, f->id);
	sqlite3_bind_text(st, 2, base, -1, SQLITE_STATIC);
	*rc_r = sqlite3_step(st);
	if (*rc_r == SQLITE_ROW) {
		*uid_r = (uint32_t)sqlite3_column_int64(st, 0);
		if (path_r != NULL)
			*path_r = xstrdup((const char *)sqlite3_column_text(st, 1));
		ret = 1;
	} else if (*rc_r != SQLITE_DONE) {
		ret = -1;
	}
	sqlite3_reset(st);
	if (ret >= 0)
		*rc_r = SQLITE_OK;
	return ret;
}

/*
 * Keeps the expunge log bounded: past TOMBSTONES_MAX the oldest half goes
 * and vanished_from moves up (older QRESYNC states then get the long
 * answer, every UID not in the folder). Inside a transaction.
 */
static int
tombstones_prune(struct store_folder_state *f, int *rc_r)
{
	sqlite3_stmt *st;
	long long count = 0, cut;

	*rc_r = SQLITE_OK;
	if (f->expunges_since_prune < PRUNE_EVERY)
		return 0;
	f->expunges_since_prune = 0;
	st = store_stmt(f->acct, ST_TOMB_COUNT, rc_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, f->id);
	if (sqlite3_step(st) == SQLITE_ROW)
		count = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (count <= TOMBSTONES_MAX)
		return 0;
	st = store_stmt(f->acct, ST_TOMB_NTH, rc_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, f->id);
	sqlite3_bind_int64(st, 2, count - TOMBSTONES_MAX / 2);
	cut = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_reset(st);
	if (cut < 0)
		return 0;
	st = store_stmt(f->acct, ST_TOMB_PRUNE, rc_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, f->id);
	sqlite3_bind_int64(st, 2, cut);
	*rc_r = sqlite3_step(st);
	sqlite3_reset(st);
	if (*rc_r != SQLITE_DONE)
		return -1;
	*rc_r = SQLITE_OK;
	if ((uint64_t)cut > f->vanished_from)
		f->vanished_from = (uint64_t)cut;
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
 * new/ -> cur/ with an empty info (":2,"), as Dovecot does when a folder
 * is opened. Not fsync'd: should the rename be lost in a crash, the file
 * is found in new/ again and moved again, with its UID (same base).
 * 1 = moved (*to_r: the new name), 0 = gone (another process moved it),
 * -1 = error.
 */
static int
move_to_cur(struct store_folder_state *f, const char *name, char **to_r)
{
	char *from = xasprintf("%s/new/%s", f->dir, name);
	char *toname = xasprintf("%s%s", name, strchr(name, ':') != NULL ? "" : ":2,");
	char *to = xasprintf("%s/cur/%s", f->dir, toname);
	int r;

	store_watch_own(f, 'T', "cur", toname);
	r = rename(from, to) == 0 ? 1 : errno == ENOENT ? 0 : -1;
	if (r <= 0)
		store_watch_own(f, 'U', "cur", toname);
	free(from);
	free(to);
	if (r == 1)
		*to_r = toname;
	else
		free(toname);
	return r;
}

#define TRASH_PREFIX ".expunged."

/* Is this trash name waiting for the janitor (not a crash leftover)? */
static bool
trash_pending(const struct store_account *acct, const char *name)
{
	for (unsigned int i = 0; i < acct->ntrash; i++) {
		const char *slash = strrchr(acct->trash[i], '/');

		if (slash != NULL && strcmp(slash + 1, name) == 0)
			return true;
	}
	return false;
}

/*
 * Trash that is not ours (trash_pending) is another process's until it is
 * old: every imap worker renames expunged files out of the way and its
 * janitor unlinks them within seconds. Older than store_trash_stale_secs (the
 * rename set its ctime), its process died before the janitor came.
 */
int store_trash_stale_secs = 300;

static bool
trash_left_over(DIR *d, const char *name)
{
	struct stat st;

	if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return false;	/* gone: its janitor came */
	return st.st_ctim.tv_sec + store_trash_stale_secs < time(NULL);
}

/* Lists cur/ (and new/, moving its files into cur/ unless readonly). */
static int
disk_scan(struct store_folder_state *f, bool readonly, struct disk_list *dl,
    char **error_r)
{
	static const char *const subs[] = { "new", "cur" };

	memset(dl, 0, sizeof(*dl));
	for (size_t s = 0; s < 2; s++) {
		char *dirpath = xasprintf("%s/%s", f->dir, subs[s]);
		DIR *d = file_opendir(dirpath);
		struct dirent *de;

		if (d == NULL) {
			*error_r = xasprintf("Cannot read %s: %s", dirpath,
			    strerror(errno));
			free(dirpath);
			disk_free(dl);
			return -1;
		}
		while ((de = readdir(d)) != NULL) {
			char *to;

			if (strncmp(de->d_name, TRASH_PREFIX, strlen(TRASH_PREFIX)) == 0 &&
			    !trash_pending(f->acct, de->d_name) &&
			    trash_left_over(d, de->d_name)) {
				/* expunged before a crash, never unlinked */
				store_trash_adopt(f->acct,
				    xasprintf("%s/%s", dirpath, de->d_name));
				continue;
			}
			if (de->d_name[0] == '.')
				continue;
			if (s == 0 && !readonly) {
				/* ENOENT: another session moved it; cur/ has it */
				if (move_to_cur(f, de->d_name, &to) == 1)
					free(to);
				continue;
			}
			disk_add(dl, subs[s], de->d_name);
		}
		closedir(d);
		free(dirpath);
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
delivery_cmp_names(const char *x, const char *y)
{
	char *ex, *ey;
	unsigned long long tx = strtoull(x, &ex, 10);
	unsigned long long ty = strtoull(y, &ey, 10);

	if (tx != ty)
		return tx < ty ? -1 : 1;
	/* the same second: ".M<microseconds>", which not every writer pads
	   with zeros ("M99" came before "M100") */
	if (strncmp(ex, ".M", 2) == 0 && strncmp(ey, ".M", 2) == 0) {
		unsigned long long ux = strtoull(ex + 2, NULL, 10);
		unsigned long long uy = strtoull(ey + 2, NULL, 10);

		if (ux != uy)
			return ux < uy ? -1 : 1;
	}
	return strcmp(x, y);
}

static int
delivery_cmp(const void *a, const void *b)
{
	return delivery_cmp_names((*(struct disk_entry *const *)a)->base,
	    (*(struct disk_entry *const *)b)->base);
}

static int
name_delivery_cmp(const void *a, const void *b)
{
	return delivery_cmp_names(*(char *const *)a, *(char *const *)b);
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

static bool
is_pending(const struct store_folder_state *f, const char *base)
{
	for (unsigned int i = 0; i < f->npending; i++) {
		if (strcmp(f->pending[i], base) == 0)
			return true;
	}
	return false;
}

/* UIDs a scan gave, for their uidlist lines. */
struct uid_lines {
	uint32_t *uids;
	char **bases;
	unsigned int n;
};

static void
uid_lines_free(struct uid_lines *g)
{
	for (unsigned int i = 0; i < g->n; i++)
		free(g->bases[i]);
	free(g->bases);
	free(g->uids);
	memset(g, 0, sizeof(*g));
}

/*
 * A file found with no row: a new UID (put in *given) or the uidlist's
 * (*wrote_r: the uidlist is written afresh), a row.
 */
static int
add_found(struct store_folder_state *f, const struct disk_entry *e,
    const struct uidlist *import, bool *wrote_r, struct uid_lines *given,
    int *rc_r, char **error_r)
{
	char *full = xasprintf("%s/%s", f->dir, e->path);
	const struct uid_entry *ue = uidlist_lookup(import, e->base);
	struct store_msg m;
	struct stat st;
	bool fresh_uid = false;
	char *kw;
	int r;

	if (stat(full, &st) < 0) {
		free(full);
		return 0;	/* gone meanwhile */
	}
	memset(&m, 0, sizeof(m));
	m.uid = ue != NULL ? ue->uid : 0;
	if (m.uid == 0 || m.uid >= UINT32_MAX) {
		if (f->uidnext >= UINT32_MAX) {
			free(full);
			*error_r = xstrdup("UID space exhausted");
			return -1;
		}
		m.uid = f->uidnext++;
		fresh_uid = true;
	} else if (m.uid >= f->uidnext) {
		f->uidnext = m.uid + 1;
	}
	kw = kw_from_letters(f, e->kwl);
	m.base = e->base;
	m.path = e->path;
	m.keywords = kw;
	m.flags = e->flags;
	m.modseq = ++f->highestmodseq;
	m.internaldate = st.st_mtime;
	m.savedate = st.st_mtime;	/* delivered then, as far as we know */
	m.size = file_vsize(full, e->base);
	r = msg_insert(f, &m, ue != NULL ? ue->pop3_uidl : NULL, rc_r);
	free(kw);
	free(full);
	if (r == 0 && fresh_uid) {
		/* its line is appended to the uidlist */
		given->uids = xreallocarray(given->uids, given->n + 1,
		    sizeof(*given->uids));
		given->bases = xreallocarray(given->bases, given->n + 1,
		    sizeof(*given->bases));
		given->uids[given->n] = m.uid;
		given->bases[given->n++] = xstrdup(e->base);
	} else if (r == 0) {
		*wrote_r = true;	/* a UID taken over: the uidlist afresh */
	}
	return r;
}

/*
 * Disk -> index, inside one transaction. *given: the UIDs given, for the
 * lines to append to the uidlist; *wrote_uids_r: UIDs taken over from it
 * (it is written afresh). The lines of messages gone can wait.
 */
static int
sync_disk(struct store_folder_state *f, bool readonly, struct uidlist *import,
    bool *wrote_uids_r, struct uid_lines *given, int *rc_r, char **error_r)
{
	struct disk_list dl, dl2 = { 0 };
	struct store_snap *rows = NULL;
	struct disk_entry **fresh = NULL;
	unsigned int nfresh = 0;
	bool rescanned = false;
	int ret = -1;

	*rc_r = SQLITE_OK;
	*wrote_uids_r = false;
	if (disk_scan(f, readonly, &dl, error_r) < 0)
		return -1;
	if (snap_load(f, &rows, rc_r) < 0)
		goto out;
	for (unsigned int i = 0; i < rows->count; i++) {
		struct store_msg *r = &rows->msgs[i];
		struct disk_entry *e = disk_find(&dl, r->base);
		char *kw;

		if (e == NULL && !rescanned) {
			/* a file renamed (flags) between our readdir of cur/
			   and now must not look expunged: look once more */
			if (disk_scan(f, readonly, &dl2, error_r) < 0)
				goto out;
			rescanned = true;
		}
		if (e == NULL && rescanned) {
			e = disk_find(&dl2, r->base);
			if (e != NULL)
				e->matched = true;
		}
		if (e == NULL) {
			if (msg_delete(f, r->uid, ++f->highestmodseq, rc_r) < 0)
				goto out;
			f->uidlist_stale++;	/* its line can wait (uidlist_due) */
			continue;
		}
		e->matched = true;
		if (strcmp(e->path, r->path) == 0)
			continue;
		kw = kw_from_letters(f, e->kwl);
		if (e->flags != r->flags || strcmp(kw, r->keywords) != 0) {
			if (msg_update(f, r->uid, e->path, e->flags, kw,
			    ++f->highestmodseq, rc_r) < 0) {
				free(kw);
				goto out;
			}
		} else if (msg_set_path(f, r->uid, e->path, rc_r) < 0) {
			free(kw);
			goto out;
		}
		free(kw);
	}
	/* files with no row: new mail, in delivery order */
	fresh = xcalloc(dl.n + 1, sizeof(*fresh));
	for (unsigned int i = 0; i < dl.n; i++) {
		struct disk_entry *e2;

		if (dl.e[i].matched || is_pending(f, dl.e[i].base))
			continue;
		e2 = disk_find(&dl2, dl.e[i].base);
		if (e2 == NULL || !e2->matched)
			fresh[nfresh++] = &dl.e[i];
	}
	if (nfresh > 1)
		qsort(fresh, nfresh, sizeof(*fresh), delivery_cmp);
	for (unsigned int i = 0; i < nfresh; i++) {
		if (add_found(f, fresh[i], import, wrote_uids_r, given, rc_r,
		    error_r) < 0)
			goto out;
	}
	ret = tombstones_prune(f, rc_r);
out:
	if (ret < 0 && *rc_r != SQLITE_OK && *error_r == NULL)
		store_db_error(f->acct, *rc_r, "sync", error_r);
	free(fresh);
	if (rows != NULL) {
		rows->refs = 1;
		snap_unref(&rows);
	}
	disk_free(&dl);
	disk_free(&dl2);
	return ret;
}

static bool
dir_mtime(const struct store_folder_state *f, const char *sub,
    struct timespec *ts)
{
	char *path = xasprintf("%s/%s", f->dir, sub);
	struct stat st;
	bool ok = stat(path, &st) == 0;

	free(path);
	if (ok)
		*ts = st.st_mtim;
	return ok;
}

/* Unwatched folders: have new/ or cur/ changed since the last full scan? */
static bool
stamps_changed(struct store_folder_state *f)
{
	struct timespec n, c;

	if (!f->stamp_valid || !dir_mtime(f, "new", &n) || !dir_mtime(f, "cur", &c))
		return true;
	return n.tv_sec != f->new_mtime.tv_sec || n.tv_nsec != f->new_mtime.tv_nsec ||
	    c.tv_sec != f->cur_mtime.tv_sec || c.tv_nsec != f->cur_mtime.tv_nsec;
}

/* --- other processes' changes in cur/ ---------------------------------------- */

/*
 * Another tegami process (the other imap worker, POP3) renames a file in
 * cur/ and then writes the new name into the index; nobody else (Dovecot,
 * a user's mv) does. So a name that came is explained once the index has
 * a message under it, and a name that went once no message has it: only
 * what the index does not explain needs cur/ read again. The last event of
 * a name counts (a flag set and cleared again comes back to the old name).
 */
#define FOREIGN_MAX 512

static void
foreign_clear(struct store_folder_state *f)
{
	for (unsigned int i = 0; i < f->nforeign; i++)
		free(f->foreign[i]);
	x_free(&f->foreign);
	x_free(&f->foreign_kind);
	f->nforeign = 0;
	f->foreign_since = 0;
	f->foreign_checked = 0;
}

unsigned int store_foreign_grace_ms = 250;
unsigned long store_folder_scans;

uint64_t
store_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool
store_folder_foreign_waiting(const struct store_folder_state *f)
{
	return f->foreign_since != 0 && !f->need_rescan;
}

void
store_folder_foreign(struct store_folder_state *f, char kind, const char *name)
{
	unsigned int n = f->nforeign;

	if (f->need_rescan)
		return;		/* the scan sees it */
	if (n == FOREIGN_MAX) {
		foreign_clear(f);
		f->need_rescan = true;
		return;
	}
	/* room doubles at 8, 16, 32, ... */
	if (n == 0 || (n >= 8 && (n & (n - 1)) == 0)) {
		unsigned int cap = n == 0 ? 8 : 2 * n;

		f->foreign = xreallocarray(f->foreign, cap, sizeof(*f->foreign));
		f->foreign_kind = xreallocarray(f->foreign_kind, cap, 1);
	}
	f->foreign[n] = xstrdup(name);
	f->foreign_kind[n] = kind;
	f->nforeign = n + 1;
}

struct foreign_slot {
	const char *name;
	char kind;
	bool indexed;
};

static struct foreign_slot *
foreign_slot(struct foreign_slot *tab, size_t mask, const char *name)
{
	for (size_t i = str_hash(name) & mask; ; i = (i + 1) & mask) {
		if (tab[i].name == NULL || strcmp(tab[i].name, name) == 0)
			return &tab[i];
	}
}

/* Does f->cur, as the index has it, account for every foreign name? */
static bool
foreign_explained(const struct store_folder_state *f)
{
	size_t size = 16, mask;
	struct foreign_slot *tab;
	bool ok = true;

	if (f->cur == NULL)
		return false;
	while (size < 2 * (size_t)f->nforeign)
		size *= 2;
	mask = size - 1;
	tab = xcalloc(size, sizeof(*tab));
	for (unsigned int i = 0; i < f->nforeign; i++) {
		struct foreign_slot *sl = foreign_slot(tab, mask, f->foreign[i]);

		sl->name = f->foreign[i];
		sl->kind = f->foreign_kind[i];
	}
	for (unsigned int i = 0; i < f->cur->count; i++) {
		const char *path = f->cur->msgs[i].path;
		struct foreign_slot *sl;

		if (strncmp(path, "cur/", 4) != 0)
			continue;
		sl = foreign_slot(tab, mask, path + 4);
		if (sl->name != NULL)
			sl->indexed = true;
	}
	for (size_t i = 0; i < size && ok; i++) {
		if (tab[i].name != NULL && tab[i].indexed != (tab[i].kind == 'T'))
			ok = false;
	}
	free(tab);
	return ok;
}

/*
 * The index first (what another process wrote), cur/ only if it must.
 * Names the index does not explain yet may be another tegami process's
 * change whose commit is still to come: they wait, and are looked at
 * again when the index changes or more names come, until
 * store_foreign_grace_ms have passed; then cur/ is read (Dovecot, a
 * script or an mv changed the Maildir).
 */
static int
f_foreign(struct store_folder_state *f, int *rc_r)
{
	uint64_t now = store_now_ms();
	bool reloaded = false;

	if (f->need_reload) {
		if (f_reload(f, rc_r) < 0)
			return -1;
		reloaded = true;
	}
	if (f->foreign_since == 0 || reloaded ||
	    f->foreign_checked != f->nforeign) {
		if (foreign_explained(f)) {
			foreign_clear(f);
			return 0;
		}
		f->foreign_checked = f->nforeign;
		if (f->foreign_since == 0) {
			f->foreign_since = now != 0 ? now : 1;
			if (store_foreign_grace_ms > 0)
				store_watch_waiting();
		}
	}
	if (now - f->foreign_since >= store_foreign_grace_ms) {
		f->need_rescan = true;
		foreign_clear(f);
	}
	return 0;
}

/* The full scan, and the array loaded again. */
static int
f_full_sync(struct store_folder_state *f, bool readonly, int *rc_r,
    char **error_r)
{
	struct uidlist ul = { 0 };
	struct uid_lines given = { 0 };
	struct timespec sn = { 0 }, sc = { 0 };
	bool stamp_ok, found, wrote = false, created = false;
	struct store_account *acct = f->acct;

	*rc_r = SQLITE_OK;
	log_debug("event=folder_scan dir=%s", f->dir);
	store_folder_scans++;
	foreign_clear(f);	/* the scan covers what inotify said so far */
	/* the stamp from before the scan: a change during it is not lost */
	stamp_ok = f->wd_cur < 0 && dir_mtime(f, "new", &sn) &&
	    dir_mtime(f, "cur", &sc);
	if (acct->batch == 0 && store_tx(acct, ST_BEGIN, rc_r) < 0)
		goto fail;
	if (row_reload(f, &found, rc_r) < 0)
		goto fail_tx;
	if (!found) {
		if (row_create(f, &ul, rc_r) < 0)
			goto fail_tx;
		created = true;
	}
	kw_load(f);
	f->kw_loaded = true;
	if (sync_disk(f, readonly, &ul, &wrote, &given, rc_r, error_r) < 0)
		goto fail_tx;
	/* also when read-only: UIDs given must survive an index rebuild */
	if (wrote || created || uidlist_due(f, f->cur != NULL ? f->cur->count : 0)) {
		if (uidlist_write(f, error_r) < 0)
			goto fail_tx;
	} else if (given.n > 0 &&
	    uidlist_append(f, given.uids, given.bases, given.n, error_r) < 0) {
		goto fail_tx;
	}
	uid_lines_free(&given);
	if (f_end(f, true, rc_r) < 0)
		goto fail;
	uidlist_free(&ul);
	if (f_reload(f, rc_r) < 0)
		goto fail;
	f->need_rescan = false;
	f->need_new = readonly;
	f->loaded = true;
	if (!readonly)
		lag_scan(f);
	f->stamp_valid = stamp_ok;
	f->new_mtime = sn;
	f->cur_mtime = sc;
	return 0;
fail_tx:
	if (acct->batch == 0)
		rollback(acct);
	else
		acct->batch_failed = true;
fail:
	uid_lines_free(&given);
	uidlist_free(&ul);
	return -1;
}

/*
 * Only new/ changed (inotify said so): its files get rows and UIDs, and
 * unless readonly move to cur/. The rest of the folder is trusted.
 */
static int
f_sync_new(struct store_folder_state *f, bool readonly, int *rc_r,
    char **error_r)
{
	char *dirpath = xasprintf("%s/new", f->dir);
	DIR *d = file_opendir(dirpath);
	struct dirent *de;
	char **names = NULL;
	unsigned int n = 0, cap = 0, nadd = 0;
	struct store_msg *added = NULL;
	uint32_t *uids = NULL;
	char **bases = NULL;
	bool left = false;
	int ret = -1;

	*rc_r = SQLITE_OK;
	if (d == NULL) {
		*error_r = xasprintf("Cannot read %s: %s", dirpath, strerror(errno));
		free(dirpath);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			names = xreallocarray(names, cap, sizeof(*names));
		}
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	free(dirpath);
	f->need_new = false;
	if (n == 0) {
		free(names);
		return 0;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), name_delivery_cmp);
	if (f_begin(f, rc_r) < 0) {
		f->need_new = true;
		goto out_nobegin;
	}
	added = xcalloc(n, sizeof(*added));
	uids = xcalloc(n, sizeof(*uids));
	bases = xcalloc(n, sizeof(*bases));
	for (unsigned int i = 0; i < n; i++) {
		struct store_msg *m = &added[nadd];
		char kwl[STORE_MAX_KEYWORDS + 1], *to = NULL, *path, *full, *kw;
		size_t blen;
		uint32_t uid;
		char *base;
		struct stat st;
		int r;

		parse_filename(names[i], &blen, &m->flags, kwl);
		base = xstrndup(names[i], blen);
		if (!readonly) {
			r = move_to_cur(f, names[i], &to);
			if (r <= 0) {
				free(base);
				if (r < 0) {
					*error_r = xasprintf("Cannot move %s/new/%s: %s",
					    f->dir, names[i], strerror(errno));
					goto fail;
				}
				continue;
			}
			path = xasprintf("cur/%s", to);
			free(to);
		} else {
			path = xasprintf("new/%s", names[i]);
			left = true;
		}
		r = msg_by_base(f, base, &uid, NULL, rc_r);
		if (r < 0) {
			free(base);
			free(path);
			goto fail;
		}
		if (r == 1) {
			/* known (a read-only sync gave it a UID): new place */
			int idx = snap_find(f->cur, f->cur->count, uid);

			if (msg_set_path(f, uid, path, rc_r) < 0) {
				free(base);
				free(path);
				goto fail;
			}
			if (idx >= 0) {
				struct store_msg *c = &f->cur->msgs[idx];
				char *ckw = xstrdup(c->keywords);

				store_msg_set_strings(c, base, path, ckw);
				free(ckw);
			}
			free(base);
			free(path);
			continue;
		}
		full = xasprintf("%s/%s", f->dir, path);
		if (stat(full, &st) < 0) {
			free(full);
			free(base);
			free(path);
			continue;
		}
		kw = kw_from_letters(f, kwl);
		m->uid = f->uidnext++;
		m->modseq = ++f->highestmodseq;
		m->internaldate = st.st_mtime;
		m->savedate = st.st_mtime;
		m->size = file_vsize(full, base);
		m->base = base;
		m->path = path;
		m->keywords = kw;
		free(full);
		r = msg_insert(f, m, NULL, rc_r);
		if (r < 0) {
			free(base);
			free(path);
			free(kw);
			goto fail;
		}
		uids[nadd] = m->uid;
		bases[nadd] = base;
		nadd++;
	}
	if (nadd > 0 && uidlist_append(f, uids, bases, nadd, error_r) < 0)
		goto fail;
	if (f_end(f, true, rc_r) < 0)
		goto out;
	for (unsigned int i = 0; i < nadd; i++)
		snap_push(f->cur, &added[i]);
	f->need_new = left;
	ret = 0;
	goto out;
fail:
	(void)f_end(f, false, NULL);
	f->need_new = true;
out:
	for (unsigned int i = 0; i < nadd; i++) {
		free(added[i].base);
		free(added[i].path);
		free(added[i].keywords);
	}
	free(added);
	free(uids);
	free(bases);
out_nobegin:
	for (unsigned int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return ret;
}

static void f_wake(struct store_folder_state *f);

/* Brings f up to date, as cheaply as what is known to have changed allows. */
static int
f_refresh(struct store_folder_state *f, bool readonly, char **error_r)
{
	struct store_account *acct = f->acct;
	int rc = SQLITE_OK, r = 0;

	*error_r = NULL;
	if (f->asleep)
		f_wake(f);
	/* watched before the first scan: nothing delivered during it is lost */
	if (!f->loaded && f->wd_cur < 0 && acct->shared)
		(void)store_watch_add(f);
	/* the inotify queue is the loop thread's (private accounts may be
	   on a pool thread) */
	if (acct->shared)
		store_watch_read();
	if (store_index_data_changed(acct)) {
		for (struct store_folder_state *o = acct->folders; o != NULL; o = o->next)
			o->need_reload = true;
		f->need_reload = true;	/* f may be detached from the list */
	}
	if (f->loaded && f->wd_cur < 0 && stamps_changed(f))
		f->need_rescan = true;
	if (f->loaded && !f->need_rescan && f->nforeign > 0)
		r = f_foreign(f, &rc);
	if (r == 0 && (!f->loaded || f->need_rescan))
		r = f_full_sync(f, readonly, &rc, error_r);
	else if (r == 0) {
		if (f->need_reload)
			r = f_reload(f, &rc);
		if (r == 0 && f->need_new)
			r = f_sync_new(f, readonly, &rc, error_r);
	}
	if (r == 0)
		return 0;
	if (*error_r == NULL)
		store_db_error(acct, rc, "sync", error_r);
	if (!store_rc_is_corrupt(rc))
		return -1;
	/* the index is broken: start it again from the Maildir (UIDs come
	   back from dovecot-uidlist) and sync once more */
	x_free(error_r);
	if (store_index_rebuild(acct, error_r) < 0)
		return -1;
	for (struct store_folder_state *o = acct->folders; o != NULL; o = o->next) {
		o->loaded = false;
		o->need_rescan = true;
	}
	f->loaded = false;
	if (f_full_sync(f, readonly, &rc, error_r) < 0) {
		if (*error_r == NULL)
			store_db_error(acct, rc, "sync", error_r);
		return -1;
	}
	return 0;
}

/* --- folder states ------------------------------------------------------------- */

static struct store_folder_state *
f_get(struct store_account *acct, const char *name, char *dir)
{
	const char *iname = store_index_name(name);
	struct store_folder_state *f;

	for (f = acct->folders; f != NULL; f = f->next) {
		if (strcmp(f->name, iname) == 0) {
			free(dir);
			f->refs++;
			return f;
		}
	}
	f = xcalloc(1, sizeof(*f));
	f->acct = acct;
	f->name = xstrdup(iname);
	f->dir = dir;
	f->wd_new = f->wd_cur = STORE_WATCH_NONE;
	f->need_new = true;
	f->refs = 1;
	f->next = acct->folders;
	acct->folders = f;
	return f;
}

static void
f_unlink(struct store_folder_state *f)
{
	struct store_folder_state **pp;

	for (pp = &f->acct->folders; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
	f->next = NULL;
}

static void
f_put(struct store_folder_state **fp)
{
	struct store_folder_state *f = *fp;

	*fp = NULL;
	if (--f->refs > 0)
		return;
	(void)lag_flush(f);
	lag_clear(f);
	f_unlink(f);
	store_watch_remove(f);
	snap_unref(&f->cur);
	kw_clear(f);
	for (unsigned int i = 0; i < f->npending; i++)
		free(f->pending[i]);
	free(f->pending);
	foreign_clear(f);
	free(f->name);
	free(f->dir);
	free(f);
}

void
store_folder_forget(struct store_account *acct, const char *name)
{
	const char *iname = store_index_name(name);

	for (struct store_folder_state *f = acct->folders; f != NULL; f = f->next) {
		if (strcmp(f->name, iname) == 0) {
			/* handles still on it keep it until they close; a new
			   open gets a fresh one */
			f_unlink(f);
			store_watch_remove(f);
			f->need_rescan = true;
			/* under its old directory: the new state's scan
			   finds the names (lag_scan) */
			lag_clear(f);
			return;
		}
	}
}

void
store_folder_state_notify(struct store_folder_state *f,
    const struct store_mailbox *except)
{
	for (struct store_mailbox *h = f->handles; h != NULL; h = h->next_handle) {
		if (h != except && h->notify != NULL)
			h->notify(h->notify_ctx);
	}
}

/* --- sleep and wake --------------------------------------------------------------- */

static void
h_sleep(struct store_mailbox *h)
{
	const struct store_snap *s = h->snap;
	unsigned int n = 0;

	if (s == NULL || h->ranges != NULL)
		return;
	h->ranges = xcalloc(2 * (h->count + 1), sizeof(*h->ranges));
	for (unsigned int i = 0; i < h->count; i++) {
		uint32_t uid = s->msgs[i].uid;

		if (n > 0 && h->ranges[2 * n - 1] + 1 == uid) {
			h->ranges[2 * n - 1] = uid;
		} else {
			h->ranges[2 * n] = uid;
			h->ranges[2 * n + 1] = uid;
			n++;
		}
	}
	h->ranges = xreallocarray(h->ranges, 2 * (n + 1), sizeof(*h->ranges));
	h->nranges = n;
	snap_unref(&h->snap);
}

void
store_folders_sleep(struct store_account *acct)
{
	for (struct store_folder_state *f = acct->folders; f != NULL; f = f->next) {
		if (!f->loaded || f->cur == NULL || f->asleep)
			continue;
		for (struct store_mailbox *h = f->handles; h != NULL; h = h->next_handle)
			h_sleep(h);
		snap_unref(&f->cur);
		f->asleep = true;
	}
}

/* A handle's view again, from its UID ranges and the folder's array. */
static void
h_wake(struct store_mailbox *h)
{
	struct store_folder_state *f = h->f;
	struct store_snap *s;
	unsigned int k = 0, j = 0;
	bool same;

	if (h->ranges == NULL)
		return;
	/* the usual case: the folder has exactly the messages of the view */
	same = f->cur->count == h->count;
	for (unsigned int r = 0; r < h->nranges && same; r++) {
		for (uint32_t u = h->ranges[2 * r]; same; u++) {
			same = f->cur->msgs[k++].uid == u;
			if (u == h->ranges[2 * r + 1])
				break;
		}
	}
	if (same) {
		h->snap = snap_ref(f->cur);
	} else {
		s = snap_new(h->count + 1);
		for (unsigned int r = 0; r < h->nranges; r++) {
			for (uint32_t u = h->ranges[2 * r]; ; u++) {
				struct store_msg *m = &s->msgs[s->count++];

				while (j < f->cur->count && f->cur->msgs[j].uid < u)
					j++;
				if (j < f->cur->count && f->cur->msgs[j].uid == u) {
					msg_copy(m, &f->cur->msgs[j]);
				} else {
					/* gone meanwhile: the next sync reports it */
					memset(m, 0, sizeof(*m));
					m->uid = u;
					store_msg_set_strings(m, "", "", "");
				}
				if (u == h->ranges[2 * r + 1])
					break;
			}
		}
		h->snap = snap_ref(s);
	}
	x_free(&h->ranges);
	h->nranges = 0;
}

/* The folder's array and every handle's view, loaded again if asleep. */
static void
f_wake(struct store_folder_state *f)
{
	struct store_snap *s;
	bool changed;
	int rc;

	if (!f->asleep)
		return;
	/* data_version before the load: another process's commit between the
	   load and a later read would count as seen and never be loaded */
	changed = store_index_data_changed(f->acct);
	if (snap_load(f, &s, &rc) < 0) {
		log_error("event=index_wake_failed folder=%s error=\"%s\"", f->name,
		    sqlite3_errstr(rc));
		s = snap_new(16);
		f->need_reload = true;
	}
	f->cur = snap_ref(s);
	f->asleep = false;
	for (struct store_mailbox *h = f->handles; h != NULL; h = h->next_handle)
		h_wake(h);
	/* what was just loaded is current: no second load for the connection
	   that was opened again; the other folders load on their next sync */
	if (changed) {
		for (struct store_folder_state *o = f->acct->folders; o != NULL; o = o->next)
			if (o != f)
				o->need_reload = true;
	}
}

static void
box_wake(const struct store_mailbox *box)
{
	if (box->f->asleep)
		f_wake(box->f);
}

/* --- handles --------------------------------------------------------------------- */

int
store_mailbox_open(struct store_account *acct, const char *name,
    bool readonly, struct store_mailbox **box_r, char **error_r)
{
	struct store_mailbox *box;
	char *dir = store_folder_path(acct, name), *cur;
	struct stat st;

	*error_r = NULL;
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
	box->readonly = readonly;
	box->f = f_get(acct, name, dir);
	box->next_handle = box->f->handles;
	box->f->handles = box;
	if (f_refresh(box->f, readonly, error_r) < 0) {
		store_mailbox_close(&box);
		return -1;
	}
	box->snap = snap_ref(box->f->cur);
	box->count = box->f->cur->count;
	box->seen_modseq = box->f->highestmodseq;
	*box_r = box;
	return 0;
}

int
store_mailbox_open_target(struct store_account *acct, const char *name,
    struct store_mailbox **box_r, char **error_r)
{
	struct store_mailbox *box;
	struct store_folder_state *f;
	char *dir = store_folder_path(acct, name), *cur;
	struct stat st;
	bool found;
	int rc;

	*error_r = NULL;
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
	f = f_get(acct, name, dir);
	if (!f->loaded) {
		/* a folder seen for the first time gets its row, its
		   UIDVALIDITY and its UIDs the usual way */
		if (row_reload(f, &found, &rc) < 0 || !found) {
			f_put(&f);
			return store_mailbox_open(acct, name, false, box_r, error_r);
		}
		if (!f->kw_loaded) {
			kw_load(f);
			f->kw_loaded = true;
		}
	}
	box = xcalloc(1, sizeof(*box));
	box->acct = acct;
	box->f = f;
	box->next_handle = f->handles;
	f->handles = box;
	if (f->cur != NULL) {
		box->snap = snap_ref(f->cur);
		box->count = f->cur->count;
	}
	box->seen_modseq = f->highestmodseq;
	*box_r = box;
	return 0;
}

void
store_mailbox_close(struct store_mailbox **boxp)
{
	struct store_mailbox *box = *boxp, **pp;

	if (box == NULL)
		return;
	for (pp = &box->f->handles; *pp != NULL; pp = &(*pp)->next_handle) {
		if (*pp == box) {
			*pp = box->next_handle;
			break;
		}
	}
	snap_unref(&box->snap);
	free(box->ranges);
	f_put(&box->f);
	free(box);
	*boxp = NULL;
}

/* What changed between the handle's view and the folder, and catch up. */
static void
catch_up(struct store_mailbox *box, struct store_sync_changes *c)
{
	struct store_folder_state *f = box->f;
	const struct store_snap *old = box->snap, *new = f->cur;
	unsigned int i = 0, j = 0, nold = box->count, nnew = new->count;

	if (c != NULL)
		memset(c, 0, sizeof(*c));
	if (old == new && nold == nnew && box->seen_modseq == f->highestmodseq)
		return;
	if (c != NULL) {
		c->expunged = xcalloc(nold + 1, sizeof(uint32_t));
		c->expunged_pos = xcalloc(nold + 1, sizeof(unsigned int));
		c->changed = xcalloc(nnew + 1, sizeof(uint32_t));
		while (i < nold || j < nnew) {
			if (j == nnew || (i < nold && old->msgs[i].uid < new->msgs[j].uid)) {
				c->expunged_pos[c->nexpunged] = i;
				c->expunged[c->nexpunged++] = old->msgs[i++].uid;
			} else if (i == nold || new->msgs[j].uid < old->msgs[i].uid) {
				c->nnew++;
				j++;
			} else {
				if (new->msgs[j].modseq > box->seen_modseq)
					c->changed[c->nchanged++] = new->msgs[j].uid;
				i++;
				j++;
			}
		}
	}
	if (box->snap != f->cur) {
		snap_unref(&box->snap);
		box->snap = snap_ref(f->cur);
	}
	box->count = f->cur->count;
	box->seen_modseq = f->highestmodseq;
}

int
store_mailbox_sync(struct store_mailbox *box,
    struct store_sync_changes *changes_r, char **error_r)
{
	if (changes_r != NULL)
		memset(changes_r, 0, sizeof(*changes_r));
	box_wake(box);
	if (f_refresh(box->f, box->readonly, error_r) < 0)
		return -1;
	catch_up(box, changes_r);
	return 0;
}

void
store_sync_changes_free(struct store_sync_changes *c)
{
	x_free(&c->expunged);
	x_free(&c->expunged_pos);
	x_free(&c->changed);
	c->nexpunged = c->nchanged = c->nnew = 0;
}

bool
store_mailbox_changed(struct store_mailbox *box)
{
	struct store_folder_state *f = box->f;

	box_wake(box);
	if (box->acct->shared)
		store_watch_read();
	if (!f->loaded || f->need_rescan || f->need_new || f->need_reload ||
	    f->nforeign > 0)
		return true;
	if (f->wd_cur < 0 && stamps_changed(f))
		return true;
	if (store_index_data_changed(f->acct)) {
		for (struct store_folder_state *o = f->acct->folders; o != NULL; o = o->next)
			o->need_reload = true;
		f->need_reload = true;
		return true;
	}
	return box->snap != f->cur || box->count != f->cur->count ||
	    box->seen_modseq != f->highestmodseq;
}

void
store_mailbox_set_notify(struct store_mailbox *box, void (*fn)(void *ctx),
    void *ctx)
{
	box->notify = fn;
	box->notify_ctx = ctx;
}

bool
store_mailbox_watched(const struct store_mailbox *box)
{
	return box->f->wd_cur >= 0 && box->f->wd_new >= 0;
}

const char *
store_mailbox_name(const struct store_mailbox *box)
{
	return box->f->name;
}

uint32_t
store_mailbox_uidvalidity(const struct store_mailbox *box)
{
	return box->f->uidvalidity;
}

uint32_t
store_mailbox_uidnext(const struct store_mailbox *box)
{
	return box->f->uidnext;
}

uint64_t
store_mailbox_highestmodseq(const struct store_mailbox *box)
{
	return box->f->highestmodseq;
}

const struct store_msg *
store_mailbox_msgs(const struct store_mailbox *box, unsigned int *count_r)
{
	box_wake(box);
	*count_r = box->count;
	return box->snap != NULL ? box->snap->msgs : NULL;
}

int
store_mailbox_find_uid(const struct store_mailbox *box, uint32_t uid)
{
	box_wake(box);
	return box->snap != NULL ? snap_find(box->snap, box->count, uid) : -1;
}

char *
store_msg_full_path(const struct store_mailbox *box, const struct store_msg *msg)
{
	const struct store_snap *cur;
	int i;

	box_wake(box);
	cur = box->f->cur;
	/* the handle's copy may predate a rename by another session */
	if (cur != box->snap && (i = snap_find(cur, cur->count, msg->uid)) >= 0)
		msg = &cur->msgs[i];
	return xasprintf("%s/%s", box->f->dir, msg->path);
}

/* --- \Recent ----------------------------------------------------------------------- */

/* the first UID not yet claimed as recent; kept in meta under the folder's
   GUID (a folder id may be used again after a delete) */
static int
recent_load(struct store_folder_state *f, int *rc_r)
{
	sqlite3_stmt *st;
	unsigned long long v = 1;

	*rc_r = SQLITE_OK;
	if (f->recent_loaded)
		return 0;
	st = store_stmt(f->acct, ST_RECENT_GET, rc_r);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, f->id);
	*rc_r = sqlite3_step(st);
	if (*rc_r == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);

		if (t == NULL || str_to_ullong(t, &v) < 0 || v > UINT32_MAX)
			v = 1;
	} else if (*rc_r != SQLITE_DONE) {
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	*rc_r = SQLITE_OK;
	f->recent_first = (uint32_t)v;
	f->recent_loaded = true;
	return 0;
}

/* Inside a write transaction: the mark as f holds it. */
static int
recent_store(struct store_folder_state *f, int *rc_r)
{
	sqlite3_stmt *st = store_stmt(f->acct, ST_RECENT_SET, rc_r);

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, f->id);
	sqlite3_bind_int64(st, 2, f->recent_first);
	*rc_r = sqlite3_step(st);
	sqlite3_reset(st);
	if (*rc_r != SQLITE_DONE)
		return -1;
	*rc_r = SQLITE_OK;
	return 0;
}

/*
 * Moves the mark up to next in one write transaction (or in the batch
 * open on the account), reading it afresh inside: another process's
 * session may have claimed some of these messages since this process
 * last read it. *first_r: the mark as it was, the first UID that is this
 * session's.
 */
static int
recent_claim(struct store_folder_state *f, uint32_t next, uint32_t *first_r,
    int *rc_r)
{
	struct store_account *acct = f->acct;
	bool own_tx = acct->batch == 0;

	if (own_tx && store_tx(acct, ST_BEGIN, rc_r) < 0)
		return -1;
	f->recent_loaded = false;
	if (recent_load(f, rc_r) < 0)
		goto fail;
	*first_r = f->recent_first;
	if (next > f->recent_first) {
		f->recent_first = next;
		if (recent_store(f, rc_r) < 0)
			goto fail;
	}
	if (own_tx && store_tx(acct, ST_COMMIT, rc_r) < 0)
		goto fail;
	return 0;
fail:
	/* read it again next time: what the index holds is the truth */
	f->recent_loaded = false;
	if (own_tx)
		rollback(acct);
	else
		acct->batch_failed = true;
	return -1;
}

int
store_mailbox_recent(struct store_mailbox *box, bool claim, uint32_t *first_r,
    char **error_r)
{
	struct store_folder_state *f = box->f;
	uint32_t next;
	int rc;

	box_wake(box);
	*error_r = NULL;
	if (recent_load(f, &rc) < 0)
		return store_db_error(box->acct, rc, "recent", error_r);
	*first_r = f->recent_first;
	/* only what this session has in its view: mail that arrived since
	   its last sync stays recent for whoever syncs it first */
	next = box->count > 0 ? box->snap->msgs[box->count - 1].uid + 1 : 1;
	if (!claim || box->readonly || next <= f->recent_first)
		return 0;
	if (recent_claim(f, next, first_r, &rc) < 0)
		return store_db_error(box->acct, rc, "recent", error_r);
	return 0;
}

/* --- changes ----------------------------------------------------------------------- */

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
 * A message as the index has it now (another process may have changed its
 * flags and renamed its file). 1 = there, 0 = expunged meanwhile, -1 =
 * database error. Inside a transaction.
 */
static int
row_refresh(struct store_folder_state *f, uint32_t uid, struct store_msg *m,
    int *rc_r)
{
	sqlite3_stmt *st = store_stmt(f->acct, ST_MSG_BY_UID, rc_r);
	int ret;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, f->id);
	sqlite3_bind_int64(st, 2, uid);
	*rc_r = sqlite3_step(st);
	if (*rc_r == SQLITE_ROW) {
		const char *path = (const char *)sqlite3_column_text(st, 0);
		const char *kw = (const char *)sqlite3_column_text(st, 2);

		m->uid = uid;
		m->flags = (unsigned int)sqlite3_column_int(st, 1);
		m->modseq = (uint64_t)sqlite3_column_int64(st, 3);
		m->path = xstrdup(path != NULL ? path : "");
		m->keywords = xstrdup(kw != NULL ? kw : "");
		ret = 1;
	} else {
		ret = *rc_r == SQLITE_DONE ? 0 : -1;
	}
	sqlite3_reset(st);
	if (ret >= 0)
		*rc_r = SQLITE_OK;
	return ret;
}

/* Puts flags, keywords, path and modseq into the message of uid in s. */
static void
snap_set(struct store_snap *s, unsigned int count, uint32_t uid,
    unsigned int flags, const char *kw, const char *path, uint64_t modseq)
{
	int i = snap_find(s, count, uid);
	struct store_msg *m;
	char *base;

	if (i < 0)
		return;
	m = &s->msgs[i];
	m->flags = flags;
	m->modseq = modseq;
	base = xstrdup(m->base);
	store_msg_set_strings(m, base, path, kw);
	free(base);
}

/*
 * The file of base under whatever name it has now, in cur/ or new/ (a
 * Maildir client outside tegami may have renamed it): its path relative
 * to the folder (malloc'd), or NULL when there is none.
 */
static char *
find_by_base(struct store_folder_state *f, const char *base)
{
	static const char *const subs[] = { "cur", "new" };
	size_t blen = strlen(base);
	char *found = NULL;

	for (size_t i = 0; i < 2 && found == NULL; i++) {
		char *dirpath = xasprintf("%s/%s", f->dir, subs[i]);
		DIR *d = file_opendir(dirpath);
		struct dirent *de;

		free(dirpath);
		if (d == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			if (strncmp(de->d_name, base, blen) == 0 &&
			    (de->d_name[blen] == ':' || de->d_name[blen] == '\0')) {
				found = xasprintf("%s/%s", subs[i], de->d_name);
				break;
			}
		}
		closedir(d);
	}
	return found;
}

char *
store_msg_relocated_path(struct store_mailbox *box, const struct store_msg *msg)
{
	char *rel, *full;

	box_wake(box);
	if ((rel = find_by_base(box->f, msg->base)) == NULL)
		return NULL;
	full = xasprintf("%s/%s", box->f->dir, rel);
	free(rel);
	return full;
}

/* --- file names after flag changes ------------------------------------------- */

/*
 * A flag change writes the index only. The file takes the name that
 * carries the flags (":2,<letters>", what Dovecot and every Maildir
 * reader go by) in store_names_flush(), about a second later, for all
 * of a folder's changes in one transaction: a message marked \Deleted
 * and expunged meanwhile is never renamed, and a STORE on thousands of
 * messages does not rename them all while every session of the event
 * loop waits. Until then the index has the flags and the file its older
 * name; a scan compares names with the index's and finds nothing to do.
 * Names a process left behind (it stopped first, or a flush failed) are
 * found by the next full scan of the folder (lag_scan()).
 */
static void
lag_add(struct store_folder_state *f, uint32_t uid)
{
	if (f->nlag == f->lag_cap) {
		f->lag_cap = f->lag_cap == 0 ? 16 : 2 * f->lag_cap;
		f->lag = xreallocarray(f->lag, f->lag_cap, sizeof(*f->lag));
	}
	f->lag[f->nlag++] = uid;
}

static void
lag_clear(struct store_folder_state *f)
{
	x_free(&f->lag);
	f->nlag = f->lag_cap = 0;
}

static unsigned int
kw_count(const char *keywords)
{
	unsigned int n = 0;

	for (const char *p = keywords; *p != '\0'; p++) {
		if (*p != ' ' && (p == keywords || p[-1] == ' '))
			n++;
	}
	return n;
}

/* Queues the messages of f whose names do not say what the index says. */
static void
lag_scan(struct store_folder_state *f)
{
	if (f->cur == NULL)
		return;
	for (unsigned int i = 0; i < f->cur->count; i++) {
		const struct store_msg *m = &f->cur->msgs[i];
		const char *name = strrchr(m->path, '/');
		char kwl[STORE_MAX_KEYWORDS + 1], letters[8];
		unsigned int flags;
		size_t blen;

		parse_filename(name != NULL ? name + 1 : m->path, &blen, &flags, kwl);
		store_flags_to_letters(m->flags, letters);
		if (flags != store_flags_from_letters(letters) ||
		    strlen(kwl) != kw_count(m->keywords))
			lag_add(f, m->uid);
	}
}

static void
snap_set_path(struct store_snap *s, uint32_t uid, const char *path)
{
	struct store_msg *m;
	char *base, *kw;
	int i;

	if (s == NULL || (i = snap_find(s, s->count, uid)) < 0)
		return;
	m = &s->msgs[i];
	base = xstrdup(m->base);
	kw = xstrdup(m->keywords);
	store_msg_set_strings(m, base, path, kw);
	free(base);
	free(kw);
}

/*
 * Gives the file of uid the name of its flags now, inside the flush's
 * transaction. -1: a database error (the transaction is rolled back).
 * A file not under the index's name was renamed by a Maildir client
 * outside tegami (it is looked for by its base name) or removed (the
 * next scan reports the expunge).
 */
static int
lag_rename(struct store_folder_state *f, uint32_t uid, int *rc_r)
{
	struct store_msg now = { 0 };
	char kwl[STORE_MAX_KEYWORDS + 1], okwl[STORE_MAX_KEYWORDS + 1], sub[4];
	char *err = NULL, *base, *path, *from, *to, *elsewhere = NULL;
	const char *oldname;
	unsigned int oflags;
	size_t blen;
	int r, e = 0;

	if ((r = row_refresh(f, uid, &now, rc_r)) <= 0)
		return r;		/* 0: expunged meanwhile */
	if (kw_to_letters(f, now.keywords, kwl, &err) < 0) {
		log_warn("event=flags_rename_failed folder=%s uid=%u error=\"%s\"",
		    f->name, uid, err);
		free(err);
		free(now.path);
		free(now.keywords);
		return 0;
	}
	split_path(now.path, sub, &oldname);
	parse_filename(oldname, &blen, &oflags, okwl);
	base = xstrndup(oldname, blen);
	path = make_path(now.flags, kwl, base);
	from = xasprintf("%s/%s", f->dir, now.path);
	to = xasprintf("%s/%s", f->dir, path);
	if (strcmp(from, to) == 0)
		goto out;
	store_watch_own(f, 'F', sub, oldname);
	store_watch_own(f, 'T', "cur", path + 4);
	if (rename(from, to) < 0)
		e = errno;
	if (e == ENOENT) {
		/* not under the index's name: renamed by a Maildir client
		   outside tegami (its flags give way to the index's, as a
		   STORE's would), or deleted (the next sync reports it) */
		store_watch_own(f, 'U', sub, oldname);
		f->need_rescan = true;
		elsewhere = find_by_base(f, base);
		e = elsewhere == NULL ? ENOENT : 0;
		if (elsewhere != NULL && strcmp(elsewhere, path) == 0) {
			/* it has the name already */
			store_watch_own(f, 'U', "cur", path + 4);
		} else if (elsewhere != NULL) {
			split_path(elsewhere, sub, &oldname);
			free(from);
			from = xasprintf("%s/%s", f->dir, elsewhere);
			store_watch_own(f, 'F', sub, oldname);
			if (rename(from, to) < 0) {
				e = errno;
				store_watch_own(f, 'U', sub, oldname);
			}
		}
	}
	if (e != 0) {
		store_watch_own(f, 'U', "cur", path + 4);
		f->need_rescan = true;
		if (e != ENOENT)
			log_warn("event=flags_rename_failed path=%s error=\"%s\"",
			    from, strerror(e));
	} else if (msg_set_path(f, uid, path, rc_r) < 0) {
		f->need_rescan = true;	/* the file has its new name */
		r = -1;
	} else {
		snap_set_path(f->cur, uid, path);
		for (struct store_mailbox *h = f->handles; h != NULL;
		    h = h->next_handle) {
			if (h->snap != f->cur)
				snap_set_path(h->snap, uid, path);
		}
	}
out:
	free(base);
	free(path);
	free(from);
	free(to);
	free(elsewhere);
	free(now.path);
	free(now.keywords);
	return r < 0 ? -1 : 0;
}

static int
uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Renames the files of f whose names lag behind their flags. */
static int
lag_flush(struct store_folder_state *f)
{
	uint32_t *uids = f->lag;
	unsigned int n = f->nlag;
	bool ok = true;
	int rc = SQLITE_OK;

	if (n == 0 || f->acct->db == NULL || f->acct->batch > 0)
		return 0;
	f->lag = NULL;
	f->nlag = f->lag_cap = 0;
	qsort(uids, n, sizeof(*uids), uid_cmp);
	if (f_begin(f, &rc) < 0) {
		ok = false;
	} else {
		for (unsigned int i = 0; i < n && ok; i++) {
			if (i == 0 || uids[i] != uids[i - 1])
				ok = lag_rename(f, uids[i], &rc) == 0;
		}
		if (f_end(f, ok, &rc) < 0)
			ok = false;
	}
	free(uids);
	if (ok)
		return 0;
	/* the scan after this finds the names still behind (lag_scan) */
	log_warn("event=flags_rename_failed folder=%s error=\"%s\"", f->name,
	    sqlite3_errstr(rc));
	f->need_rescan = true;
	return -1;
}

void
store_folders_flush_names(struct store_account *acct)
{
	for (struct store_folder_state *f = acct->folders; f != NULL; f = f->next)
		(void)lag_flush(f);
}

int
store_msg_change_flags(struct store_mailbox *box, unsigned int i, char op,
    unsigned int flags, const char *keywords, char **error_r)
{
	struct store_folder_state *f = box->f;
	struct store_msg now = { 0 };
	char kwl[STORE_MAX_KEYWORDS + 1];
	char *kw, *nk;
	unsigned int nf;
	uint32_t uid;
	int rc, r, ret = -1;

	box_wake(box);
	*error_r = NULL;
	if (readonly_error(box, error_r) < 0)
		return -1;
	if (i >= box->count)
		panic("store_msg_change_flags: index %u of %u", i, box->count);
	if (op != '+' && op != '-' && op != '=')
		panic("store_msg_change_flags: op %c", op);
	uid = box->snap->msgs[i].uid;
	if (f_begin(f, &rc) < 0)
		return store_db_error(box->acct, rc, "flags", error_r);
	/* read-modify-write on the current row, so that two sessions'
	   +FLAGS/-FLAGS on one message both take effect */
	if ((r = row_refresh(f, uid, &now, &rc)) <= 0) {
		(void)f_end(f, r == 0, NULL);
		return r == 0 ? 1 : store_db_error(box->acct, rc, "flags", error_r);
	}
	nf = op == '+' ? now.flags | flags : op == '-' ? now.flags & ~flags :
	    (now.flags & STORE_FLAG_PASSED) | flags;
	if (keywords == NULL)
		nk = xstrdup(now.keywords);
	else if (op == '=')
		nk = xstrdup(keywords);
	else
		nk = kw_apply(now.keywords, keywords, op);
	kw = kw_normalize(nk);
	free(nk);
	if (nf == now.flags && strcmp(kw, now.keywords) == 0) {
		(void)f_end(f, true, NULL);
		/* our copy may have been behind the index */
		snap_set(box->snap, box->count, uid, now.flags, now.keywords,
		    now.path, now.modseq);
		ret = 0;
		goto out;
	}
	if (kw_to_letters(f, kw, kwl, error_r) < 0) {
		(void)f_end(f, false, NULL);
		goto out;
	}
	/* the file keeps its name for now: store_names_flush() renames it,
	   unless an expunge or another change comes first */
	r = msg_update(f, uid, now.path, nf, kw, ++f->highestmodseq, &rc);
	if (f_end(f, r == 0, &rc) < 0) {
		store_db_error(box->acct, rc, "flags", error_r);
		goto out;
	}
	snap_set(f->cur, f->cur->count, uid, nf, kw, now.path, f->highestmodseq);
	if (box->snap != f->cur)
		snap_set(box->snap, box->count, uid, nf, kw, now.path,
		    f->highestmodseq);
	lag_add(f, uid);
	/* nobody calls store_names_flush(): at once */
	if (!store_names_deferred(f->acct))
		(void)lag_flush(f);
	/* the session reports its own change: not again at its next sync,
	   unless others' changes came in between */
	if (box->seen_modseq + 1 == f->highestmodseq)
		box->seen_modseq = f->highestmodseq;
	store_folder_state_notify(f, box);
	ret = 0;
out:
	free(now.path);
	free(now.keywords);
	free(kw);
	return ret;
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

/*
 * Takes an expunged message out of the folder: a rename to a dot name in
 * the same directory (which every Maildir reader skips), and the unlink
 * later, off the event loop (store_trash_take()): freeing a file's blocks
 * can wait on the disk for milliseconds. Where nobody takes the trash,
 * or too much of it waits, it is unlinked at once.
 */
#define TRASH_MAX 4096

static int
trash(struct store_folder_state *f, const char *sub, const char *name,
    const char *full)
{
	struct store_account *acct = f->acct;
	char *to;

	if (!acct->shared || acct->ntrash >= TRASH_MAX)
		return unlink(full);
	to = xasprintf("%s/%s/" TRASH_PREFIX "%s", f->dir, sub, name);
	if (rename(full, to) < 0) {
		free(to);
		return -1;
	}
	store_trash_adopt(acct, to);
	return 0;
}

void
store_trash_adopt(struct store_account *acct, char *path)
{
	if (!acct->shared || acct->ntrash >= TRASH_MAX) {
		(void)unlink(path);
		free(path);
		return;
	}
	acct->trash = xreallocarray(acct->trash, acct->ntrash + 1,
	    sizeof(*acct->trash));
	acct->trash[acct->ntrash++] = path;
}

void
store_trash_flush(struct store_account *acct)
{
	for (unsigned int i = 0; i < acct->ntrash; i++) {
		(void)unlink(acct->trash[i]);
		free(acct->trash[i]);
	}
	x_free(&acct->trash);
	acct->ntrash = 0;
}

int
store_mailbox_expunge(struct store_mailbox *box, const uint32_t *uids,
    unsigned int count, char **error_r)
{
	struct store_folder_state *f = box->f;
	uint32_t *done;
	unsigned int ndone = 0;
	int rc;

	box_wake(box);
	*error_r = NULL;
	if (readonly_error(box, error_r) < 0)
		return -1;
	if (f_begin(f, &rc) < 0)
		return store_db_error(box->acct, rc, "expunge", error_r);
	done = xcalloc(count + 1, sizeof(*done));
	for (unsigned int k = 0; k < count; k++) {
		int i = snap_find(f->cur, f->cur->count, uids[k]);
		struct store_msg now = { 0 };
		const char *name;
		char sub[4], *full;
		int r;

		if (i < 0)
			continue;
		/* the file's name as the index has it now: another process
		   may have renamed it (flags) since this one last looked, and
		   the file under the old name is not there to move away */
		r = row_refresh(f, uids[k], &now, &rc);
		if (r < 0)
			goto fail;
		if (r == 0)
			continue;	/* another process expunged it */
		split_path(now.path, sub, &name);
		full = xasprintf("%s/%s", f->dir, now.path);
		store_watch_own(f, 'F', sub, name);
		r = trash(f, sub, name, full) < 0 ? errno : 0;
		if (r != 0 && r != ENOENT) {
			*error_r = xasprintf("Cannot expunge %s: %s", full,
			    strerror(r));
			store_watch_own(f, 'U', sub, name);
		}
		free(full);
		free(now.path);
		free(now.keywords);
		if (*error_r != NULL)
			goto fail;
		if (msg_delete(f, uids[k], ++f->highestmodseq, &rc) < 0)
			goto fail;
		done[ndone++] = uids[k];
	}
	f->uidlist_stale += ndone;
	if (tombstones_prune(f, &rc) < 0)
		goto fail;
	if (uidlist_due(f, f->cur->count - ndone) && uidlist_write(f, error_r) < 0)
		goto fail;
	if (f_end(f, true, &rc) < 0) {
		free(done);
		f->need_rescan = true;	/* the files are gone */
		return store_db_error(box->acct, rc, "expunge", error_r);
	}
	cur_remove(f, done, ndone);
	free(done);
	if (ndone > 0)
		store_folder_state_notify(f, box);
	return 0;
fail:
	(void)f_end(f, false, NULL);
	free(done);
	f->need_rescan = true;	/* some files may be gone */
	if (*error_r == NULL)
		store_db_error(box->acct, rc, "expunge", error_r);
	return -1;
}

int
store_mailbox_expunged_since(struct store_mailbox *box, uint64_t modseq,
    uint32_t **uids_r, unsigned int *count_r, bool *complete_r,
    char **error_r)
{
	struct store_folder_state *f = box->f;
	sqlite3_stmt *st;
	uint32_t *uids = NULL;
	unsigned int n = 0, cap = 0;
	int rc;

	*uids_r = NULL;
	*count_r = 0;
	*complete_r = modseq >= f->vanished_from;
	st = store_stmt(box->acct, ST_TOMB_SINCE, &rc);
	if (st == NULL)
		return store_db_error(box->acct, rc, "vanished", error_r);
	sqlite3_bind_int64(st, 1, f->id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)modseq);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			uids = xreallocarray(uids, cap, sizeof(*uids));
		}
		uids[n++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(uids);
		return store_db_error(box->acct, rc, "vanished", error_r);
	}
	*uids_r = uids;
	*count_r = n;
	return 0;
}

/* A UIDL RFC 1939 allows: 1..70 characters 0x21..0x7E. */
static bool
uidl_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 70)
		return false;
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
			return false;
	}
	return true;
}

int
store_mailbox_pop3_uidls(struct store_mailbox *box, char ***uidls_r,
    char **error_r)
{
	struct store_folder_state *f = box->f;
	const struct store_msg *msgs;
	sqlite3_stmt *st;
	unsigned int n;
	char **u;
	int rc;

	*error_r = NULL;
	msgs = store_mailbox_msgs(box, &n);
	u = xcalloc(n + 1, sizeof(*u));
	/* Dovecot's default pop3_uidl_format %08Xu%08Xv, for the folders it
	   wrote the uidlist of */
	for (unsigned int i = 0; i < n && f->uidl_scheme == 'd'; i++)
		u[i] = xasprintf("%08x%08x", msgs[i].uid, f->uidvalidity);
	/* a UIDL Dovecot kept per message (its "P" field) wins: that is
	   what Dovecot itself answered */
	st = store_stmt(box->acct, ST_POP3_UIDLS, &rc);
	if (st == NULL) {
		for (unsigned int i = 0; i < n; i++)
			free(u[i]);
		free(u);
		return store_db_error(box->acct, rc, "uidl", error_r);
	}
	sqlite3_bind_int64(st, 1, f->id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 1);
		int i = store_mailbox_find_uid(box,
		    (uint32_t)sqlite3_column_int64(st, 0));

		if (i >= 0 && v != NULL && uidl_ok(v)) {
			free(u[i]);
			u[i] = xstrdup(v);
		}
	}
	sqlite3_reset(st);
	*uidls_r = u;
	return 0;
}

/* --- append ---------------------------------------------------------------------- */

/* One message of an append on its way in. */
struct append_file {
	char *data;		/* LF line ends */
	size_t len;
	uint64_t vsize;
	unsigned int flags;
	char *kw;
	time_t date;
	char *base, *tmp, *path, *full;
	bool written, in_cur;
};

/* An append of one or more messages (store_append_begin). */
struct store_append_op {
	struct store_mailbox *box;
	struct append_file *files;
	unsigned int count;
	char *curdir;
	int err;		/* errno of the failed step, 0 = written */
	const char *step;
	const char *failed;	/* the file it failed on */
};

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
 * LF line ends, as SMTP delivery and Dovecot write them.
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

static void
pending_add(struct store_folder_state *f, const char *base)
{
	f->pending = xreallocarray(f->pending, f->npending + 1, sizeof(*f->pending));
	f->pending[f->npending++] = xstrdup(base);
}

static void
pending_remove(struct store_folder_state *f, const char *base)
{
	for (unsigned int i = 0; i < f->npending; i++) {
		if (strcmp(f->pending[i], base) == 0) {
			free(f->pending[i]);
			f->pending[i] = f->pending[--f->npending];
			return;
		}
	}
}

static void
append_free(struct store_append_op *op)
{
	for (unsigned int i = 0; i < op->count; i++) {
		struct append_file *a = &op->files[i];

		free(a->data);
		free(a->kw);
		free(a->base);
		free(a->tmp);
		free(a->path);
		free(a->full);
	}
	free(op->files);
	free(op->curdir);
	free(op);
}

/* The files of a failed op are no longer ours to expect. */
static void
append_disown(struct store_append_op *op)
{
	struct store_folder_state *f = op->box->f;

	for (unsigned int i = 0; i < op->count; i++) {
		if (op->files[i].base == NULL)
			continue;
		pending_remove(f, op->files[i].base);
		store_watch_own(f, 'U', "cur", op->files[i].path + 4);
	}
}

int
store_append_begin(struct store_mailbox *box, const struct store_append *msgs,
    unsigned int count, struct store_append_op **op_r, char **error_r)
{
	struct store_folder_state *f = box->f;
	struct store_append_op *op = xcalloc(1, sizeof(*op));

	*error_r = NULL;
	op->box = box;
	op->files = xcalloc(count + 1, sizeof(*op->files));
	op->curdir = xasprintf("%s/cur", f->dir);
	for (unsigned int i = 0; i < count; i++) {
		struct append_file *a = &op->files[i];
		char kwl[STORE_MAX_KEYWORDS + 1];

		a->data = crlf_to_lf(msgs[i].data, msgs[i].len, &a->len);
		a->vsize = mime_vsize(a->data, 0, a->len);
		a->flags = msgs[i].flags;
		a->date = msgs[i].internaldate != 0 ? msgs[i].internaldate :
		    time(NULL);
		a->kw = kw_normalize(msgs[i].keywords);
		op->count = i + 1;
		if (kw_to_letters(f, a->kw, kwl, error_r) < 0) {
			append_disown(op);
			append_free(op);
			return -1;
		}
		a->base = make_base(a->len, a->vsize);
		a->tmp = xasprintf("%s/tmp/%s", f->dir, a->base);
		a->path = make_path(a->flags, kwl, a->base);
		a->full = xasprintf("%s/%s", f->dir, a->path);
		/* the file shows up in cur/ before it has a row: neither
		   inotify nor a scan must take it for a foreign delivery */
		pending_add(f, a->base);
		store_watch_own(f, 'T', "cur", a->path + 4);
	}
	*op_r = op;
	return 0;
}

static void
append_undo(struct store_append_op *op)
{
	for (unsigned int i = 0; i < op->count; i++) {
		struct append_file *a = &op->files[i];

		if (a->in_cur)
			(void)unlink(a->full);
		else if (a->written)
			(void)unlink(a->tmp);
		a->in_cur = a->written = false;
	}
}

void
store_append_write(struct store_append_op *op)
{
	op->err = 0;
	/* every file written and fsync'd in tmp/, where nobody looks, then
	   all into cur/: another session sees all of them or none */
	for (unsigned int i = 0; i < op->count; i++) {
		struct append_file *a = &op->files[i];

		if (write_file(a->tmp, a->data, a->len, a->date) < 0) {
			op->err = errno;
			op->step = "write";
			op->failed = a->tmp;
			append_undo(op);
			return;
		}
		a->written = true;
	}
	for (unsigned int i = 0; i < op->count; i++) {
		struct append_file *a = &op->files[i];

		if (rename(a->tmp, a->full) < 0) {
			op->err = errno;
			op->step = "rename";
			op->failed = a->full;
			append_undo(op);
			return;
		}
		a->in_cur = true;
	}
	/* the renames are durable before the client hears OK */
	if (fsync_dir(op->curdir) < 0) {
		op->err = errno;
		op->step = "fsync";
		op->failed = op->curdir;
		append_undo(op);
	}
}

int
store_append_finish(struct store_append_op **opp, uint32_t *uids_r,
    char **error_r)
{
	struct store_append_op *op = *opp;
	struct store_folder_state *f = op->box->f;
	struct store_msg *ms = NULL;
	uint32_t *newuids = NULL;
	char **bases = NULL;
	unsigned int nnew = 0;
	int rc = SQLITE_OK;

	*opp = NULL;
	*error_r = NULL;
	box_wake(op->box);
	if (op->err != 0) {
		append_disown(op);
		*error_r = xasprintf("Cannot store %s (%s): %s", op->failed,
		    op->step, strerror(op->err));
		append_free(op);
		return -1;
	}
	for (unsigned int i = 0; i < op->count; i++)
		pending_remove(f, op->files[i].base);
	if (f_begin(f, &rc) < 0) {
		/* the files are in cur/: the next sync gives them UIDs */
		f->need_rescan = true;
		store_db_error(f->acct, rc, "append", error_r);
		append_free(op);
		return -1;
	}
	ms = xcalloc(op->count + 1, sizeof(*ms));
	newuids = xcalloc(op->count + 1, sizeof(*newuids));
	bases = xcalloc(op->count + 1, sizeof(*bases));
	for (unsigned int i = 0; i < op->count; i++) {
		struct append_file *a = &op->files[i];
		struct store_msg *m = &ms[i];
		uint32_t uid;
		int r;

		/* a full scan may have found the file first */
		r = msg_by_base(f, a->base, &uid, NULL, &rc);
		if (r < 0)
			goto fail;
		m->flags = a->flags;
		m->keywords = a->kw;
		m->internaldate = a->date;
		m->savedate = time(NULL);
		m->size = a->vsize;
		m->base = a->base;
		m->path = a->path;
		if (r == 0) {
			m->uid = f->uidnext++;
			m->modseq = ++f->highestmodseq;
			if (msg_insert(f, m, NULL, &rc) < 0)
				goto fail;
			newuids[nnew] = m->uid;
			bases[nnew++] = a->base;
		} else {
			m->uid = uid;
			m->modseq = 0;	/* not ours to push */
		}
		uids_r[i] = m->uid;
	}
	if (nnew > 0 && uidlist_append(f, newuids, bases, nnew, error_r) < 0)
		goto fail;
	if (f_end(f, true, &rc) < 0) {
		f->need_rescan = true;
		store_db_error(f->acct, rc, "append", error_r);
		goto out;
	}
	/* a folder nobody views has no array yet: its first sync loads it */
	for (unsigned int i = 0; i < op->count; i++) {
		if (ms[i].modseq != 0 && f->cur != NULL)
			snap_push(f->cur, &ms[i]);
	}
	store_folder_state_notify(f, op->box);
	free(ms);
	free(newuids);
	free(bases);
	append_free(op);
	return 0;
fail:
	(void)f_end(f, false, NULL);
	f->need_rescan = true;
	if (*error_r == NULL)
		store_db_error(f->acct, rc, "append", error_r);
out:
	free(ms);
	free(newuids);
	free(bases);
	append_free(op);
	return -1;
}

int
store_mailbox_append_many(struct store_mailbox *box,
    const struct store_append *msgs, unsigned int count, uint32_t *uids_r,
    char **error_r)
{
	struct store_append_op *op;

	if (readonly_error(box, error_r) < 0)
		return -1;
	if (store_append_begin(box, msgs, count, &op, error_r) < 0)
		return -1;
	store_append_write(op);
	return store_append_finish(&op, uids_r, error_r);
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
	struct store_folder_state *df = dst->f;
	char *cur = xasprintf("%s/cur", df->dir);
	struct store_msg *made = xcalloc(count + 1, sizeof(*made));
	char **bases = xcalloc(count + 1, sizeof(*bases));
	uint32_t *uids = xcalloc(count + 1, sizeof(*uids));
	unsigned int nmade = 0;
	int rc, ret = -1;

	*error_r = NULL;
	box_wake(src);
	box_wake(dst);
	if (readonly_error(dst, error_r) < 0)
		goto out;
	if (f_begin(df, &rc) < 0) {
		store_db_error(dst->acct, rc, "copy", error_r);
		goto out;
	}
	for (unsigned int k = 0; k < count; k++) {
		const struct store_msg *m;
		struct store_msg *c = &made[nmade];
		char kwl[STORE_MAX_KEYWORDS + 1];
		char *from, *to;
		long long s, w;
		int r;

		if (indexes[k] >= src->count)
			panic("store_mailbox_copy: index %u of %u", indexes[k],
			    src->count);
		m = &src->snap->msgs[indexes[k]];
		if (kw_to_letters(df, m->keywords, kwl, error_r) < 0)
			goto fail;
		s = base_field(m->base, 'S');
		w = base_field(m->base, 'W');
		from = store_msg_full_path(src, m);
		if (s < 0) {
			struct stat st;

			s = stat(from, &st) == 0 ? (long long)st.st_size : 0;
		}
		c->base = make_base((uint64_t)s, w >= 0 ? (uint64_t)w : m->size);
		c->path = make_path(m->flags, kwl, c->base);
		c->keywords = xstrdup(m->keywords);
		c->flags = m->flags;
		c->internaldate = m->internaldate;
		c->savedate = time(NULL);	/* a copy is saved now (RFC 8514) */
		c->size = m->size;
		to = xasprintf("%s/%s", df->dir, c->path);
		store_watch_own(df, 'T', "cur", c->path + 4);
		r = link(from, to);
		if (r < 0 && (errno == EXDEV || errno == EPERM || errno == EMLINK))
			r = copy_file(from, to, m->internaldate);
		if (r < 0) {
			*error_r = xasprintf("Cannot copy %s: %s", from,
			    errno == ENOENT ? "message expunged meanwhile" :
			    strerror(errno));
			store_watch_own(df, 'U', "cur", c->path + 4);
			free(from);
			free(to);
			free(c->base);
			free(c->path);
			free(c->keywords);
			goto fail;
		}
		free(from);
		free(to);
		nmade++;
		c->uid = df->uidnext++;
		c->modseq = ++df->highestmodseq;
		if (msg_insert(df, c, NULL, &rc) < 0) {
			store_db_error(dst->acct, rc, "copy", error_r);
			goto fail;
		}
		uids[k] = c->uid;
		bases[k] = c->base;
		dst_uids_r[k] = c->uid;
	}
	if (fsync_dir(cur) < 0) {
		*error_r = xasprintf("Cannot sync %s: %s", cur, strerror(errno));
		goto fail;
	}
	if (uidlist_append(df, uids, bases, count, error_r) < 0)
		goto fail;
	if (f_end(df, true, &rc) < 0) {
		store_db_error(dst->acct, rc, "copy", error_r);
		goto unlink_made;
	}
	for (unsigned int i = 0; i < nmade && df->cur != NULL; i++)
		snap_push(df->cur, &made[i]);
	store_folder_state_notify(df, dst);
	ret = 0;
	goto out;
fail:
	(void)f_end(df, false, NULL);
unlink_made:
	/* all or nothing: take back the links made */
	for (unsigned int i = 0; i < nmade; i++) {
		char *p = xasprintf("%s/%s", df->dir, made[i].path);

		store_watch_own(df, 'F', "cur", made[i].path + 4);
		(void)unlink(p);
		free(p);
	}
out:
	for (unsigned int i = 0; i < nmade; i++) {
		free(made[i].base);
		free(made[i].path);
		free(made[i].keywords);
	}
	free(made);
	free(bases);
	free(uids);
	free(cur);
	return ret;
}
