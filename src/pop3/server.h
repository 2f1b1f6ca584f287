/*
 * pop3/server: the POP3 server protocol engine (RFC 1939, RFC 2449 CAPA,
 * RFC 2595 STLS, RFC 5034 SASL AUTH with PLAIN, RFC 3206 response codes),
 * apart from policy.
 *
 * The engine enforces states (AUTHORIZATION -> TRANSACTION -> UPDATE),
 * syntax, limits and timeouts, and streams messages. Passwords and the
 * mailbox are the glue's (daemon/imapd.c), asked through struct
 * pop3_hooks. A session runs on any bufferevent, so tests and fuzzers
 * drive it over a bufferevent_pair.
 *
 * == The reply contract (as in smtp/server.h) ==
 *
 * Hooks marked ASYNC are questions: the engine reads no command until the
 * glue answers with exactly one call: pop3_session_reply() for any of
 * them, or pop3_session_open_ok() for on_open. The answer may come from
 * inside the hook or later from any event-loop callback. Replying when no
 * question is open panics. If the connection goes while a question is
 * open, the engine waits for the answer and throws it away; then
 * on_disconnect() is the last call for the session.
 *
 * == Policies ==
 *
 * - Command lines end in CRLF; a bare LF is accepted too (clients and
 *   RFC 1939 servers have always allowed it). At most 255 octets before
 *   the line end (RFC 2449 section 4); a longer line is read away and
 *   answered "-ERR Line too long", counted as an error. AUTH continuation
 *   lines may be up to 2048 octets (RFC 5034 lifts the limit for them).
 * - Commands are case-insensitive; a NUL or control byte: -ERR.
 * - USER/PASS and AUTH need TLS, or settings->plaintext_auth (the glue
 *   sets it for loopback clients): else "-ERR [AUTH] ... STLS first"
 *   (RFC 3206). Before that CAPA lists STLS but not USER nor SASL.
 * - STLS: plaintext after the STLS line is thrown away (command injection
 *   defence); the session then starts over in AUTHORIZATION.
 * - Protocol errors (an -ERR the engine makes for bad syntax, an unknown
 *   command, a wrong state, a line too long) count towards max_errors;
 *   reaching it ends the session. A wrong password does not count here
 *   (the glue makes each failure cost a second).
 * - RETR and TOP stream the file from the fd the glue gives: LF line ends
 *   become CRLF (CRLF stays), a line starting with '.' gets one more '.',
 *   a missing last line end is added, then ".\r\n". At most 64 KiB wait
 *   in the output: reading the file resumes when the client has taken
 *   them, so a 20 MB message never sits in memory.
 * - DELE marks; RSET unmarks; only QUIT in TRANSACTION asks on_commit
 *   with the marked messages (UPDATE state). A lost connection, a timeout
 *   or a shutdown commits nothing.
 * - Idle timeout: cmd_timeout_ms (default 10 minutes, RFC 1939's least).
 * - AUTH secrets are wiped from the buffers and never logged.
 */
#ifndef TEGAMI_POP3_SERVER_H
#define TEGAMI_POP3_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct bufferevent;
struct ssl_ctx_st;

#define POP3_CMD_LINE_MAX	255
#define POP3_AUTH_LINE_MAX	2048
#define POP3_UIDL_MAX		70

struct pop3_server_settings {
	const char *hostname;		/* in the greeting */
	struct ssl_ctx_st *ssl_ctx;	/* STLS offered when not NULL (and no TLS yet) */
	bool plaintext_auth;		/* logins allowed without TLS */
	unsigned int cmd_timeout_ms;	/* idle wait for a command (0 = 600 s) */
	unsigned int write_timeout_ms;	/* client not reading (0 = 300 s) */
	unsigned int max_errors;	/* protocol errors before close (0 = 10) */
};

/* One message of the maildrop as the glue lists it. */
struct pop3_msg {
	uint64_t size;			/* octets with CRLF line ends */
	const char *uidl;		/* 1..70 chars in 0x21..0x7E */
};

struct pop3_session;

struct pop3_hooks {
	/*
	 * ASYNC. A client connected. pop3_session_reply(s, true, ...) lets
	 * the engine send its greeting; false sends "-ERR <text>" and closes.
	 */
	void (*on_connect)(struct pop3_session *s, void *ctx);
	/*
	 * ASYNC. USER/PASS ("USER") or AUTH PLAIN ("PLAIN"): authzid ("" if
	 * none), login, password (NUL-terminated; wiped when the hook
	 * returns: copy it to check it on a thread). Answer true with the
	 * account's name as the text (the engine then asks on_open for it; ""
	 * means the login itself; "user@dom*master" logs in as "user@dom")
	 * or false with the text after
	 * "-ERR " (e.g. "[AUTH] Authentication failed"; "[SYS/TEMP] ..." for
	 * a temporary failure).
	 */
	void (*on_auth)(struct pop3_session *s, const char *mech,
	    const char *authzid, const char *login, char *password, void *ctx);
	/*
	 * ASYNC. Lock and list the maildrop of user (the login on_auth
	 * accepted). Answer pop3_session_open_ok() with the list, or
	 * pop3_session_reply(s, false, "[IN-USE] ...") (the session stays in
	 * AUTHORIZATION, RFC 1939).
	 */
	void (*on_open)(struct pop3_session *s, const char *user, void *ctx);
	/*
	 * SYNCHRONOUS. An fd to read message idx (0-based) from its start;
	 * the engine closes it. -1: the engine answers "-ERR Message is gone".
	 */
	int (*on_message_fd)(struct pop3_session *s, size_t idx, void *ctx);
	/*
	 * ASYNC. QUIT in TRANSACTION: remove the messages with deleted[i]
	 * (count entries, as listed). Answer true ("+OK" sent, session over)
	 * or false with the text ("-ERR [SYS/TEMP] ..."; the session ends too).
	 */
	void (*on_commit)(struct pop3_session *s, const bool *deleted,
	    size_t count, void *ctx);
	/* SYNCHRONOUS. The last call for this session. */
	void (*on_disconnect)(struct pop3_session *s, void *ctx);
};

/*
 * Starts a session. bev is owned by the session from now on (for 995 a
 * bufferevent_openssl in the accepting state). settings is copied (the
 * hostname must outlive the session; the session takes its own reference
 * on ssl_ctx). hooks must outlive the session. remote may be NULL. Calls
 * on_connect before it returns. Never fails.
 */
struct pop3_session *pop3_session_new(struct event_base *base,
    struct bufferevent *bev, const struct pop3_server_settings *settings,
    const struct pop3_hooks *hooks, void *hook_ctx,
    const struct sockaddr *remote, socklen_t remote_len);

/* Answers the open question (see above); text: after "+OK " or "-ERR ". */
void pop3_session_reply(struct pop3_session *s, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Answers the open question with "-ERR <text>" and ends the session once
 * that is sent: a client that may not try again (its address is banned).
 */
void pop3_session_refuse_close(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Answers on_open with the maildrop: msgs[0..count-1] (copied). The
 * session enters TRANSACTION.
 */
void pop3_session_open_ok(struct pop3_session *s, const struct pop3_msg *msgs,
    size_t count);

/*
 * Graceful stop: a session waiting for a command gets "-ERR [SYS/TEMP]
 * Server shutting down" and is closed without UPDATE; one that is
 * answering (a RETR, a commit) does so first.
 */
void pop3_session_shutdown(struct pop3_session *s);

/* Ends the session now (on_disconnect is called). Not from inside a hook. */
void pop3_session_destroy(struct pop3_session *s);

const char *pop3_session_id(const struct pop3_session *s);
const char *pop3_session_remote_ip(const struct pop3_session *s);
bool pop3_session_tls(const struct pop3_session *s);
/* The login accepted by on_auth, or NULL. */
const char *pop3_session_user(const struct pop3_session *s);
/* Messages sent whole by RETR, and marked deleted (at QUIT: committed). */
unsigned int pop3_session_retrieved(const struct pop3_session *s);
unsigned int pop3_session_deleted(const struct pop3_session *s);

#endif
