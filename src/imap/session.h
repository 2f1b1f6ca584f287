/*
 * imap/session: the IMAP server protocol engine (IMAP4rev1, RFC 3501, with
 * the rev2 behaviours clients rely on), apart from policy.
 *
 * A session runs on any bufferevent (a socket, TLS, or one end of a
 * bufferevent_pair in tests and fuzzers). The engine parses commands
 * (imap/parser), enforces the state rules (not authenticated,
 * authenticated, selected) through its command table, and works on the
 * account's store (store/mailbox). Who may log in, and where their Maildir
 * is, is asked of the glue through struct imap_hooks.
 *
 * == Hooks ==
 * on_auth is ASYNC: the engine stops reading commands until the glue calls
 * imap_session_auth_reply() exactly once (from inside the hook or later
 * from any loop callback). The engine then opens the account's store.
 * on_disconnect is the last call for a session; the pointer is invalid
 * afterwards.
 *
 * == Policies ==
 * - Command lines and literals are bounded (settings); a synchronizing
 *   literal over max_literal is refused before the client sends it
 *   (BAD [TOOBIG], or NO [TOOBIG] for APPEND); a line over max_line gets
 *   "* BYE" and the connection is closed.
 * - LOGIN and AUTHENTICATE PLAIN need a secure connection (settings->
 *   secure: TLS or loopback, or after STARTTLS); otherwise LOGINDISABLED
 *   is advertised.
 * - STARTTLS: bytes the client pipelined after the command are thrown
 *   away, never read as commands under TLS (CVE-2011-0411 class).
 * - Untagged EXPUNGE/EXISTS/FETCH FLAGS for changes made by others are sent
 *   after NOOP, CHECK, IDLE, SELECT, EXPUNGE, APPEND, COPY, MOVE, CLOSE,
 *   never during FETCH, STORE or SEARCH (RFC 9051 §7.4.1).
 * - Passwords are wiped once used and never logged.
 */
#ifndef TEGAMI_IMAP_SESSION_H
#define TEGAMI_IMAP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct bufferevent;
struct imap_session;

struct ssl_ctx_st;
struct pool;

/* What a session did to its account's mailbox list (NOTIFY, RFC 5465). */
enum imap_notify_change {
	NOTIFY_CHANGE_CREATE,
	NOTIFY_CHANGE_DELETE,
	NOTIFY_CHANGE_RENAME,
	NOTIFY_CHANGE_SUBSCRIBE,
	NOTIFY_CHANGE_UNSUBSCRIBE,
};

struct imap_settings {
	const char *hostname;
	bool secure;			/* TLS or loopback: logins allowed */
	/* STARTTLS is offered when set (port 143); after the handshake the
	   session counts as secure. NULL on 993 (TLS from the start). */
	struct ssl_ctx_st *ssl_ctx;
	size_t max_line;		/* command text (0 = 65536) */
	uint64_t max_literal;		/* APPEND size (0 = 10240000) */
	unsigned int idle_timeout_ms;	/* (0 = 30 minutes) */
	unsigned int idle_poll_ms;	/* IDLE poll period without inotify
					   (0 = 1000) */
	/* where blocking store work (APPEND's fsyncs) runs; NULL = on the
	   loop, in line */
	struct pool *pool;
	bool quota;			/* QUOTA offered (ENABLE_QUOTAS) */
	bool compress;			/* COMPRESS=DEFLATE offered */
	bool urlauth;			/* URLAUTH, URLAUTH=BINARY offered */
	/* Set: the greeting is "* BYE <text>" and the connection is closed
	   (a banned client; RFC 9051 7.1.5 allows BYE as a greeting). */
	const char *greeting_bye;
};

struct imap_hooks {
	/*
	 * ASYNC. LOGIN or AUTHENTICATE PLAIN with these credentials (the
	 * strings are wiped after the hook returns: copy what you keep).
	 * Answer with imap_session_auth_reply().
	 */
	void (*on_auth)(struct imap_session *s, const char *user,
	    const char *password, void *ctx);
	/* The session is over (LOGOUT, error, timeout, lost connection). */
	void (*on_disconnect)(struct imap_session *s, void *ctx);
	/*
	 * The logged-in account's storage limit in bytes now (it may change
	 * while the session runs); 0 = none. NULL: no limit.
	 */
	uint64_t (*quota)(struct imap_session *s, void *ctx);
	/*
	 * URLAUTH: the Maildir root of the account user (any case), malloc'd,
	 * or NULL when there is no such account. NULL: URLs naming another
	 * account than the session's are not resolved.
	 */
	char *(*account_maildir)(struct imap_session *s, const char *user,
	    void *ctx);
	/*
	 * Optional, SYNCHRONOUS: must not block (queue the work). Messages
	 * were put into folder `to` (names as store_mailbox_name gives them):
	 * by COPY or MOVE from folder `from`, with paths[0..n) the source
	 * files, which MOVE removes when the hook returns (open them now to
	 * read them later); or by APPEND (from and paths NULL, n 1), with
	 * data/len the message as the client sent it. Junk training hangs
	 * here (daemon/imapd.c).
	 */
	void (*on_filed)(struct imap_session *s, const char *from,
	    const char *to, const char *const *paths, unsigned int n,
	    const char *data, size_t len, void *ctx);
	/*
	 * Optional, SYNCHRONOUS. s changed the mailbox list of the account
	 * whose Maildir root is root (CREATE, DELETE, RENAME from oldname,
	 * (UN)SUBSCRIBE). This process's sessions know already; sessions in
	 * other processes learn of it when the glue hands it to
	 * imap_notify_foreign_change there.
	 */
	void (*on_mailbox_change)(struct imap_session *s, const char *root,
	    enum imap_notify_change what, const char *name,
	    const char *oldname, void *ctx);
};

/* Takes ownership of bev; sends the greeting. */
struct imap_session *imap_session_new(struct event_base *base,
    struct bufferevent *bev, const struct imap_settings *settings,
    const struct imap_hooks *hooks, void *ctx);
/*
 * The answer to on_auth: ok with the account's Maildir root, or !ok
 * (NO [AUTHENTICATIONFAILED]). The account name is the login as given.
 */
void imap_session_auth_reply(struct imap_session *s, bool ok,
    const char *maildir);
/* The same for a login that names an account (user, lower-case): ok. */
void imap_session_auth_ok(struct imap_session *s, const char *user,
    const char *maildir);
/*
 * The same for a good password that is refused anyway: "NO <resp>", resp
 * being "[CODE] text" (e.g. "[LIMIT] Too many sessions").
 */
void imap_session_auth_refuse(struct imap_session *s, const char *resp);
/*
 * The answer to on_auth for a client that may not try again (banned):
 * NO [AUTHENTICATIONFAILED], then "* BYE <bye>", and the connection is
 * closed.
 */
void imap_session_auth_refuse_bye(struct imap_session *s, const char *bye);
/*
 * A session of another process changed the mailbox list of the account
 * at root (its on_mailbox_change): this process's NOTIFY sessions of that
 * account are told, as of a change made here.
 */
void imap_notify_foreign_change(const char *root,
    enum imap_notify_change what, const char *name, const char *oldname);
/* Ends a session at once (shutdown, tests); on_disconnect is not called. */
void imap_session_destroy(struct imap_session *s);
/*
 * Ends a session at its next safe point (worker stop): at once, or when
 * its blocking store work is back (an APPEND being fsync'd still gets its
 * UID); on_disconnect is called.
 */
void imap_session_shutdown(struct imap_session *s);

#endif
