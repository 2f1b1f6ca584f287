/*
 * smtp/server: the SMTP server protocol engine (RFC 5321 with PIPELINING,
 * SIZE, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, STARTTLS, AUTH PLAIN/LOGIN,
 * CHUNKING and LIMITS), apart from policy.
 *
 * The engine enforces command order, syntax, limits, timeouts and
 * pipelining, and reads message bodies. Every decision that needs accounts,
 * aliases, the store or the queue is asked of the glue (daemon/smtpd.c)
 * through struct smtp_hooks. A whole session runs on any bufferevent, so
 * tests and fuzzers drive it over a bufferevent_pair.
 *
 * == The reply contract (asynchronous hooks, OpenSMTPD style) ==
 *
 * Hooks marked ASYNC are questions. After calling one, the engine stops
 * reading commands until the glue answers with exactly one call to
 * smtp_session_reply(). The glue may answer from inside the hook (the
 * engine is re-entrancy safe: the answer is recorded and acted on when the
 * hook returns) or later from any event-loop callback (the engine then
 * resumes from its own zero-timeout event, never from inside the reply
 * call). Replying when no question is open is a bug and panics.
 *
 * The engine sends the glue's reply to the client as given, except where
 * a hook's description says that a 2xx/354 answer makes the engine send
 * its own reply (greeting, EHLO, DATA 354). A reply of 421 always closes
 * the connection after it is sent.
 *
 * A NULL hook counts as an immediate accept (on_auth: 454 4.7.0).
 * Everything here runs on the event loop's thread: a hook that hands work
 * to lib/pool answers from the pool's done() callback.
 *
 * == Lifetime ==
 *
 * smtp_session_new() takes ownership of the bufferevent (create it with
 * BEV_OPT_CLOSE_ON_FREE so the socket is closed with it). The engine ends
 * the session by itself (QUIT, 421, timeout, error limit, connection lost).
 * If a question is open when the connection goes, the engine waits for its
 * answer (and throws it away), so every question is answered exactly once.
 * on_disconnect() is then the last call for the session: afterwards the
 * session pointer is invalid. smtp_session_destroy() ends a session at once
 * (shutdown, tests).
 *
 * == Transactions ==
 *
 * A transaction opens when on_mail is answered 2xx. From then on exactly
 * one of these ends it:
 *  - on_data_end, for a complete message the engine found nothing wrong
 *    with; the glue's answer (250 after the message is durable, or
 *    451/452/552/554) ends the transaction whatever it is;
 *  - on_tx_abort, for everything else: RSET, HELO/EHLO, STARTTLS, QUIT,
 *    lost connection, timeout, a message the engine refused (bare CR/LF,
 *    too big, on_data_chunk error, BDAT failure). The glue then throws
 *    away its spool file.
 * Between on_data_begin (answered 354) and the end, on_data_chunk gets the
 * body: after dot-unstuffing (DATA) or as sent (BDAT), with CRLF line ends
 * as sent, without the final ".\r\n", in pieces of at most 16 KiB. It is
 * synchronous. Once the engine has found the message bad it stops calling
 * on_data_chunk, keeps reading (so the session stays in step) and calls
 * on_tx_abort at the end. A refused on_data_begin leaves a DATA transaction
 * open (the client may retry or RSET); for BDAT the chunk is read away and
 * the transaction dropped (RFC 3030: no chunk may follow a failed one).
 *
 * == Policies ==
 *
 * - Command lines end in CRLF. A command line ending in a bare LF is
 *   refused with 500 5.5.2 and not run (see smtp/parser.h). A line longer
 *   than cmd_line_max is refused with 500 5.5.2 "Line too long" once its
 *   end arrives; none of its bytes is interpreted.
 * - NUL, other control characters and invalid UTF-8 in a command: 500 5.5.2.
 *   Valid UTF-8 in a path without the SMTPUTF8 parameter: 553 5.6.7.
 * - DATA and BDAT bodies: a bare CR or bare LF makes the message refused
 *   with 550 5.5.2 after its end (SMTP smuggling defence; only CRLF.CRLF
 *   ends DATA). Too big: read and thrown away, then 552 5.3.4. A line
 *   longer than data_line_max: 550 5.5.2.
 * - A client that does not read its replies is not read either (at most
 *   64 KiB of replies wait); a half-close (QUIT then FIN) still gets them.
 * - Protocol errors (5xx the engine makes itself) count towards max_errors;
 *   reaching it gives 421 4.7.0 and close. Refusals by hooks do not count.
 * - STARTTLS: plaintext that follows the STARTTLS command in the same
 *   packet is thrown away (command injection defence); after the
 *   handshake all session state is forgotten and the client must EHLO again.
 * - Port 587: only EHLO, HELO, STARTTLS, NOOP, RSET, QUIT and HELP before
 *   TLS (530 5.7.0 "Must issue a STARTTLS command first"); on 587 and 465
 *   MAIL needs AUTH (530 5.7.0 "Authentication required"). AUTH is offered
 *   only when settings->auth_enabled and the session is under TLS (else
 *   538 5.7.11 "Encryption required").
 * - GET, POST, HEAD, CONNECT (a browser or proxy aimed at us): 421, close.
 * - VRFY: 252 2.5.2 always (never tells whether an account exists).
 * - Logs: one key=value line per event with sid=; client text through
 *   log_escape(); AUTH data is never logged, and command bytes are wiped
 *   from the input buffers once read. connect/disconnect lines are at
 *   debug level here: the glue logs those events with its own details.
 */
#ifndef TEGAMI_SMTP_SERVER_H
#define TEGAMI_SMTP_SERVER_H

#include "mail/address.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct bufferevent;
struct ssl_ctx_st;

enum smtp_port_kind {
	SMTP_PORT_MTA = 0,		/* 25: no AUTH; STARTTLS when a ctx is given */
	SMTP_PORT_SUBMISSION,		/* 587: STARTTLS, then AUTH, then MAIL */
	SMTP_PORT_SUBMISSIONS,		/* 465: TLS from the start, AUTH, MAIL */
};

struct smtp_server_settings {
	const char *hostname;		/* in the greeting, EHLO and 421 replies */
	enum smtp_port_kind port_kind;
	uint64_t max_message_size;	/* SIZE; 552 5.3.4 over it (0 = 10240000) */
	unsigned int max_recipients;	/* 452 4.5.3 over it; LIMITS RCPTMAX (0 = 100) */
	size_t cmd_line_max;		/* longest command line without CRLF (0 = 4096) */
	size_t data_line_max;		/* longest body line (0 = 65536) */
	unsigned int cmd_timeout_ms;	/* idle wait for a command (0 = 300 s) */
	unsigned int data_timeout_ms;	/* wait for body bytes and for the client to
					 * read our replies (0 = 180 s) */
	unsigned int max_errors;	/* protocol errors before 421 (0 = 10) */
	unsigned int greet_pause_ms;	/* 0 = none; else early-talker test */
	struct ssl_ctx_st *ssl_ctx;	/* STARTTLS offered when not NULL */
	bool auth_enabled;		/* AUTH PLAIN LOGIN offered (after TLS) */
};

struct smtp_session;

/* Reply codes the glue uses to say "go on" where the engine writes the text. */
#define SMTP_REPLY_ACCEPT	250
#define SMTP_REPLY_DATA_GO	354

struct smtp_hooks {
	/*
	 * ASYNC. A client connected. Answer 2xx to let the engine send its
	 * "220 <hostname> ESMTP" greeting (after greet_pause_ms), or 554 or
	 * 421, which is sent and the connection closed.
	 */
	void (*on_connect)(struct smtp_session *s, void *ctx);
	/*
	 * ASYNC. HELO/EHLO with the name given (checked for syntax only).
	 * Answer 2xx to let the engine send its HELO/EHLO reply, or refuse.
	 */
	void (*on_helo)(struct smtp_session *s, const char *name, bool ehlo,
	    void *ctx);
	/*
	 * ASYNC. AUTH with the mechanism ("PLAIN" or "LOGIN"), authzid ("" if
	 * none), login and password (NUL-terminated; the password may contain
	 * any byte but NUL). The engine wipes password as soon as the hook
	 * returns: copy it (and wipe the copy) to check it on a thread. Answer
	 * 235 2.7.0 (the session is then authenticated as login) or
	 * 535 5.7.8 / 454 4.7.0.
	 */
	void (*on_auth)(struct smtp_session *s, const char *mech,
	    const char *authzid, const char *login, char *password, void *ctx);
	/*
	 * ASYNC. MAIL FROM with the reverse-path (null_path for <>); SIZE,
	 * BODY and SMTPUTF8 are already checked and readable with the getters.
	 * Answer 250 2.1.0 to open the transaction, or refuse.
	 */
	void (*on_mail)(struct smtp_session *s, const struct address *from,
	    void *ctx);
	/*
	 * ASYNC. RCPT TO with the forward-path (a bare <Postmaster> has an
	 * empty domain). The recipient limit is already checked. Answer 250
	 * 2.1.5 (recipient added to the transaction) or refuse (550 5.1.1...).
	 */
	void (*on_rcpt)(struct smtp_session *s, const struct address *to,
	    void *ctx);
	/*
	 * ASYNC. DATA or the first BDAT of a transaction with at least one
	 * recipient. Open the spool file; answer 354 (SMTP_REPLY_DATA_GO) to
	 * receive the body (the engine sends "354 ..." for DATA, nothing for
	 * BDAT), or refuse (451 4.3.0 ...): the transaction stays open.
	 */
	void (*on_data_begin)(struct smtp_session *s, void *ctx);
	/*
	 * SYNCHRONOUS. Body bytes (see "Transactions"). Return 0, or -1 on a
	 * write error: the engine then reads the rest, answers 451 4.3.0 and
	 * calls on_tx_abort. Do not call smtp_session_reply() here.
	 */
	int (*on_data_chunk)(struct smtp_session *s, const unsigned char *data,
	    size_t len, void *ctx);
	/*
	 * ASYNC. The body is complete and sound (size, line ends). Make it
	 * durable, then answer 250 2.0.0; or 451/452/552/554. The
	 * transaction is over after the answer, whatever it is.
	 */
	void (*on_data_end)(struct smtp_session *s, void *ctx);
	/* SYNCHRONOUS. The open transaction was dropped (reason: short text). */
	void (*on_tx_abort)(struct smtp_session *s, const char *reason, void *ctx);
	/* SYNCHRONOUS. A STARTTLS handshake finished. */
	void (*on_starttls_done)(struct smtp_session *s, void *ctx);
	/* SYNCHRONOUS. The last call for this session (see "Lifetime"). */
	void (*on_disconnect)(struct smtp_session *s, void *ctx);
};

/*
 * Starts a session on an accepted connection. base: the worker's loop;
 * bev: the connection, owned by the session from now on (for 465 a
 * bufferevent_openssl in the accepting state). settings is copied (the
 * hostname string must outlive the session; the session takes its own
 * reference on ssl_ctx, so the glue may drop its own on a certificate
 * reload). hooks must outlive the session. hook_ctx is given back to every
 * hook (typically the glue's per-connection struct); remote: the client's
 * address or NULL (tests). Calls on_connect before it returns, so the hook
 * must use its session argument (the glue's copy of the return value is
 * not set yet). Never fails.
 */
struct smtp_session *smtp_session_new(struct event_base *base,
    struct bufferevent *bev, const struct smtp_server_settings *settings,
    const struct smtp_hooks *hooks, void *hook_ctx,
    const struct sockaddr *remote, socklen_t remote_len);

/*
 * Answers the open question (see "The reply contract"). code: 3-digit SMTP
 * code; enhanced: "x.y.z" or NULL; fmt: the text (printf-style), which may
 * hold '\n' to make a multi-line reply. The session pointer stays valid
 * after the call.
 */
void smtp_session_reply(struct smtp_session *s, int code, const char *enhanced,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Is a question waiting for smtp_session_reply()? */
bool smtp_session_reply_pending(const struct smtp_session *s);

/*
 * Graceful stop (SIGTERM): an idle session gets "421 4.3.2 <hostname>
 * Service shutting down" now; a session in a transaction gets it when the
 * transaction ends. No new transaction is accepted.
 */
void smtp_session_shutdown(struct smtp_session *s);

/*
 * Ends the session now: drops the transaction (on_tx_abort), calls
 * on_disconnect and frees everything. Not from inside a hook. If a
 * question is open, its answer must not be given any more.
 */
void smtp_session_destroy(struct smtp_session *s);

/* Getters; strings belong to the session and are valid until it changes them. */
const char *smtp_session_id(const struct smtp_session *s);	/* 16 hex */
const char *smtp_session_remote_ip(const struct smtp_session *s); /* "192.0.2.1", "unknown" */
enum smtp_port_kind smtp_session_port_kind(const struct smtp_session *s);
const char *smtp_session_helo(const struct smtp_session *s);	/* NULL before HELO */
bool smtp_session_esmtp(const struct smtp_session *s);		/* EHLO rather than HELO */
bool smtp_session_tls(const struct smtp_session *s);
const char *smtp_session_tls_version(const struct smtp_session *s); /* "TLSv1.3" or NULL */
const char *smtp_session_tls_cipher(const struct smtp_session *s);  /* or NULL */
const char *smtp_session_auth_login(const struct smtp_session *s); /* NULL if none */
/* Transaction (NULL/0 when none is open). */
const struct address *smtp_session_mail_from(const struct smtp_session *s);
unsigned int smtp_session_rcpt_count(const struct smtp_session *s);
const struct address *smtp_session_rcpt(const struct smtp_session *s,
    unsigned int i);
bool smtp_session_smtputf8(const struct smtp_session *s);
bool smtp_session_8bitmime(const struct smtp_session *s);	/* BODY=8BITMIME */
const char *smtp_session_body_type(const struct smtp_session *s); /* "7BIT", "8BITMIME" or NULL */
uint64_t smtp_session_declared_size(const struct smtp_session *s); /* SIZE= or 0 */
uint64_t smtp_session_body_size(const struct smtp_session *s);	/* bytes so far */
bool smtp_session_chunking(const struct smtp_session *s);	/* body came by BDAT */

#endif
