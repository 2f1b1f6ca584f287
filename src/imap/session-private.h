/* Internals of the IMAP engine shared by session.c and the cmd_*.c files. */
#ifndef TEGAMI_IMAP_SESSION_PRIVATE_H
#define TEGAMI_IMAP_SESSION_PRIVATE_H

#include "imap/parser.h"
#include "imap/session.h"
#include "lib/buf.h"
#include "store/mailbox.h"

#include <event2/event.h>

enum imap_state {
	IMAP_STATE_NOT_AUTH,
	IMAP_STATE_AUTH,
	IMAP_STATE_SELECTED,
	IMAP_STATE_LOGOUT,
};

enum imap_cmd_flags {
	CMD_NOT_AUTH = 1 << 0,	/* allowed before login */
	CMD_AUTH = 1 << 1,	/* allowed once logged in */
	CMD_SELECTED = 1 << 2,	/* needs a selected mailbox */
	CMD_UID = 1 << 3,	/* has a UID form */
	CMD_URLAUTH = 1 << 4,	/* only when URLAUTH is offered */
};

struct imap_session;

/*
 * A command handler: args are the command's arguments (after "UID X" for
 * the UID form). Returns after having sent the tagged reply (or, for an
 * ASYNC command, having arranged for it).
 */
typedef void imap_cmd_fn(struct imap_session *s, const struct imap_arg *args,
    unsigned int nargs, bool uid);

struct imap_cmd_def {
	const char *name;
	imap_cmd_fn *fn;
	unsigned int flags;
};

enum imap_wait {
	WAIT_NONE,
	WAIT_AUTH_HOOK,		/* on_auth asked */
	WAIT_AUTH_DATA,		/* AUTHENTICATE PLAIN: "+ " sent */
	WAIT_IDLE,		/* IDLE: waiting for DONE */
	WAIT_OUTPUT,		/* a long reply waits for the client to read */
	WAIT_JOB,		/* blocking store work is on the pool */
};

struct imap_job;

/*
 * A command whose reply is too big to queue at once (FETCH 1:* BODY[])
 * goes on in steps: the engine calls fn again when the output buffer has
 * drained below the low mark; fn clears s->cont when it has sent the
 * tagged reply. free_fn releases state if the session ends first.
 */
struct imap_cont {
	void (*fn)(struct imap_session *s);
	void (*free_fn)(void *state);
	void *state;
};

/* Output queued above this makes a long command pause. */
#define IMAP_OUTPUT_HIGH (1024 * 1024)
#define IMAP_OUTPUT_LOW (256 * 1024)

struct imap_session {
	struct event_base *base;
	struct bufferevent *bev;
	struct imap_settings set;
	const struct imap_hooks *hooks;
	void *ctx;
	struct imap_parser *parser;
	char sid[17];		/* for log lines */
	char *user;		/* log-escaped login name being tried */
	char *login;		/* that name as sent, while on_auth runs */
	char *account;		/* the account logged in (URLAUTH, quota) */
	bool auth_mech_login;	/* AUTHENTICATE LOGIN (else PLAIN) */
	char *auth_login;	/* LOGIN: the user name, until the password */
	enum imap_state state;
	enum imap_wait wait;
	char *tag;		/* of the command being run */
	struct event *resume_ev;
	struct event *idle_ev;
	struct event *drain_ev;		/* closing: waiting for the socket */
	unsigned int drain_ticks;
	bool closing;
	bool utf8;		/* ENABLE UTF8=ACCEPT */
	bool tls;		/* STARTTLS done */
	bool compressed;	/* COMPRESS=DEFLATE active */
	bool condstore;		/* CONDSTORE enabled (RFC 7162 §3.1) */
	bool rev2;		/* ENABLE IMAP4rev2 (RFC 9051): no \Recent,
				   ESEARCH replies, LIST in SELECT */
	bool qresync;		/* QRESYNC enabled (RFC 7162 §3.2): VANISHED */
	struct imap_cont cont;	/* fn != NULL while WAIT_OUTPUT */
	unsigned int idle_polls; /* since the last keepalive line */
	struct event *notify_ev; /* the store says the folder changed */
	struct imap_job *job;	/* set while WAIT_JOB */
	bool watching;		/* holds a reference on the inotify reader */
	struct imap_notify *notify; /* NOTIFY SET is in force (cmd_notify.c) */

	struct store_account *acct;
	struct store_mailbox *box;
	bool readonly;
	/* the client's view is the store handle's (UIDs by sequence
	   number); nview = how many messages the client was told of */
	unsigned int nview;
	/* keywords the client was told of in FLAGS (space-separated) */
	char *keywords_known;
	/* UIDs that are \Recent in this session, ascending */
	uint32_t *recent;
	unsigned int nrecent;

	/* SEARCHRES (RFC 5182): the saved result "$", UIDs ascending */
	uint32_t *searchres;
	unsigned int nsearchres;
	/* CONTEXT=SEARCH/SORT (RFC 5267): searches kept up to date */
	struct imap_context *contexts;
	/* SORT and THREAD keys of the selected mailbox's messages */
	struct imap_sortcache *sortcache;
};

/* output */
void imap_printf(struct imap_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void imap_write(struct imap_session *s, const void *data, size_t len);
/* "<tag> OK|NO|BAD <text>\r\n" for the current command. */
void imap_tagged(struct imap_session *s, const char *status,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Pause the current command until the client has read its output. */
void imap_cont_set(struct imap_session *s, void (*fn)(struct imap_session *),
    void (*free_fn)(void *), void *state);
/* The command is over (tagged reply sent): read commands again. */
void imap_cont_done(struct imap_session *s);
size_t imap_output_pending(const struct imap_session *s);

/*
 * Runs work(arg) on the settings' pool (in line when there is none), then
 * done(s, arg) on the loop, which sends the tagged reply; no command is
 * read meanwhile. work must touch nothing but arg. If the session ended
 * meanwhile, done gets s == NULL and only cleans up.
 */
void imap_run_blocking(struct imap_session *s, void (*work)(void *arg),
    void (*done)(struct imap_session *s, void *arg), void *arg);

/* Sync the selected mailbox and tell the client (EXPUNGE, EXISTS, FETCH). */
void imap_sync_selected(struct imap_session *s);
/*
 * A CONDSTORE-enabling command (FETCH MODSEQ, STORE UNCHANGEDSINCE,
 * SEARCH MODSEQ): turns CONDSTORE on, the first time with
 * "* OK [HIGHESTMODSEQ n]" (RFC 7162 §3.1).
 */
void imap_condstore_enable(struct imap_session *s);
/* The view's index of a UID (store array index equals view index). */
int imap_view_find_uid(const struct imap_session *s, uint32_t uid);
/* The highest UID in the view, 0 when empty. */
uint32_t imap_view_last_uid(const struct imap_session *s);
/*
 * A mailbox was selected (s->box set) or is about to be closed: start or
 * stop being told of its changes (IDLE push).
 */
void imap_watch_selected(struct imap_session *s, bool on);
/*
 * QRESYNC (RFC 7162 3.2.5, 3.2.6): "* VANISHED (EARLIER) ..." for the UIDs
 * expunged with a modseq above modseq, within set (normalized UIDs; NULL =
 * any). When the expunge log does not reach back that far, every UID of
 * set (or below UIDNEXT) that is not in the view, as the RFC allows.
 */
void imap_send_vanished_earlier(struct imap_session *s,
    const struct imap_seqset *set, uint64_t modseq);
/*
 * Takes (on) or drops a reference on the event loop's reader of the
 * store's inotify descriptor; *held says whether this holder has one.
 */
void imap_watch_reader(struct imap_session *s, bool *held, bool on);
/* Flags of a message as an IMAP list "(\Seen $Junk)". */
void imap_append_flags(struct buf *out, const struct store_msg *m, bool recent);
/* Is uid \Recent in this session? */
bool imap_msg_recent(const struct imap_session *s, uint32_t uid);
/*
 * Takes the selected folder's not yet recent messages as this session's
 * \Recent ones (EXAMINE: looks without taking them) and returns how many
 * messages in the view are recent.
 */
unsigned int imap_recent_update(struct imap_session *s);
/*
 * Adds keywords (space-separated) to those the client knows of; returns
 * true if any was new. Does not write anything.
 */
bool imap_keywords_learn(struct imap_session *s, const char *keywords);
/* Writes the FLAGS and PERMANENTFLAGS responses with the known keywords. */
void imap_write_flags(struct imap_session *s);
/*
 * Before a FETCH response shows message keywords: if any is new to the
 * client, first send FLAGS again (RFC 9051 7.3.5: keywords in FETCH must
 * have been announced in FLAGS).
 */
void imap_keywords_announce(struct imap_session *s, const char *keywords);
/*
 * Parses a sequence set (seq numbers, or UIDs when uid) against the view
 * into store array indexes, ascending. -1: BAD sent.
 */
int imap_resolve_set(struct imap_session *s, const char *set, bool uid,
    unsigned int **idx_r, unsigned int *n_r);
/* Parses "(\Seen \Flagged kw)" into flags and keywords (malloc'd). -1 = bad. */
int imap_parse_flag_list(const struct imap_arg *arg, unsigned int *flags_r,
    char **keywords_r);

/* SEARCHRES, CONTEXT and sort caches: context.c */
/* Forgets "$", the contexts and the sort cache (mailbox closed). */
void imap_search_reset(struct imap_session *s);
/* uid (sequence number seq) is about to be reported expunged. */
void imap_context_expunged(struct imap_session *s, uint32_t uid,
    unsigned int seq);
/* Sends ADDTO/REMOVEFROM for contexts whose result changed. */
void imap_context_notify(struct imap_session *s);

/* UTF8=ACCEPT mailbox names: utf8.c */
/*
 * Once UTF8=ACCEPT is enabled: rewrites the command's mailbox name
 * arguments from UTF-8 to the store's modified UTF-7. -1: BAD sent.
 */
int imap_utf8_mailbox_args(struct imap_session *s, const char *cmd,
    const struct imap_arg *args, unsigned int nargs);
/* A store mailbox name as the client wants it (UTF-8 once enabled). */
void imap_append_mailbox(struct imap_session *s, struct buf *out,
    const char *name);

/* LIST pattern match ('*', '%'; INBOX in any case), cmd_mailbox.c */
bool imap_list_match(const char *pattern, const char *name);
/* STATUS: are these items all known? */
bool imap_status_items_valid(const struct imap_arg *items, unsigned int n);
/* Writes "* STATUS name (...)" (items checked first); -1 with *error_r. */
int imap_status_write(struct imap_session *s, const char *name,
    const struct imap_arg *items, unsigned int nitems, char **error_r);
/*
 * Adds the levels of hierarchy that are no folder themselves ("a" and
 * "a.b" of a folder "a.b.c") as entries that neither exist nor are
 * subscribed, with has_children (cmd_list.c).
 */
void imap_folders_add_parents(struct store_folder **listp, unsigned int *countp);
/* Is name, such a level, listed by one of the patterns? */
bool imap_list_parent_match(char *const *patterns, unsigned int n,
    const char *name);
/* LIST with RFC 5258 syntax (cmd_list.c) */
void imap_list_extended(struct imap_session *s, const struct imap_arg *a,
    unsigned int n);

/* BODY[section] bytes, CRLF (cmd_fetch.c); -1 for a section not valid. */
struct mime_message;
int imap_section_data(struct mime_message *msg, const char *section,
    struct buf *out);

/* quota (cmd_quota.c): the account's limit now, 0 = none */
uint64_t imap_quota_limit(struct imap_session *s);
/* May adding bytes to mailbox (NULL = any) stay within the quota? 0 / -1 */
int imap_quota_check(struct imap_session *s, const char *mailbox,
    uint64_t adding);

struct imap_url;
/* Does the URL's user (and host) name this session's account? (cmd_urlauth.c) */
bool imap_url_names_account(const struct imap_session *s,
    const struct imap_url *u);

/* commands: cmd_mailbox.c */
imap_cmd_fn imap_cmd_select, imap_cmd_examine, imap_cmd_create, imap_cmd_delete, imap_cmd_rename,
    imap_cmd_subscribe, imap_cmd_unsubscribe, imap_cmd_list, imap_cmd_lsub, imap_cmd_status,
    imap_cmd_close, imap_cmd_unselect, imap_cmd_namespace, imap_cmd_check;
/* cmd_fetch.c */
imap_cmd_fn imap_cmd_fetch;
/* cmd_store.c */
imap_cmd_fn imap_cmd_store, imap_cmd_expunge, imap_cmd_copy, imap_cmd_move;
/* cmd_append.c */
imap_cmd_fn imap_cmd_append;
/* cmd_notify.c (RFC 5465) */
imap_cmd_fn imap_cmd_notify;
/* The session ends: NOTIFY off, its mailbox handles closed. */
void imap_notify_free(struct imap_session *s);
/* Are the selected mailbox's changes pushed now (NOTIFY, no command)? */
bool imap_notify_selected_push(const struct imap_session *s);
/* The view grew from from to to messages: MessageNew's FETCH for each. */
void imap_notify_new_messages(struct imap_session *s, unsigned int from,
    unsigned int to);
/* A command is over: send the notifications that waited for it. */
void imap_notify_command_done(struct imap_session *s);
/*
 * s changed the account's mailbox list (oldname: RENAME's old name): the
 * account's other NOTIFY sessions get LIST responses (MailboxName,
 * SubscriptionChange) and watch the mailboxes their filters now take;
 * on_mailbox_change tells the other processes.
 */
void imap_notify_mailbox_change(struct imap_session *s,
    enum imap_notify_change what, const char *name, const char *oldname);
/* MessageNew's fetch attributes, parsed once (cmd_fetch.c); NULL: invalid */
struct imap_fetch_spec;
struct imap_fetch_spec *imap_fetch_spec_new(const struct imap_arg *atts);
void imap_fetch_spec_free(struct imap_fetch_spec **f);
/* "* n FETCH (UID u ...)" of the selected mailbox's message at idx. */
void imap_fetch_spec_send(struct imap_session *s, struct imap_fetch_spec *f,
    unsigned int idx);
/* cmd_quota.c */
imap_cmd_fn imap_cmd_getquota, imap_cmd_getquotaroot, imap_cmd_setquota;
/* cmd_urlauth.c */
imap_cmd_fn imap_cmd_genurlauth, imap_cmd_resetkey, imap_cmd_urlfetch;
/* cmd_search.c, cmd_sort.c, cmd_thread.c */
imap_cmd_fn imap_cmd_search, imap_cmd_cancelupdate, imap_cmd_sort,
    imap_cmd_thread;

#endif
