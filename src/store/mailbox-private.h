/*
 * Internals shared by store/mailbox.c (folders), store/index.c (the SQLite
 * index), store/folder.c (shared folder state, sync, changes) and
 * store/watch.c (inotify).
 *
 * Sharing (one process, one thread): an account is opened once per root
 * and shared by every session of it (refs); a folder that several handles
 * have open is one struct store_folder_state with one message array (a
 * struct store_snap) that idle, up-to-date handles all point at. A handle
 * (struct store_mailbox) keeps the snapshot it last synced to and how many
 * of its messages it has seen, so other handles' changes reach it only at
 * its own sync, as IMAP wants.
 */
#ifndef TEGAMI_STORE_MAILBOX_PRIVATE_H
#define TEGAMI_STORE_MAILBOX_PRIVATE_H

#include "store/mailbox.h"

#include <sqlite3.h>

/* Prepared statements, kept for the life of the connection. */
enum store_stmt {
	ST_ROW_BY_NAME,
	ST_ROW_STORE,
	ST_ROW_INSERT,
	ST_MSGS_LOAD,
	ST_MSG_BY_UID,
	ST_MSG_BY_BASE,
	ST_MSG_INSERT,
	ST_MSG_UPDATE,
	ST_MSG_PATH,
	ST_MSG_DELETE,
	ST_TOMB_INSERT,
	ST_TOMB_SINCE,
	ST_TOMB_COUNT,
	ST_TOMB_NTH,
	ST_TOMB_PRUNE,
	ST_CACHE_GET,
	ST_CACHE_SET,
	ST_CACHE_RANGE,
	ST_CACHE_DELETE,
	ST_META_GET,
	ST_META_SET,
	ST_RECENT_GET,
	ST_RECENT_SET,
	ST_DATA_VERSION,
	ST_UIDLIST,
	ST_GUID,
	ST_POP3_UIDLS,
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_COUNT
};

struct store_folder_state;

struct store_account {
	char *root;
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	unsigned int refs;
	bool shared;		/* in the process-wide registry */
	unsigned int batch;	/* store_batch_begin() depth */
	bool batch_failed;
	int64_t data_version;	/* PRAGMA data_version at our last look */
	time_t last_used;	/* CLOCK_MONOTONIC seconds of the last query */
	/* WAL checkpoints of shared accounts run on a pool thread: the WAL
	   hook asks, store_checkpoints_wanted() hands them out */
	bool ckpt_wanted, ckpt_pending;
	int wal_frames;		/* in the WAL after our last commit */
	/* expunged files renamed out of the way, to be unlinked off the
	   loop (store_trash_take) */
	char **trash;
	unsigned int ntrash;
	struct store_folder_state *folders;
	struct store_account *next;
};

/* A version of a folder's message array (sorted by UID). */
struct store_snap {
	unsigned int refs;	/* the folder's current one + handles on it */
	struct store_msg *msgs;
	unsigned int count, cap;
};

/* Hash of (watch, event kind, name) for an inotify event we caused. */
#define STORE_WATCH_NONE (-1)

struct store_folder_state {
	struct store_account *acct;
	char *name;		/* "INBOX" or as given */
	char *dir;
	unsigned int refs;	/* handles */
	struct store_mailbox *handles;
	int64_t id;		/* mailbox row */
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	uint64_t vanished_from;	/* the expunge log is complete above this */
	char uidl_scheme;	/* POP3: 'b' base name, 'd' Dovecot %08X%08X */
	bool loaded;
	bool asleep;		/* cur dropped while the account is idle */
	struct store_snap *cur;
	/* dovecot-keywords: letter 'a' + i is kw[i] */
	char *kw[STORE_MAX_KEYWORDS];
	unsigned int nkw;
	/* change detection: inotify watches on new/ and cur/, or, when
	   those cannot be had, the directories' mtimes */
	int wd_new, wd_cur;
	bool need_rescan;	/* something we did not do happened in cur/ */
	bool need_new;		/* files may be waiting in new/ */
	bool need_reload;	/* another connection wrote the index */
	/* names in cur/ another process changed since the last sync, in the
	   order inotify gave them ('T' came, 'F' went): when the index says
	   the same, cur/ need not be read again (store_folder_foreign()) */
	char **foreign;
	char *foreign_kind;
	unsigned int nforeign;
	/* the index did not explain them yet (CLOCK_MONOTONIC ms, 0 = not
	   waiting), and how many names there were at that look */
	uint64_t foreign_since;
	unsigned int foreign_checked;
	bool stamp_valid;
	struct timespec new_mtime, cur_mtime;
	/* \Recent: the first UID no session has claimed, as last read from
	   the index (claims are written at once: recent_claim()) */
	uint32_t recent_first;
	bool recent_loaded;
	bool kw_loaded;
	/* dovecot-uidlist: lines for messages that are gone */
	unsigned int uidlist_stale;
	unsigned int expunges_since_prune;
	/* files being appended (in cur/, not yet in the index) */
	char **pending;
	unsigned int npending;
	/* UIDs whose file names still carry older flags than the index
	   (renamed by store_names_flush()) */
	uint32_t *lag;
	unsigned int nlag, lag_cap;
	struct store_folder_state *next;
};

struct store_mailbox {
	struct store_folder_state *f;
	struct store_account *acct;
	bool readonly;
	/* the view: the first count messages of snap */
	struct store_snap *snap;
	unsigned int count;
	/* asleep (the account idle): the view as UID ranges (lo, hi pairs)
	   instead of snap, which is NULL */
	uint32_t *ranges;
	unsigned int nranges;
	/* every flag change with a modseq up to here has been reported */
	uint64_t seen_modseq;
	void (*notify)(void *ctx);
	void *notify_ctx;
	struct store_mailbox *next_handle;
};

/* mailbox.c */
bool store_is_inbox(const char *name);
void store_msgs_free(struct store_msg *msgs, unsigned int count);
/* Sets base, path and keywords of m in one allocation (m->base owns it). */
void store_msg_set_strings(struct store_msg *m, const char *base,
    const char *path, const char *keywords);

/* index.c: the database */
/* Makes db wait for another connection's lock with short, growing sleeps;
   store_index_busy_delay: the count'th sleep in microseconds, 0 = give up. */
void store_index_wait(sqlite3 *db);
unsigned int store_index_busy_delay(int count);
int store_index_open(struct store_account *acct, char **error_r);
void store_index_close(struct store_account *acct);
int store_index_rebuild(struct store_account *acct, char **error_r);
/* The statement, reset and with its bindings cleared. NULL: *rc_r. */
sqlite3_stmt *store_stmt(struct store_account *acct, enum store_stmt id,
    int *rc_r);
int store_db_exec(struct store_account *acct, const char *sql, int *rc_r);
/* BEGIN IMMEDIATE, COMMIT, ROLLBACK through kept statements. */
int store_tx(struct store_account *acct, enum store_stmt which, int *rc_r);
int store_db_error(struct store_account *acct, int rc, const char *what,
    char **error_r);
bool store_rc_is_corrupt(int rc);
int store_index_forget_mailbox(struct store_account *acct, const char *name,
    char **error_r);
int store_index_rename_mailbox(struct store_account *acct, const char *from,
    const char *to, char **error_r);
const char *store_index_name(const char *name);
/* Another connection committed since we last looked (and remember now). */
bool store_index_data_changed(struct store_account *acct);

/* folder.c */
/*
 * An idle account's folders drop their message arrays; handles keep their
 * views as UID ranges. Everything that needs the array wakes the folder
 * (loaded again from the index) first.
 */
void store_folders_sleep(struct store_account *acct);
void store_folder_forget(struct store_account *acct, const char *name);
/* Do flag changes of acct wait for store_names_flush() (a shared account
   in a process with a janitor), or rename at once? (mailbox.c) */
bool store_names_deferred(const struct store_account *acct);
/* Renames the files whose names lag behind their flags (folder.c). */
void store_folders_flush_names(struct store_account *acct);
/* Unlinks the account's trash now. */
void store_trash_flush(struct store_account *acct);
/* Makes path the account's trash (unlinked later, or now when it cannot
   wait): a leftover found in a scan. */
void store_trash_adopt(struct store_account *acct, char *path);
/* Trash of another process older than this is a dead process's (300). */
extern int store_trash_stale_secs;
void store_folder_state_notify(struct store_folder_state *f,
    const struct store_mailbox *except);
/* inotify saw another process change name in cur/ (kind as for
   store_watch_own()); too many such names make it a rescan. */
void store_folder_foreign(struct store_folder_state *f, char kind,
    const char *name);
/*
 * How long such names may wait for the index to explain them before cur/
 * is read (ms): the other worker renames a file, then commits; APPEND's
 * file arrives in cur/ before its row. 250; tests change it.
 */
extern unsigned int store_foreign_grace_ms;
/* Are f's names waiting for the index (foreign_since says since when)? */
bool store_folder_foreign_waiting(const struct store_folder_state *f);
uint64_t store_now_ms(void);
/* Full scans of a folder's cur/ made by this process (for tests). */
extern unsigned long store_folder_scans;

/* watch.c: one inotify instance per process (the loop thread only) */
int store_watch_add(struct store_folder_state *f);
void store_watch_remove(struct store_folder_state *f);
/* Records an event we are about to cause, so that it is not taken for
   another process's change. kind: 'T' moved/created in, 'F' moved out or
   deleted. sub: "new" or "cur". */
void store_watch_own(struct store_folder_state *f, char kind, const char *sub,
    const char *name);
/* Reads what inotify has queued and marks the folders; notifies handles. */
void store_watch_read(void);
/* A folder's foreign names began to wait for the index (store_watch_retry()). */
void store_watch_waiting(void);

#endif
