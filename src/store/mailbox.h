/*
 * store/mailbox: an account's Maildir++ folders as IMAP sees them, with a
 * per-account SQLite index (UIDs, flags, modseqs, sizes, dates).
 *
 * Layout (docker-mailserver / Dovecot maildir++):
 *   <root>/{cur,new,tmp}            INBOX
 *   <root>/.Sent/{cur,new,tmp}      "Sent"; "Foo.Bar" is <root>/.Foo.Bar
 *   <root>/subscriptions            Dovecot's format ("V\t2", names with
 *                                   the '.' separator written as TAB)
 *   <root>/dovecot-uidlist          per folder: UIDVALIDITY and UIDs, read
 *                                   on first open and kept up to date, so
 *                                   Dovecot reads our UIDs back and a lost
 *                                   index is rebuilt with the same UIDs
 *   <root>/dovecot-keywords         per folder: keyword <-> letter a..z
 *   <root>/tegami-index.sqlite      the index (WAL); a corrupt one is moved
 *                                   aside and rebuilt from the Maildir
 * Message files are <base>:2,<flags>, flags being the Maildir letters
 * (D F P R S T, then keyword letters) in ASCII order; base is what the
 * uidlist and the index key on. Hierarchy separator: '.'.
 *
 * Folder names are IMAP names as sent (modified UTF-7; they are the
 * directory names, as with Dovecot). "INBOX" is case-insensitive.
 *
 * Everything here does blocking file and SQLite I/O: cheap on a local
 * disk. The fsyncs of an APPEND run on a pool thread (store_append_*).
 *
 * Sharing: store_account_open() returns the one account object of that
 * root in this process (one SQLite connection, kept statements), and
 * handles on one folder share one struct store_folder_state: one message
 * array, one pair of inotify watches (new/, cur/), so a change made by one
 * session or seen by inotify reaches the others without a rescan. These
 * shared objects belong to one thread (the event loop);
 * store_account_open_private() gives a separate one, e.g. for a pool
 * thread.
 */
#ifndef TEGAMI_STORE_MAILBOX_H
#define TEGAMI_STORE_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* System flags (bit per flag). */
enum store_flag {
	STORE_FLAG_SEEN = 1 << 0,	/* S */
	STORE_FLAG_ANSWERED = 1 << 1,	/* R */
	STORE_FLAG_FLAGGED = 1 << 2,	/* F */
	STORE_FLAG_DELETED = 1 << 3,	/* T */
	STORE_FLAG_DRAFT = 1 << 4,	/* D */
	STORE_FLAG_PASSED = 1 << 5,	/* P: no IMAP system flag, kept as is */
};

#define STORE_INDEX_FILE "tegami-index.sqlite"
#define STORE_MAX_KEYWORDS 26	/* Maildir letters a..z */

struct store_account;
struct store_mailbox;

/* One message as the index knows it; seq = position + 1. */
struct store_msg {
	uint32_t uid;
	unsigned int flags;		/* enum store_flag */
	char *keywords;			/* space-separated, sorted; "" if none */
	uint64_t modseq;
	time_t internaldate;
	time_t savedate;		/* put into this folder (RFC 8514) */
	uint64_t size;			/* RFC822.SIZE: CRLF line ends */
	char *base;			/* Maildir base name (no ":2,...") */
	char *path;			/* current file: "cur/<base>:2,<flags>" */
};

/* What a sync found (for EXISTS, EXPUNGE/VANISHED, FETCH FLAGS). */
struct store_sync_changes {
	uint32_t *expunged;	/* UIDs that vanished, ascending */
	unsigned int *expunged_pos; /* their 0-based places in the old view */
	unsigned int nexpunged;
	uint32_t *changed;	/* UIDs whose flags changed on disk */
	unsigned int nchanged;
	unsigned int nnew;	/* UIDs assigned to new files */
};

struct store_folder {
	char *name;		/* IMAP name */
	bool subscribed;
	bool has_children;
	char *special_use;	/* "\\Sent", "\\Archive \\Junk", ... or NULL
				   (existing folders only) */
	bool exists;		/* false: only subscribed */
};


/*
 * Opens the account whose Maildir root is root (created when missing,
 * mode 0700), creates and subscribes Drafts, Sent, Trash and Junk when
 * they do not exist yet (as docker-mailserver's Dovecot does on login),
 * and opens the index, rebuilding it when it is corrupt. -1 with *error_r
 * (malloc'd) when the Maildir cannot be used.
 */
int store_account_open(const char *root, struct store_account **acct_r,
    char **error_r);
/* The same, but never shared (a pool thread, a test of two processes). */
int store_account_open_private(const char *root,
    struct store_account **acct_r, char **error_r);
/*
 * Closes the SQLite connection of every shared account not queried for
 * idle_secs (sessions idle in IDLE hold no connection, which is most of
 * what an account costs in memory); the next query opens it again.
 * Returns how many were closed. Call it from a timer.
 */
unsigned int store_accounts_idle(unsigned int idle_secs);
/*
 * Index files of shared accounts whose write-ahead log has grown to its
 * checkpoint size: checkpoints fsync, so the caller runs
 * store_index_checkpoint() on a pool thread for each, then
 * store_checkpoint_done() on the loop (which copies what was committed
 * meanwhile only when the log has grown big, so that it can start over).
 * NULL-terminated, malloc'd, or NULL.
 */
char **store_checkpoints_wanted(void);
/*
 * Makes SQLite open its files (index, log, shared memory) with O_NOATIME
 * where the process owns them: in a log that is written all the time,
 * every read would otherwise also write the file's inode (relatime sees
 * an atime older than the mtime). Before the process's first SQLite
 * call; -1 (and nothing changed) when the VFS does not allow it.
 */
int store_sqlite_noatime(void);
/* Any thread: a PASSIVE checkpoint through a connection of its own. */
int store_index_checkpoint(const char *path, char **error_r);
void store_checkpoint_done(const char *path);
/*
 * Files expunged from shared accounts wait under a dot name (readers skip
 * them) until the caller unlinks them on a pool thread: freeing blocks can
 * block the event loop. NULL-terminated, malloc'd (each path too), or NULL.
 */
char **store_trash_take(void);
/*
 * The caller takes the trash (store_trash_take, regularly): an account
 * closed with trash still waiting leaves it for the next take instead of
 * unlinking it on the loop. Without it, the close unlinks. It also calls
 * store_names_flush() regularly: a flag change then renames its file
 * there, later; without a janitor, at once.
 */
void store_trash_janitor(void);
/*
 * The files of flag changes since the last call take their new names, in
 * one transaction per folder (about once a second, from a timer). What is
 * left when a folder's last handle closes is renamed then.
 */
void store_names_flush(void);
/* Another reference to the same account. */
struct store_account *store_account_ref(struct store_account *acct);
/* Drops this reference; the last one closes the index. */
void store_account_close(struct store_account **acct);
const char *store_account_root(const struct store_account *acct);

/* Is name a valid folder name? (no '/', no empty or "." ".." levels) */
bool store_folder_name_valid(const char *name);
/* The folder's directory (malloc'd), or NULL for an invalid name. */
char *store_folder_path(const struct store_account *acct, const char *name);

/*
 * Every folder (INBOX first, then by name) and every subscribed name
 * that has no folder. Free with store_folders_free().
 */
int store_folder_list(struct store_account *acct, struct store_folder **list_r,
    unsigned int *count_r, char **error_r);
void store_folders_free(struct store_folder *list, unsigned int count);
/* 0, or -1: *error_r says why (exists, invalid name, I/O) as an IMAP text. */
int store_folder_create(struct store_account *acct, const char *name,
    char **error_r);
/*
 * The same with special-use attributes (RFC 6154 CREATE-SPECIAL-USE,
 * space-separated, as store_special_use_name() spells them; NULL = none),
 * kept in a file inside the folder. A failure leaves no folder behind.
 */
int store_folder_create_special(struct store_account *acct, const char *name,
    const char *special_use, char **error_r);
/*
 * A special-use attribute a folder may be given ("\\archive" any case),
 * spelled as LIST shows it, or NULL when it is not one tegami can assign
 * (\\All and \\Flagged are virtual folders tegami does not have).
 */
const char *store_special_use_name(const char *attr);
/* Deletes the folder and its messages and index rows (not INBOX). */
int store_folder_delete(struct store_account *acct, const char *name,
    char **error_r);
/* Renames a folder and its children; INBOX is not supported yet. */
int store_folder_rename(struct store_account *acct, const char *from,
    const char *to, char **error_r);
int store_subscribe(struct store_account *acct, const char *name, bool on,
    char **error_r);

/*
 * Opens a folder and syncs it (store_mailbox_sync). readonly (EXAMINE)
 * leaves new/ alone. -1 with *error_r, e.g. "Mailbox doesn't exist".
 */
int store_mailbox_open(struct store_account *acct, const char *name,
    bool readonly, struct store_mailbox **box_r, char **error_r);
void store_mailbox_close(struct store_mailbox **box);
/*
 * A handle only to add messages to (APPEND, COPY/MOVE target): no sync
 * and no message array unless some handle has the folder open anyway, so
 * filing into a big Sent folder does not scan it. Its view is empty.
 */
int store_mailbox_open_target(struct store_account *acct, const char *name,
    struct store_mailbox **box_r, char **error_r);

/*
 * Brings the index up to date with the Maildir: moves new/ to cur/,
 * gives UIDs to new files in delivery order, drops the files that are
 * gone, takes over flags changed in file names. changes_r may be NULL;
 * free it with store_sync_changes_free().
 */
int store_mailbox_sync(struct store_mailbox *box,
    struct store_sync_changes *changes_r, char **error_r);
void store_sync_changes_free(struct store_sync_changes *changes);
/*
 * Could a sync find anything new for this handle? Cheap: what inotify has
 * queued (or, without inotify, the mtimes of new/ and cur/), the index's
 * data_version and the other handles' changes. True when unsure.
 */
bool store_mailbox_changed(struct store_mailbox *box);
/*
 * fn(ctx) is called (from inside store calls or store_watch_dispatch(),
 * so it must only schedule work) when the folder changed in a way this
 * handle has not synced yet: another handle's change, or new mail or a
 * foreign change seen by inotify. NULL turns it off.
 */
void store_mailbox_set_notify(struct store_mailbox *box, void (*fn)(void *ctx),
    void *ctx);
/* Are changes by other processes pushed (inotify), or must one poll? */
bool store_mailbox_watched(const struct store_mailbox *box);
/*
 * The process's inotify descriptor, for the event loop (readable: call
 * store_watch_dispatch()); -1 when inotify cannot be had (then handles
 * fall back to polling with store_mailbox_changed()).
 */
int store_watch_fd(void);
void store_watch_dispatch(void);
/*
 * Names another process changed in cur/ may wait a moment for the index to
 * explain them (the other imap worker renames, then commits). While any
 * folder's do, the loop calls store_watch_retry() every few tens of ms:
 * it notifies those folders' handles (IDLE sessions look again) and says
 * whether any still wait. hook is called when a folder begins to wait
 * (from inside store calls: it must only schedule the retry).
 */
bool store_watch_retry(void);
void store_watch_set_waiting_hook(void (*hook)(void));

/*
 * Changes in one transaction: store_batch_begin(), several changes on
 * this account's folders, store_batch_end() commits them (-1 with
 * *error_r if that fails: the folders are rescanned at their next sync).
 */
int store_batch_begin(struct store_mailbox *box, char **error_r);
int store_batch_end(struct store_mailbox *box, char **error_r);

/* The folder's name ("INBOX" for any case of it). */
const char *store_mailbox_name(const struct store_mailbox *box);
uint32_t store_mailbox_uidvalidity(const struct store_mailbox *box);
uint32_t store_mailbox_uidnext(const struct store_mailbox *box);
uint64_t store_mailbox_highestmodseq(const struct store_mailbox *box);
/* The messages in UID order (valid until the next sync or change). */
const struct store_msg *store_mailbox_msgs(const struct store_mailbox *box,
    unsigned int *count_r);
/*
 * \Recent (RFC 3501 2.3.2): messages from UID *first_r on have not been
 * seen as recent by any session yet. claim (a read-write SELECT, or one
 * that has synced new mail): this session takes them, so later callers
 * get a *first_r above the last message in box. 0 or -1 with *error_r.
 */
int store_mailbox_recent(struct store_mailbox *box, bool claim,
    uint32_t *first_r, char **error_r);
/* Position of uid in the message array, or -1. */
int store_mailbox_find_uid(const struct store_mailbox *box, uint32_t uid);
/* The full path of a message's file (malloc'd). */
char *store_msg_full_path(const struct store_mailbox *box,
    const struct store_msg *msg);
/*
 * When that file is gone: the full path of the message's file under the
 * name it has now in cur/ or new/ (malloc'd; another program renamed it,
 * or the other imap worker before its commit), NULL when there is none
 * (expunged). Reads the directory: for the rare miss only.
 */
char *store_msg_relocated_path(struct store_mailbox *box,
    const struct store_msg *msg);

/*
 * Changes. store_msg_set_flags() updates the message array at once (the
 * caller reports the new flags itself); expunge, append and copy show in
 * the array at the next store_mailbox_sync(), which reports them like
 * changes made by any other session.
 *
 * Sets the flags and keywords of the message at index i (keywords:
 * space-separated, NULL = unchanged; more than 26 distinct keywords in a
 * folder are refused). Bumps its modseq; the file takes its new name at
 * the next store_names_flush().
 */
int store_msg_set_flags(struct store_mailbox *box, unsigned int i,
    unsigned int flags, const char *keywords, char **error_r);
/*
 * STORE's +FLAGS/-FLAGS/FLAGS (op '+', '-', '='): applies flags and
 * keywords (space-separated, NULL = keywords unchanged) to the message's
 * flags as the index has them now, not as this session last saw them, so
 * concurrent changes by other sessions are kept. The array entry gets the
 * result (with those other changes). Returns 1 if the message was expunged
 * meanwhile (nothing done), 0 on success, -1 on error.
 */
int store_msg_change_flags(struct store_mailbox *box, unsigned int i, char op,
    unsigned int flags, const char *keywords, char **error_r);
/* Expunges the messages with these UIDs (missing ones are ignored). */
int store_mailbox_expunge(struct store_mailbox *box, const uint32_t *uids,
    unsigned int count, char **error_r);
/*
 * Stores a new message (written to tmp/, fsync'd, renamed into cur/, the
 * directory fsync'd) and returns its UID (UIDPLUS). internaldate 0 = now.
 * data has CRLF line ends as IMAP sends it; the file gets LF line ends (a
 * lone CR is kept), like every other Maildir file.
 */
int store_mailbox_append(struct store_mailbox *box, const void *data,
    size_t len, unsigned int flags, const char *keywords, time_t internaldate,
    uint32_t *uid_r, char **error_r);
/*
 * Several messages at once (MULTIAPPEND, RFC 3502): all are stored or,
 * on any failure, none (written to tmp/ first, then moved into cur/ and
 * indexed in one transaction). uids_r[i] is the UID of msgs[i].
 */
struct store_append {
	const void *data;	/* CRLF line ends, as IMAP sends it */
	size_t len;
	unsigned int flags;
	const char *keywords;	/* space-separated, or NULL */
	time_t internaldate;	/* 0 = now */
};
int store_mailbox_append_many(struct store_mailbox *box,
    const struct store_append *msgs, unsigned int count, uint32_t *uids_r,
    char **error_r);
/*
 * The same in three steps, so that the fsyncs can run on a pool thread:
 * begin (loop: checks, names the files, may write dovecot-keywords; msgs
 * may be freed afterwards), write (any thread; touches nothing but op:
 * writes every file to tmp/ and fsyncs it, renames them all into cur/,
 * fsyncs cur/; on a failure removes what it wrote), finish (loop: the
 * UIDs in one transaction; frees op, also after a failed write). The
 * handle must stay open until finish.
 */
struct store_append_op;
int store_append_begin(struct store_mailbox *box, const struct store_append *msgs,
    unsigned int count, struct store_append_op **op_r, char **error_r);
void store_append_write(struct store_append_op *op);
int store_append_finish(struct store_append_op **op, uint32_t *uids_r,
    char **error_r);
/*
 * UIDs expunged from the folder with a modseq above modseq, ascending
 * (QRESYNC). *complete_r is false when the log does not reach back that
 * far (a rebuilt or pruned index): then any UID not in the folder may
 * have been expunged.
 */
int store_mailbox_expunged_since(struct store_mailbox *box, uint64_t modseq,
    uint32_t **uids_r, unsigned int *count_r, bool *complete_r,
    char **error_r);

/*
 * POP3 UIDLs that match what Dovecot gave for a folder migrated from it:
 * (*uidls_r)[i] for message i of the view is malloc'd, or NULL where the
 * folder keeps tegami's own UIDLs (the base name, pop3box.h). A folder is
 * Dovecot's when tegami first saw it with a dovecot-uidlist it had not
 * written: then the UID and UIDVALIDITY in hex (Dovecot's default
 * pop3_uidl_format %08Xu%08Xv, which it writes in lower case), or the
 * UIDL Dovecot kept for the message ("P" in the uidlist). Free each and the array.
 */
int store_mailbox_pop3_uidls(struct store_mailbox *box, char ***uidls_r,
    char **error_r);

/*
 * Copies messages (by index in src) into dst, hard-linked where the
 * filesystem allows; dst_uids_r[i] is the UID given to the copy of
 * indexes[i] (COPYUID). Flags and keywords come along.
 */
int store_mailbox_copy(struct store_mailbox *src, const unsigned int *indexes,
    unsigned int count, struct store_mailbox *dst, uint32_t *dst_uids_r,
    char **error_r);

/*
 * The cached ENVELOPE and BODYSTRUCTURE text of a message (as the IMAP
 * layer rendered them; opaque here). get: 1 and malloc'd strings (either
 * may be NULL) when something is cached, 0 when not, -1 on error.
 */
int store_msg_cache_get(struct store_mailbox *box, uint32_t uid,
    char **envelope_r, char **bodystructure_r);
int store_msg_cache_set(struct store_mailbox *box, uint32_t uid,
    const char *envelope, const char *bodystructure, char **error_r);
/* All cached renderings at once; body is FETCH BODY (no extension data). */
struct store_msg_cache {
	char *envelope, *bodystructure, *body;
};
/* 1 = something cached (malloc'd fields, NULL when not), 0 none, -1 error. */
int store_msg_cache_load(struct store_mailbox *box, uint32_t uid,
    struct store_msg_cache *c);
/* Sets the non-NULL fields. */
int store_msg_cache_store(struct store_mailbox *box, uint32_t uid,
    const struct store_msg_cache *c, char **error_r);
void store_msg_cache_free(struct store_msg_cache *c);
/*
 * The cache of every message with a UID in lo..hi, in one query (a FETCH
 * over many messages): ascending *uids_r and (*c_r)[i] for uids[i], both
 * malloc'd. 0 or -1.
 */
int store_msg_cache_load_range(struct store_mailbox *box, uint32_t lo,
    uint32_t hi, uint32_t **uids_r, struct store_msg_cache **c_r,
    unsigned int *n_r);

/*
 * Opaque data an upper layer derives from a message and keeps in the
 * index (the IMAP SORT and THREAD keys): kind names the format, so a
 * changed format just misses ("imap-sort-1", then "imap-sort-2"). load
 * first drops the rows of expunged messages and of an older UIDVALIDITY,
 * then calls fn for every row of the folder, in UID order; save writes
 * n rows in one transaction. 0, or -1 with *error_r.
 */
typedef void store_blob_fn(uint32_t uid, const void *data, size_t len,
    void *ctx);
int store_msg_blobs_load(struct store_mailbox *box, const char *kind,
    store_blob_fn *fn, void *ctx, char **error_r);
int store_msg_blobs_save(struct store_mailbox *box, const char *kind,
    const uint32_t *uids, const void *const *data, const size_t *lens,
    unsigned int n, char **error_r);

/* Maildir file name helpers (exposed for tests). */
unsigned int store_flags_from_letters(const char *letters);
/* Fills out (>= 8 bytes) with the system flag letters in ASCII order. */
void store_flags_to_letters(unsigned int flags, char *out);

#endif
