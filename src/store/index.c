/*
 * store/index: the per-account SQLite index, its schema and its prepared
 * statements. What is done with it (sync, flags, expunge, append) is in
 * folder.c.
 *
 * The Maildir is the truth; the index is a cache of it plus what a
 * Maildir cannot hold (UIDs, modseqs, the expunge log for QRESYNC). One
 * connection per account and process, WAL, synchronous=NORMAL: a commit
 * costs no fsync (a power cut may take the last commits back; a process
 * crash never does), and the statements are prepared once per connection.
 *
 * Schema versions (meta 'schema'): 1 = the first; 2 adds, without
 * touching what was there, mailbox.vanished_from (the expunge log is
 * complete for modseqs above it), mailbox.pop3_uidl (the POP3 UIDL
 * scheme of the folder), message.pop3_uidl (a UIDL imported from a
 * Dovecot uidlist) and the table msgcache (the cached ENVELOPE,
 * BODYSTRUCTURE and BODY, keyed by mailbox << 32 | uid, moved out of the
 * message rows). A version 1 index is upgraded in place on open; an
 * unknown version is treated like a corrupt index and rebuilt. The table
 * msgblob (store_msg_blobs_*: SORT and THREAD keys) is made whenever it
 * is missing, whatever the version.
 */
#include "store/mailbox-private.h"

#include "lib/log.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BUSY_TIMEOUT_MS 10000
#define SCHEMA_VERSION "3"
/* the page cache of one account's connection: enough for the message
   table of a large folder, small beside a session's TLS state */
#define CACHE_KIB 512
#define STR_(x) #x
#define STR(x) STR_(x)

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
	/* opaque per-message data of upper layers (SORT keys): a table any
	   version may lack, made when missing; a kind names its own format */
	"CREATE TABLE IF NOT EXISTS msgblob(mailbox INTEGER NOT NULL,"
	" kind TEXT NOT NULL, uid INTEGER NOT NULL, uidvalidity INTEGER NOT NULL,"
	" data BLOB NOT NULL, PRIMARY KEY(mailbox, kind, uid)) WITHOUT ROWID;"
	"INSERT OR IGNORE INTO meta VALUES('schema', '1');";

/* 1 -> 2: columns added with defaults that keep what version 1 meant */
static const char upgrade_2_sql[] =
	"ALTER TABLE mailbox ADD COLUMN vanished_from INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE mailbox ADD COLUMN pop3_uidl TEXT NOT NULL DEFAULT 'b';"
	"ALTER TABLE message ADD COLUMN pop3_uidl TEXT;"
	/* the cached renderings move out of the rows STORE rewrites: a
	   flag change then writes a small row, not kilobytes of text */
	"CREATE TABLE msgcache(key INTEGER PRIMARY KEY, envelope TEXT,"
	" bodystructure TEXT, body TEXT);"
	"INSERT INTO msgcache SELECT (mailbox << 32) | uid, envelope,"
	" bodystructure, NULL FROM message"
	" WHERE envelope IS NOT NULL OR bodystructure IS NOT NULL;"
	"UPDATE message SET envelope=NULL, bodystructure=NULL"
	" WHERE envelope IS NOT NULL OR bodystructure IS NOT NULL;"
	"CREATE INDEX IF NOT EXISTS expunged_modseq ON expunged(mailbox, modseq);"
	"UPDATE meta SET value='2' WHERE key='schema';";

/* 2 -> 3: when each message was put into its folder (IMAP SAVEDATE); the
   internal date is the best guess for the messages already there */
static const char upgrade_3_sql[] =
	"ALTER TABLE message ADD COLUMN savedate INTEGER NOT NULL DEFAULT 0;"
	"UPDATE message SET savedate=internaldate;"
	"UPDATE meta SET value='3' WHERE key='schema';";

static const char *const stmt_sql[ST_COUNT] = {
	[ST_ROW_BY_NAME] = "SELECT id, uidvalidity, uidnext, highestmodseq,"
	    " vanished_from, pop3_uidl FROM mailbox WHERE name=?1",
	[ST_ROW_STORE] = "UPDATE mailbox SET uidnext=?2, highestmodseq=?3,"
	    " vanished_from=?4 WHERE id=?1",
	[ST_ROW_INSERT] = "INSERT INTO mailbox(name, uidvalidity, uidnext,"
	    " highestmodseq, guid, vanished_from, pop3_uidl)"
	    " VALUES(?1, ?2, ?3, ?4, ?5, ?4, ?6)",
	[ST_MSGS_LOAD] = "SELECT uid, flags, keywords, modseq, internaldate,"
	    " size, base, path, savedate FROM message WHERE mailbox=?1"
	    " ORDER BY uid",
	[ST_MSG_BY_UID] = "SELECT path, flags, keywords, modseq FROM message"
	    " WHERE mailbox=?1 AND uid=?2",
	[ST_MSG_BY_BASE] = "SELECT uid, path FROM message WHERE mailbox=?1"
	    " AND base=?2",
	[ST_MSG_INSERT] = "INSERT INTO message(mailbox, uid, base, path, flags,"
	    " keywords, modseq, internaldate, size, pop3_uidl, savedate)"
	    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
	[ST_MSG_UPDATE] = "UPDATE message SET path=?3, flags=?4, keywords=?5,"
	    " modseq=?6 WHERE mailbox=?1 AND uid=?2",
	[ST_MSG_PATH] = "UPDATE message SET path=?3 WHERE mailbox=?1 AND uid=?2",
	[ST_MSG_DELETE] = "DELETE FROM message WHERE mailbox=?1 AND uid=?2",
	[ST_TOMB_INSERT] = "INSERT OR REPLACE INTO expunged(mailbox, uid, modseq)"
	    " VALUES(?1, ?2, ?3)",
	[ST_TOMB_SINCE] = "SELECT uid FROM expunged WHERE mailbox=?1"
	    " AND modseq>?2 ORDER BY uid",
	[ST_TOMB_COUNT] = "SELECT count(*) FROM expunged WHERE mailbox=?1",
	[ST_TOMB_NTH] = "SELECT modseq FROM expunged WHERE mailbox=?1"
	    " ORDER BY modseq LIMIT 1 OFFSET ?2",
	[ST_TOMB_PRUNE] = "DELETE FROM expunged WHERE mailbox=?1 AND modseq<=?2",
	[ST_CACHE_GET] = "SELECT envelope, bodystructure, body FROM msgcache"
	    " WHERE key=(?1 << 32) | ?2",
	[ST_CACHE_SET] = "INSERT INTO msgcache(key, envelope, bodystructure, body)"
	    " VALUES((?1 << 32) | ?2, ?3, ?4, ?5) ON CONFLICT(key) DO UPDATE SET"
	    " envelope=coalesce(excluded.envelope, envelope),"
	    " bodystructure=coalesce(excluded.bodystructure, bodystructure),"
	    " body=coalesce(excluded.body, body)",
	[ST_CACHE_RANGE] = "SELECT key & 4294967295, envelope, bodystructure, body"
	    " FROM msgcache WHERE key BETWEEN (?1 << 32) | ?2 AND (?1 << 32) | ?3"
	    " ORDER BY key",
	[ST_CACHE_DELETE] = "DELETE FROM msgcache WHERE key=(?1 << 32) | ?2",
	[ST_META_GET] = "SELECT value FROM meta WHERE key=?1",
	[ST_META_SET] = "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)",
	[ST_RECENT_GET] = "SELECT value FROM meta WHERE key="
	    "'recent.' || (SELECT guid FROM mailbox WHERE id=?1)",
	[ST_RECENT_SET] = "INSERT OR REPLACE INTO meta(key, value)"
	    " SELECT 'recent.' || guid, ?2 FROM mailbox WHERE id=?1",
	[ST_DATA_VERSION] = "PRAGMA data_version",
	[ST_UIDLIST] = "SELECT uid, base FROM message WHERE mailbox=?1"
	    " ORDER BY uid",
	[ST_GUID] = "SELECT guid FROM mailbox WHERE id=?1",
	[ST_POP3_UIDLS] = "SELECT uid, pop3_uidl FROM message WHERE mailbox=?1"
	    " AND pop3_uidl IS NOT NULL ORDER BY uid",
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
};

bool
store_rc_is_corrupt(int rc)
{
	rc &= 0xff;
	return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB;
}

static int
schema_version(sqlite3 *db, char *out, size_t outsize)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db,
	    "SELECT value FROM meta WHERE key='schema'", -1, &st, NULL);

	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);

		snprintf(out, outsize, "%s", v != NULL ? v : "");
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_NOTADB;
	}
	sqlite3_finalize(st);
	return rc;
}

/*
 * Waiting for another connection's lock: another imap worker or the smtp
 * worker's delivery holds the index's write lock for a commit, well under
 * a millisecond unless the disk is slow. SQLite's own busy_timeout sleeps
 * 1 ms, then 2, 5, 10 ms..., and the wait is on the event loop, where
 * every session of the process waits with it: so the first waits here are
 * short and grow, to 10 ms at most, up to BUSY_TIMEOUT_MS in all.
 */
static const unsigned int busy_us[] = { 20, 50, 100, 200, 500, 1000, 2000, 5000 };
#define BUSY_MAX_US 10000

unsigned int
store_index_busy_delay(int count)
{
	unsigned int n = sizeof(busy_us) / sizeof(busy_us[0]);
	unsigned long long waited = 0;

	for (unsigned int i = 0; i < (unsigned int)count; i++)
		waited += i < n ? busy_us[i] : BUSY_MAX_US;
	if (waited >= (unsigned long long)BUSY_TIMEOUT_MS * 1000)
		return 0;
	return (unsigned int)count < n ? busy_us[count] : BUSY_MAX_US;
}

static int
busy_wait(void *arg, int count)
{
	unsigned int us = store_index_busy_delay(count);
	struct timespec ts;

	(void)arg;
	if (us == 0)
		return 0;
	ts.tv_sec = 0;
	ts.tv_nsec = (long)us * 1000;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	return 1;
}

void
store_index_wait(sqlite3 *db)
{
	sqlite3_busy_handler(db, busy_wait, NULL);
}

static int
db_try_open(const char *path, sqlite3 **db_r, int *rc_r)
{
	sqlite3 *db = NULL;
	char version[16] = "";
	int rc;

	/* NOMUTEX: a connection is used by one thread at a time (the
	   worker's event loop, or the pool thread of a POP3 job) */
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK) {
		store_index_wait(db);
		/* closing an idle account must not checkpoint (an fsync on the
		   event loop); the next writer's autocheckpoint does it */
		sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
		rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL;"
		    "PRAGMA synchronous=NORMAL;"
		    "PRAGMA cache_size=-" STR(CACHE_KIB) ";",
		    NULL, NULL, NULL);
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, schema_sql, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = schema_version(db, version, sizeof(version));
	if (rc == SQLITE_OK && (strcmp(version, "1") == 0 ||
	    strcmp(version, "2") == 0)) {
		char was[16];

		snprintf(was, sizeof(was), "%s", version);
		rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		/* another process may have upgraded it meanwhile */
		if (rc == SQLITE_OK)
			rc = schema_version(db, version, sizeof(version));
		if (rc == SQLITE_OK && strcmp(version, "1") == 0) {
			rc = sqlite3_exec(db, upgrade_2_sql, NULL, NULL, NULL);
			if (rc == SQLITE_OK)
				snprintf(version, sizeof(version), "2");
		}
		if (rc == SQLITE_OK && strcmp(version, "2") == 0) {
			rc = sqlite3_exec(db, upgrade_3_sql, NULL, NULL, NULL);
			if (rc == SQLITE_OK)
				snprintf(version, sizeof(version), "3");
		}
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		else
			(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			log_info("event=index_upgraded path=%s schema=%s from=%s",
			    path, version, was);
	}
	if (rc == SQLITE_OK && strcmp(version, SCHEMA_VERSION) != 0)
		rc = SQLITE_NOTADB;	/* a schema we do not know */
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

/* Pages in the WAL past which a checkpoint is asked for (SQLite's own
   autocheckpoint size). */
#define CHECKPOINT_PAGES 1000

static int
wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct store_account *acct = arg;

	acct->wal_frames = pages;
	if (pages >= CHECKPOINT_PAGES)
		acct->ckpt_wanted = true;
	/* nobody takes the checkpoints (a process without the pool, or
	   one far behind): the WAL must not grow without bound */
	if (pages >= 20 * CHECKPOINT_PAGES)
		(void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE,
		    NULL, NULL);
	return SQLITE_OK;
}

int
store_index_checkpoint(const char *path, char **error_r)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);

	if (rc == SQLITE_OK) {
		store_index_wait(db);
		sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
		/* a connection learns that the file is in WAL mode when it
		   first reads it: before, a checkpoint does nothing and still
		   answers SQLITE_OK */
		rc = sqlite3_exec(db, "PRAGMA schema_version", NULL, NULL, NULL);
	}
	if (rc == SQLITE_OK) {
		/* PASSIVE: copies what it can without waiting for anyone */
		rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE,
		    NULL, NULL);
		/* BUSY: another connection (the other imap worker's) is
		   checkpointing this index right now, which is as good */
		if (rc == SQLITE_BUSY) {
			log_debug("event=index_checkpoint_busy path=%s", path);
			rc = SQLITE_OK;
		}
	}
	if (rc != SQLITE_OK)
		*error_r = xasprintf("Cannot checkpoint %s: %s", path,
		    db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

/*
 * A shared account's connection lives on the event loop: its WAL is not
 * checkpointed there (that fsyncs), but on a pool thread, when the hook
 * says the WAL is big (store_checkpoints_wanted()).
 */
static void
loop_connection(struct store_account *acct)
{
	if (!acct->shared)
		return;
	(void)sqlite3_exec(acct->db, "PRAGMA wal_autocheckpoint=0;", NULL, NULL, NULL);
	sqlite3_wal_hook(acct->db, wal_hook, acct);
}

int
store_index_open(struct store_account *acct, char **error_r)
{
	char *path = xasprintf("%s/" STORE_INDEX_FILE, acct->root);
	int rc;

	if (db_try_open(path, &acct->db, &rc) < 0) {
		if (!store_rc_is_corrupt(rc)) {
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
	acct->data_version = -1;
	loop_connection(acct);
	return 0;
}

void
store_index_close(struct store_account *acct)
{
	for (size_t i = 0; i < ST_COUNT; i++) {
		if (acct->st[i] != NULL)
			sqlite3_finalize(acct->st[i]);
		acct->st[i] = NULL;
	}
	if (acct->db != NULL)
		sqlite3_close(acct->db);
	acct->db = NULL;
}

int
store_index_rebuild(struct store_account *acct, char **error_r)
{
	char *path = xasprintf("%s/" STORE_INDEX_FILE, acct->root);

	log_warn("event=index_corrupt path=%s action=rebuild", path);
	store_index_close(acct);
	db_move_aside(path);
	free(path);
	return store_index_open(acct, error_r);
}

static time_t
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/*
 * The connection, opened again if it was closed while idle
 * (store_accounts_idle): what other connections did meanwhile is unknown,
 * so data_version starts afresh and the folders load again.
 */
static int
db_ensure(struct store_account *acct, int *rc_r)
{
	char *err = NULL;

	acct->last_used = now_mono();
	if (acct->db != NULL)
		return 0;
	if (store_index_open(acct, &err) < 0) {
		log_error("event=index_reopen_failed root=%s error=\"%s\"",
		    acct->root, err);
		free(err);
		*rc_r = SQLITE_CANTOPEN;
		return -1;
	}
	return 0;
}

sqlite3_stmt *
store_stmt(struct store_account *acct, enum store_stmt id, int *rc_r)
{
	sqlite3_stmt *st;

	if (db_ensure(acct, rc_r) < 0)
		return NULL;
	st = acct->st[id];

	if (st == NULL) {
		*rc_r = sqlite3_prepare_v3(acct->db, stmt_sql[id], -1,
		    SQLITE_PREPARE_PERSISTENT, &st, NULL);
		if (*rc_r != SQLITE_OK)
			return NULL;
		acct->st[id] = st;
	} else {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	*rc_r = SQLITE_OK;
	return st;
}

int
store_db_exec(struct store_account *acct, const char *sql, int *rc_r)
{
	if (db_ensure(acct, rc_r) < 0)
		return -1;
	*rc_r = sqlite3_exec(acct->db, sql, NULL, NULL, NULL);
	return *rc_r == SQLITE_OK ? 0 : -1;
}

int
store_tx(struct store_account *acct, enum store_stmt which, int *rc_r)
{
	sqlite3_stmt *st = store_stmt(acct, which, rc_r);

	if (st == NULL)
		return -1;
	*rc_r = sqlite3_step(st);
	sqlite3_reset(st);
	if (*rc_r != SQLITE_DONE)
		return -1;
	*rc_r = SQLITE_OK;
	return 0;
}

/* --- SQLite's open(2) ------------------------------------------------ */

typedef int open_fn(const char *path, int flags, int mode);

static sqlite3_syscall_ptr unix_open;

static int
open_noatime(const char *path, int flags, int mode)
{
	open_fn *o = (open_fn *)unix_open;
	int fd = o(path, flags | O_NOATIME, mode);

	/* O_NOATIME is only for the owner: another's file opens as usual */
	if (fd < 0 && errno == EPERM)
		fd = o(path, flags, mode);
	return fd;
}

int
store_sqlite_noatime(void)
{
	sqlite3_vfs *vfs = sqlite3_vfs_find(NULL);

	if (unix_open != NULL)
		return 0;
	if (vfs == NULL || vfs->iVersion < 3 || vfs->xGetSystemCall == NULL ||
	    strcmp(vfs->zName, "unix") != 0)
		return -1;
	unix_open = vfs->xGetSystemCall(vfs, "open");
	if (unix_open == NULL)
		return -1;
	if (vfs->xSetSystemCall(vfs, "open",
	    (sqlite3_syscall_ptr)open_noatime) != SQLITE_OK) {
		unix_open = NULL;
		return -1;
	}
	return 0;
}

int
store_db_error(struct store_account *acct, int rc, const char *what,
    char **error_r)
{
	*error_r = xasprintf("Index error (%s): %s", what,
	    acct->db != NULL ? sqlite3_errmsg(acct->db) : sqlite3_errstr(rc));
	return -1;
}

const char *
store_index_name(const char *name)
{
	return store_is_inbox(name) ? "INBOX" : name;
}

bool
store_index_data_changed(struct store_account *acct)
{
	int rc;
	sqlite3_stmt *st = store_stmt(acct, ST_DATA_VERSION, &rc);
	int64_t v = -1;

	if (st != NULL && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	if (st != NULL)
		sqlite3_reset(st);
	if (v >= 0 && v == acct->data_version)
		return false;
	acct->data_version = v;
	return true;
}

static int
step_done(sqlite3_stmt *st, int *rc_r)
{
	*rc_r = sqlite3_step(st);
	sqlite3_reset(st);
	if (*rc_r != SQLITE_DONE)
		return -1;
	*rc_r = SQLITE_OK;
	return 0;
}

int
store_index_forget_mailbox(struct store_account *acct, const char *name,
    char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	/* rare (DELETE, RENAME): not worth a kept statement */
	static const char *const sql[] = {
		"DELETE FROM message WHERE mailbox IN"
		" (SELECT id FROM mailbox WHERE name=?1)",
		"DELETE FROM expunged WHERE mailbox IN"
		" (SELECT id FROM mailbox WHERE name=?1)",
		"DELETE FROM msgcache WHERE key >> 32 IN"
		" (SELECT id FROM mailbox WHERE name=?1)",
		"DELETE FROM msgblob WHERE mailbox IN"
		" (SELECT id FROM mailbox WHERE name=?1)",
		"DELETE FROM mailbox WHERE name=?1",
	};

	store_folder_forget(acct, name);
	if (db_ensure(acct, &rc) < 0)
		return store_db_error(acct, rc, "forget", error_r);
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		rc = sqlite3_prepare_v2(acct->db, sql[i], -1, &st, NULL);
		if (rc != SQLITE_OK)
			return store_db_error(acct, rc, "forget", error_r);
		sqlite3_bind_text(st, 1, store_index_name(name), -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return store_db_error(acct, rc, "forget", error_r);
	}
	return 0;
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
	store_folder_forget(acct, from);
	if (db_ensure(acct, &rc) < 0)
		return store_db_error(acct, rc, "rename", error_r);
	rc = sqlite3_prepare_v2(acct->db, "UPDATE mailbox SET name=?2"
	    " WHERE name=?1", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_db_error(acct, rc, "rename", error_r);
	sqlite3_bind_text(st, 1, store_index_name(from), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, store_index_name(to), -1, SQLITE_STATIC);
	if (step_done(st, &rc) < 0) {
		sqlite3_finalize(st);
		return store_db_error(acct, rc, "rename", error_r);
	}
	sqlite3_finalize(st);
	return 0;
}

/* --- cache ------------------------------------------------------------- */

static char *
col_dup(sqlite3_stmt *st, int col)
{
	const char *v = (const char *)sqlite3_column_text(st, col);

	return v != NULL ? xstrdup(v) : NULL;
}

int
store_msg_cache_load(struct store_mailbox *box, uint32_t uid,
    struct store_msg_cache *c)
{
	sqlite3_stmt *st;
	int rc, ret = 0;

	memset(c, 0, sizeof(*c));
	st = store_stmt(box->acct, ST_CACHE_GET, &rc);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, box->f->id);
	sqlite3_bind_int64(st, 2, uid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		c->envelope = col_dup(st, 0);
		c->bodystructure = col_dup(st, 1);
		c->body = col_dup(st, 2);
		ret = c->envelope != NULL || c->bodystructure != NULL ||
		    c->body != NULL ? 1 : 0;
	} else if (rc != SQLITE_DONE) {
		ret = -1;
	}
	sqlite3_reset(st);
	return ret;
}

int
store_msg_cache_store(struct store_mailbox *box, uint32_t uid,
    const struct store_msg_cache *c, char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	st = store_stmt(box->acct, ST_CACHE_SET, &rc);
	if (st == NULL)
		return store_db_error(box->acct, rc, "cache", error_r);
	sqlite3_bind_int64(st, 1, box->f->id);
	sqlite3_bind_int64(st, 2, uid);
	if (c->envelope != NULL)
		sqlite3_bind_text(st, 3, c->envelope, -1, SQLITE_STATIC);
	if (c->bodystructure != NULL)
		sqlite3_bind_text(st, 4, c->bodystructure, -1, SQLITE_STATIC);
	if (c->body != NULL)
		sqlite3_bind_text(st, 5, c->body, -1, SQLITE_STATIC);
	return step_done(st, &rc) == 0 ? 0 :
	    store_db_error(box->acct, rc, "cache", error_r);
}

int
store_msg_cache_load_range(struct store_mailbox *box, uint32_t lo, uint32_t hi,
    uint32_t **uids_r, struct store_msg_cache **c_r, unsigned int *n_r)
{
	sqlite3_stmt *st;
	uint32_t *uids = NULL;
	struct store_msg_cache *c = NULL;
	unsigned int n = 0, cap = 0;
	int rc;

	*uids_r = NULL;
	*c_r = NULL;
	*n_r = 0;
	st = store_stmt(box->acct, ST_CACHE_RANGE, &rc);
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, box->f->id);
	sqlite3_bind_int64(st, 2, lo);
	sqlite3_bind_int64(st, 3, hi);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			uids = xreallocarray(uids, cap, sizeof(*uids));
			c = xreallocarray(c, cap, sizeof(*c));
		}
		uids[n] = (uint32_t)sqlite3_column_int64(st, 0);
		c[n].envelope = col_dup(st, 1);
		c[n].bodystructure = col_dup(st, 2);
		c[n].body = col_dup(st, 3);
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		for (unsigned int i = 0; i < n; i++)
			store_msg_cache_free(&c[i]);
		free(uids);
		free(c);
		return -1;
	}
	*uids_r = uids;
	*c_r = c;
	*n_r = n;
	return 0;
}

void
store_msg_cache_free(struct store_msg_cache *c)
{
	x_free(&c->envelope);
	x_free(&c->bodystructure);
	x_free(&c->body);
}

int
store_msg_cache_get(struct store_mailbox *box, uint32_t uid,
    char **envelope_r, char **bodystructure_r)
{
	struct store_msg_cache c;
	int r = store_msg_cache_load(box, uid, &c);

	*envelope_r = c.envelope;
	*bodystructure_r = c.bodystructure;
	free(c.body);
	return r < 0 ? -1 : (*envelope_r != NULL || *bodystructure_r != NULL);
}

int
store_msg_cache_set(struct store_mailbox *box, uint32_t uid,
    const char *envelope, const char *bodystructure, char **error_r)
{
	struct store_msg_cache c = { (char *)envelope, (char *)bodystructure, NULL };

	return store_msg_cache_store(box, uid, &c, error_r);
}

/* --- opaque per-message data -------------------------------------------------- */

/* A statement prepared for one use (finalize it). NULL: *rc_r. */
static sqlite3_stmt *
prep_once(struct store_account *acct, const char *sql, int *rc_r)
{
	sqlite3_stmt *st = NULL;

	if (db_ensure(acct, rc_r) < 0)
		return NULL;
	*rc_r = sqlite3_prepare_v2(acct->db, sql, -1, &st, NULL);
	return *rc_r == SQLITE_OK ? st : NULL;
}

int
store_msg_blobs_load(struct store_mailbox *box, const char *kind,
    store_blob_fn *fn, void *ctx, char **error_r)
{
	struct store_account *acct = box->acct;
	sqlite3_stmt *st;
	int rc;

	/* rows of expunged messages and of an older UIDVALIDITY (a folder
	   made again) go first; they would never be asked for */
	st = prep_once(acct, "DELETE FROM msgblob WHERE mailbox=?1 AND kind=?2"
	    " AND (uidvalidity<>?3 OR uid NOT IN"
	    " (SELECT uid FROM message WHERE mailbox=?1))", &rc);
	if (st == NULL)
		return store_db_error(acct, rc, "msgblob", error_r);
	sqlite3_bind_int64(st, 1, box->f->id);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, box->f->uidvalidity);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_db_error(acct, rc, "msgblob", error_r);
	st = prep_once(acct, "SELECT uid, data FROM msgblob"
	    " WHERE mailbox=?1 AND kind=?2 AND uidvalidity=?3 ORDER BY uid", &rc);
	if (st == NULL)
		return store_db_error(acct, rc, "msgblob", error_r);
	sqlite3_bind_int64(st, 1, box->f->id);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, box->f->uidvalidity);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const void *data = sqlite3_column_blob(st, 1);
		int len = sqlite3_column_bytes(st, 1);

		fn((uint32_t)sqlite3_column_int64(st, 0), data != NULL ? data : "",
		    (size_t)(len > 0 ? len : 0), ctx);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_db_error(acct, rc, "msgblob", error_r);
}

int
store_msg_blobs_save(struct store_mailbox *box, const char *kind,
    const uint32_t *uids, const void *const *data, const size_t *lens,
    unsigned int n, char **error_r)
{
	struct store_account *acct = box->acct;
	sqlite3_stmt *st;
	bool own_tx = acct->batch == 0;
	int rc, ignored;

	if (n == 0)
		return 0;
	/* inside a batch (store_batch_begin) the rows join its transaction */
	if (own_tx && store_tx(acct, ST_BEGIN, &rc) < 0)
		return store_db_error(acct, rc, "msgblob", error_r);
	st = prep_once(acct, "INSERT OR REPLACE INTO msgblob"
	    "(mailbox, kind, uid, uidvalidity, data) VALUES(?1, ?2, ?3, ?4, ?5)",
	    &rc);
	for (unsigned int i = 0; st != NULL && i < n; i++) {
		sqlite3_bind_int64(st, 1, box->f->id);
		sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, uids[i]);
		sqlite3_bind_int64(st, 4, box->f->uidvalidity);
		sqlite3_bind_blob(st, 5, data[i], (int)lens[i], SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			break;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK) {
		(void)store_db_error(acct, rc, "msgblob", error_r);
		if (own_tx)
			(void)store_tx(acct, ST_ROLLBACK, &ignored);
		return -1;
	}
	if (own_tx && store_tx(acct, ST_COMMIT, &rc) < 0)
		return store_db_error(acct, rc, "msgblob", error_r);
	return 0;
}
