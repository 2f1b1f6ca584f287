/*
 * smtp/client: the SMTP client (RFC 5321) that delivers to other servers.
 *
 * One struct smtp_client drives one connection on a bufferevent the caller
 * has connected (or is connecting):
 *
 *   c = smtp_client_new(base, bev, &params, ready_cb, ctx);
 *     greeting, EHLO (HELO if refused), STARTTLS when offered (or
 *     required), EHLO again, AUTH PLAIN when credentials are given (only
 *     over TLS), then ready_cb(c, NULL, ctx) -- or ready_cb(c, &result,
 *     ctx) when the session failed before it was ready.
 *   smtp_client_send(c, &msg, done_cb, ctx);
 *     MAIL, RCPT..., DATA (or BDAT with CHUNKING), pipelined when the
 *     server offers PIPELINING; done_cb gets the per-recipient outcome.
 *     May be called again after done_cb for the next message (RSET first).
 *   smtp_client_quit(c);   QUIT, then the client frees itself.
 *
 * A reply is parsed into code, enhanced status code and text; every reply
 * line is bounded (SMTP_CLIENT_MAX_LINE) and so is the number of lines.
 * Peer text is kept for DSNs and logged escaped.
 */
#ifndef TEGAMI_SMTP_CLIENT_H
#define TEGAMI_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bufferevent;
struct event_base;
struct smtp_client;
typedef struct ssl_ctx_st SSL_CTX;

#define SMTP_CLIENT_MAX_LINE 2048
#define SMTP_CLIENT_MAX_REPLY_LINES 100
/* Reply text we keep (joined lines). */
#define SMTP_CLIENT_MAX_REPLY_TEXT 1024

enum smtp_tls_policy {
	SMTP_TLS_NONE,		/* never STARTTLS */
	SMTP_TLS_OPPORTUNISTIC,	/* STARTTLS when offered, unverified */
	SMTP_TLS_REQUIRED,	/* fail (temporarily) without TLS */
};

/* Extensions the server announced in its EHLO reply. */
enum smtp_ext {
	SMTP_EXT_PIPELINING = 1 << 0,
	SMTP_EXT_SIZE = 1 << 1,
	SMTP_EXT_8BITMIME = 1 << 2,
	SMTP_EXT_SMTPUTF8 = 1 << 3,
	SMTP_EXT_CHUNKING = 1 << 4,
	SMTP_EXT_STARTTLS = 1 << 5,
	SMTP_EXT_AUTH_PLAIN = 1 << 6,
	SMTP_EXT_ENHANCEDSTATUSCODES = 1 << 7,
};

enum smtp_status {
	SMTP_STATUS_OK,
	SMTP_STATUS_TEMPFAIL,
	SMTP_STATUS_PERMFAIL,
};

struct smtp_reply {
	int code;		/* 0: no reply (connection or local failure) */
	char enhanced[16];	/* "5.1.1" or "" */
	char text[SMTP_CLIENT_MAX_REPLY_TEXT];	/* lines joined by "\n" */
};

struct smtp_client_params {
	const char *helo_name;	/* our host name */
	const char *peer_name;	/* for SNI and logs */
	SSL_CTX *ssl_ctx;	/* client context; NULL = no TLS */
	enum smtp_tls_policy tls;
	/* AUTH PLAIN for relay hosts; sent only over TLS. NULL = none. */
	const char *auth_user;
	const char *auth_password;
	unsigned int timeout_secs;	/* per reply; 0 = 300 */
	unsigned int data_timeout_secs;	/* final reply to DATA; 0 = 600 */
};

/* The message's bytes: prefix (e.g. DKIM-Signature fields) then body. */
struct smtp_client_msg {
	const char *mail_from;	/* "" = null sender */
	const char *const *rcpts;
	size_t rcpt_count;
	uint64_t size;		/* prefix + body bytes, for SIZE= */
	/* 8-bit data: BODY=8BITMIME, and never to a server without it (the
	 * caller converts first, else it fails with 5.6.3). */
	bool needs_8bitmime;
	/* UTF-8 in the envelope or header: SMTPUTF8, else 5.6.7. */
	bool needs_smtputf8;
	const char *prefix;	/* may be NULL */
	/* The body, CRLF lines: from memory, or read from fd (not closed). */
	const void *data;
	size_t data_len;
	int fd;			/* used when data == NULL */
};

struct smtp_rcpt_result {
	enum smtp_status status;
	struct smtp_reply reply;	/* RCPT reply, or DATA's when that decided */
};

struct smtp_client_result {
	/* Session level: OK when the message went through (for some rcpts). */
	enum smtp_status status;
	struct smtp_reply reply;	/* the reply that decided, or ours */
	size_t rcpt_count;
	struct smtp_rcpt_result *rcpts;
	bool tls;		/* the session was encrypted */
	unsigned int extensions;	/* enum smtp_ext bits */
};

/*
 * ready: result NULL when the session is ready for smtp_client_send();
 * else the session failed (the client is then freed after the callback).
 */
typedef void smtp_client_ready_cb(struct smtp_client *client,
    const struct smtp_client_result *result, void *context);
/* The client is usable again (for send or quit) unless result says the
 * connection was lost (reply.code == 0); then it is freed after this. */
typedef void smtp_client_done_cb(struct smtp_client *client,
    const struct smtp_client_result *result, void *context);

/*
 * Takes ownership of bev (freed with the client). params strings are
 * copied.
 */
struct smtp_client *smtp_client_new(struct event_base *base,
    struct bufferevent *bev, const struct smtp_client_params *params,
    smtp_client_ready_cb *ready, void *context);
/* msg (and its strings and data) must stay valid until done runs. */
void smtp_client_send(struct smtp_client *client,
    const struct smtp_client_msg *msg, smtp_client_done_cb *done,
    void *context);
/* The enum smtp_ext bits of the server's last EHLO reply (for choosing
 * what to send once the session is ready). */
unsigned int smtp_client_extensions(const struct smtp_client *client);
/* Sends QUIT; the client frees itself. No callback follows. */
void smtp_client_quit(struct smtp_client *client);
/* Frees now, dropping the connection. No callback follows. */
void smtp_client_abort(struct smtp_client **client);

/*
 * Reply parser, fed one line (without CRLF) at a time. Returns 1 when the
 * reply is complete, 0 for more lines, -1 on a malformed line.
 */
struct smtp_reply_parser {
	struct smtp_reply reply;
	unsigned int lines;
	size_t text_len;
};
void smtp_reply_parser_init(struct smtp_reply_parser *p);
int smtp_reply_parser_line(struct smtp_reply_parser *p, const char *line,
    size_t len);
/* Parses one EHLO keyword line (e.g. "SIZE 1000") into bits and size. */
unsigned int smtp_ehlo_keyword(const char *line, size_t len,
    uint64_t *size_r);

#endif
