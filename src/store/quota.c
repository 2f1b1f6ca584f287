/*
 * store/quota: how much an account holds (store/quota.h).
 */
#include "store/mailbox-private.h"
#include "store/quota.h"

#include "lib/log.h"
#include "lib/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* One folder the index knows: its row id and what its rows add up to. */
struct indexed {
	char *name;
	int64_t id;
	uint64_t bytes, messages;
};

static void
indexed_free(struct indexed *ix, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		free(ix[i].name);
	free(ix);
}

static int
load_indexed(sqlite3 *db, struct indexed **ix_r, unsigned int *n_r)
{
	sqlite3_stmt *st = NULL;
	struct indexed *ix = NULL;
	unsigned int n = 0;
	int rc;

	rc = sqlite3_prepare_v2(db, "SELECT mb.id, mb.name, COUNT(m.uid),"
	    " COALESCE(SUM(m.size), 0) FROM mailbox mb LEFT JOIN message m"
	    " ON m.mailbox = mb.id GROUP BY mb.id", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		ix = xreallocarray(ix, n + 1, sizeof(*ix));
		ix[n].id = sqlite3_column_int64(st, 0);
		ix[n].name = xstrdup((const char *)sqlite3_column_text(st, 1));
		ix[n].messages = (uint64_t)sqlite3_column_int64(st, 2);
		ix[n].bytes = (uint64_t)sqlite3_column_int64(st, 3);
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		indexed_free(ix, n);
		return -1;
	}
	*ix_r = ix;
	*n_r = n;
	return 0;
}

/* The size of a message file that no row describes: W=, else S=, else stat. */
static uint64_t
file_size(const char *dir, const char *name)
{
	int64_t s = -1, w = -1;
	struct stat st;
	char *path;

	(void)maildir_filename_sizes(name, &s, NULL);
	(void)maildir_filename_sizes(name, NULL, &w);
	if (w >= 0)
		return (uint64_t)w;
	if (s >= 0)
		return (uint64_t)s;
	path = xasprintf("%s/%s", dir, name);
	s = stat(path, &st) == 0 ? st.st_size : 0;
	free(path);
	return (uint64_t)s;
}

/* Is base (a file name up to ":2,") a row of mailbox id? */
static bool
row_exists(sqlite3_stmt *lookup, int64_t id, const char *name)
{
	const char *colon = strstr(name, ":2,");
	size_t blen = colon != NULL ? (size_t)(colon - name) : strlen(name);
	bool found;

	sqlite3_reset(lookup);
	sqlite3_bind_int64(lookup, 1, id);
	sqlite3_bind_text(lookup, 2, name, (int)blen, SQLITE_TRANSIENT);
	found = sqlite3_step(lookup) == SQLITE_ROW;
	sqlite3_reset(lookup);
	return found;
}

/*
 * Adds the files of dir (a folder's new/ or cur/) that are not rows of
 * mailbox id (id < 0: none are) to u.
 */
static int
add_files(const char *dir, int64_t id, sqlite3_stmt *lookup,
    struct store_usage *u)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (id >= 0 && lookup != NULL && row_exists(lookup, id, e->d_name))
			continue;
		u->bytes += file_size(dir, e->d_name);
		u->messages++;
	}
	closedir(d);
	return 0;
}

static int
add_folder(const char *root, const char *dirname, const char *name,
    const struct indexed *ix, unsigned int nix, sqlite3_stmt *lookup,
    struct store_usage *u)
{
	char *folder = dirname != NULL ? xasprintf("%s/%s", root, dirname) :
	    xstrdup(root);
	char *newd = xasprintf("%s/new", folder), *curd = xasprintf("%s/cur", folder);
	const struct indexed *row = NULL;
	struct stat st;
	int r = 0;

	/* a folder is a directory with cur/ or new/ (a delivery may have
	   made new/ alone) */
	if ((stat(curd, &st) < 0 || !S_ISDIR(st.st_mode)) &&
	    (stat(newd, &st) < 0 || !S_ISDIR(st.st_mode)))
		goto out;
	for (unsigned int i = 0; i < nix && row == NULL; i++) {
		if (strcmp(ix[i].name, name) == 0)
			row = &ix[i];
	}
	if (row != NULL) {
		/* the index has it: its rows, and what was delivered since
		   (files in new/ are moved to cur/ by the next sync) */
		u->bytes += row->bytes;
		u->messages += row->messages;
		r = add_files(newd, row->id, lookup, u);
	} else {
		/* never opened over IMAP: every file counts */
		r = add_files(newd, -1, NULL, u) < 0 || add_files(curd, -1, NULL, u) < 0 ?
		    -1 : 0;
	}
out:
	free(newd);
	free(curd);
	free(folder);
	return r;
}

static int maildir_usage_open(const char *maildir, int flags,
    struct store_usage *u, char **error_r);

static int
usage_with_db(const char *root, sqlite3 *db, struct store_usage *u,
    char **error_r)
{
	struct indexed *ix = NULL;
	unsigned int nix = 0;
	sqlite3_stmt *lookup = NULL;
	DIR *d;
	struct dirent *e;
	int r = 0;

	memset(u, 0, sizeof(*u));
	if (db != NULL && (load_indexed(db, &ix, &nix) < 0 ||
	    sqlite3_prepare_v2(db, "SELECT 1 FROM message WHERE mailbox=?1"
	    " AND base=?2", -1, &lookup, NULL) != SQLITE_OK)) {
		*error_r = xasprintf("Index error (usage): %s", sqlite3_errmsg(db));
		indexed_free(ix, nix);
		return -1;
	}
	d = opendir(root);
	if (d == NULL) {
		sqlite3_finalize(lookup);
		indexed_free(ix, nix);
		if (errno == ENOENT)
			return 0;	/* no Maildir yet: nothing used */
		*error_r = xasprintf("Cannot read %s: %s", root, strerror(errno));
		return -1;
	}
	if (add_folder(root, NULL, "INBOX", ix, nix, lookup, u) < 0)
		r = -1;
	while (r == 0 && (e = readdir(d)) != NULL) {
		/* Maildir++ folders: ".Sent", ".Foo.Bar"; not "." or ".." */
		if (e->d_name[0] != '.' || e->d_name[1] == '\0' ||
		    (e->d_name[1] == '.' && e->d_name[2] == '\0'))
			continue;
		if (add_folder(root, e->d_name, e->d_name + 1, ix, nix, lookup,
		    u) < 0)
			r = -1;
	}
	closedir(d);
	sqlite3_finalize(lookup);
	indexed_free(ix, nix);
	if (r < 0)
		*error_r = xasprintf("Cannot read the folders of %s: %s", root,
		    strerror(errno));
	return r;
}

int
store_account_usage(struct store_account *acct, struct store_usage *u,
    char **error_r)
{
	return usage_with_db(acct->root, acct->db, u, error_r);
}

static int
maildir_usage_open(const char *maildir, int flags, struct store_usage *u,
    char **error_r)
{
	size_t len = strlen(maildir);
	char *root, *path;
	sqlite3 *db = NULL;
	int r;

	while (len > 1 && maildir[len - 1] == '/')
		len--;
	root = xstrndup(maildir, len);
	path = xasprintf("%s/" STORE_INDEX_FILE, root);
	/* no CREATE: an account never opened over IMAP has no index, and
	   its usage comes from the file names alone */
	if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		db = NULL;
	} else {
		store_index_wait(db);
	}
	r = usage_with_db(root, db, u, error_r);
	if (r < 0 && db != NULL) {
		/* an index we cannot read (corrupt, other schema): the
		   files alone still give the figure */
		log_debug("event=usage_index_unreadable path=%s error=\"%s\"",
		    path, *error_r);
		x_free(error_r);
		sqlite3_close(db);
		db = NULL;
		r = usage_with_db(root, NULL, u, error_r);
	}
	sqlite3_close(db);
	free(path);
	free(root);
	return r;
}

int
store_maildir_usage(const char *maildir, struct store_usage *u,
    char **error_r)
{
	return maildir_usage_open(maildir, SQLITE_OPEN_READWRITE, u, error_r);
}
