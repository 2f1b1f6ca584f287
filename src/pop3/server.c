/*
 * pop3/server: the POP3 server session (contract in server.h).
 *
 * Shape as smtp/server.c: one state enum changed only by
 * pop3_enter_state(); a table with one row per command (the states it is
 * allowed in, whether it takes arguments); the questions to the glue
 * (hooks) answered through pop3_session_reply(). Every libevent callback
 * is a top-level entry and ends with session_maybe_finish(), the only
 * place a session is freed.
 */
#include "pop3/server.h"

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "mail/decode.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#define DEFAULT_CMD_TIMEOUT	600000
#define DEFAULT_WRITE_TIMEOUT	300000
#define DEFAULT_MAX_ERRORS	10
#define REPLY_TEXT_MAX		512
#define OUT_MAX			65536	/* output waiting before we stop */
#define FILE_CHUNK		16384
#define CLOSE_POLL_MS		10
#define AUTH_DECODED_MAX	1024

enum pop3_state {
	POP3_STATE_CONNECTED = 0,	/* before the greeting */
	POP3_STATE_AUTHORIZATION,
	POP3_STATE_AUTH_CONT,		/* reading the AUTH PLAIN response line */
	POP3_STATE_TLS,			/* STLS handshake under way */
	POP3_STATE_TRANSACTION,
	POP3_STATE_STREAM,		/* sending a RETR/TOP answer */
	POP3_STATE_UPDATE,		/* QUIT: the commit is under way */
	POP3_STATE_CLOSING,		/* sending the last reply */
	POP3_STATE_CLOSED,
};

static const char *const state_names[] = {
	"connected", "authorization", "auth", "tls", "transaction", "stream",
	"update", "closing", "closed",
};

enum pop3_question {
	Q_NONE = 0,
	Q_CONNECT,
	Q_AUTH,
	Q_OPEN,
	Q_COMMIT,
};

/* The byte stream of RETR/TOP: LF -> CRLF, dot-stuffing, TOP's cut. */
struct stream {
	int fd;
	bool top;
	bool retr;
	uint64_t top_lines;		/* body lines TOP sends */
	uint64_t body_lines;		/* body lines sent */
	bool in_header;
	bool line_start;
	bool line_empty;
	bool prev_cr;
};

struct pop3_session {
	char id[17];
	char ip[INET6_ADDRSTRLEN];
	struct event_base *base;
	struct bufferevent *bev;
	struct pop3_server_settings cfg;
	const struct pop3_hooks *hooks;
	void *ctx;

	enum pop3_state state;
	enum pop3_question question;
	bool in_hook;
	bool shutdown;
	bool eof;
	bool tls_logged;
	bool skipping;			/* reading away a line that is too long */

	struct event *timer;
	struct event *resume_ev;
	struct timeval close_deadline;

	char *user;			/* from USER */
	char *asked_login;		/* on_auth is asked about it */
	char *login;			/* accepted */
	unsigned int errors;
	unsigned int commands;

	struct pop3_msg *msgs;		/* uidl strings owned */
	bool *deleted;
	size_t count;
	unsigned int ndeleted;
	unsigned int retrieved;
	struct stream st;
};

struct pop3_cmd {
	const char *name;
	unsigned int states;		/* 1 << enum pop3_state */
	void (*run)(struct pop3_session *s, const char *args);
};

#define IN_AUTHZ	(1u << POP3_STATE_AUTHORIZATION)
#define IN_TRANS	(1u << POP3_STATE_TRANSACTION)

static void session_process(struct pop3_session *s);
static void session_close(struct pop3_session *s, const char *reason);
static void event_cb(struct bufferevent *bev, short what, void *arg);
static void read_cb(struct bufferevent *bev, void *arg);
static void write_cb(struct bufferevent *bev, void *arg);

/* ------------------------------------------------------------------ */
/* state and output */

static void
pop3_enter_state(struct pop3_session *s, enum pop3_state state)
{
	if (s->state == state)
		return;
	log_trace("sid=%s event=state old=%s new=%s", s->id,
	    state_names[s->state], state_names[state]);
	s->state = state;
}

static bool
session_gone(const struct pop3_session *s)
{
	return s->state == POP3_STATE_CLOSING || s->state == POP3_STATE_CLOSED;
}

static struct evbuffer *
out(struct pop3_session *s)
{
	return bufferevent_get_output(s->bev);
}

/* One status line; control bytes in text become spaces. */
static void
status_text(struct pop3_session *s, bool ok, const char *text)
{
	char line[REPLY_TEXT_MAX];
	size_t k = 0;

	if (session_gone(s))
		return;
	for (const char *p = text; *p != '\0' && k + 1 < sizeof(line); p++) {
		unsigned char c = (unsigned char)*p;

		line[k++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	line[k] = '\0';
	evbuffer_add_printf(out(s), "%s%s%s\r\n", ok ? "+OK" : "-ERR",
	    k > 0 ? " " : "", line);
}

static void status(struct pop3_session *s, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
status(struct pop3_session *s, bool ok, const char *fmt, ...)
{
	char text[REPLY_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	status_text(s, ok, text);
}

static void error(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A protocol error of the client: counted; too many end the session. */
static void
error(struct pop3_session *s, const char *fmt, ...)
{
	char text[REPLY_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	status_text(s, false, text);
	s->errors++;
	log_debug("sid=%s event=protocol_error errors=%u", s->id, s->errors);
	if (s->errors >= s->cfg.max_errors && !session_gone(s)) {
		log_info("sid=%s event=too_many_errors ip=%s errors=%u", s->id,
		    s->ip, s->errors);
		status(s, false, "Too many errors, closing connection");
		session_close(s, "too many errors");
	}
}

static size_t
output_backlog(struct pop3_session *s)
{
	return evbuffer_get_length(out(s));
}

static bool
output_empty(struct pop3_session *s)
{
	struct bufferevent *under = bufferevent_get_underlying(s->bev);

	if (evbuffer_get_length(out(s)) > 0)
		return false;
	return under == NULL ||
	    evbuffer_get_length(bufferevent_get_output(under)) == 0;
}

static void
timer_arm_ms(struct pop3_session *s, unsigned int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(s->timer, &tv);
}

static bool
reading_commands(const struct pop3_session *s)
{
	return s->state == POP3_STATE_AUTHORIZATION ||
	    s->state == POP3_STATE_AUTH_CONT ||
	    s->state == POP3_STATE_TRANSACTION;
}

static void
session_update_io(struct pop3_session *s)
{
	bool want_read;

	if (session_gone(s))
		return;
	want_read = (reading_commands(s) || s->state == POP3_STATE_TLS) &&
	    s->question == Q_NONE && output_backlog(s) <= OUT_MAX && !s->eof;
	if (want_read)
		bufferevent_enable(s->bev, EV_READ);
	else
		bufferevent_disable(s->bev, EV_READ);
	if (s->question == Q_NONE && (reading_commands(s) ||
	    s->state == POP3_STATE_TLS))
		timer_arm_ms(s, s->cfg.cmd_timeout_ms);
	else
		evtimer_del(s->timer);
}

static void
session_close(struct pop3_session *s, const char *reason)
{
	struct timeval now, add = { s->cfg.write_timeout_ms / 1000,
	    (s->cfg.write_timeout_ms % 1000) * 1000 };

	if (session_gone(s))
		return;
	log_debug("sid=%s event=close reason=\"%s\"", s->id, reason);
	pop3_enter_state(s, POP3_STATE_CLOSING);
	bufferevent_disable(s->bev, EV_READ);
	evutil_gettimeofday(&now, NULL);
	evutil_timeradd(&now, &add, &s->close_deadline);
	timer_arm_ms(s, CLOSE_POLL_MS);
	event_active(s->resume_ev, EV_TIMEOUT, 1);
}

static void
stream_end(struct pop3_session *s)
{
	if (s->st.fd >= 0)
		close(s->st.fd);
	s->st.fd = -1;
}

static void
session_lost(struct pop3_session *s, const char *reason)
{
	if (s->state == POP3_STATE_CLOSED)
		return;
	if (s->state != POP3_STATE_CLOSING)
		log_info("sid=%s event=lost ip=%s reason=\"%s\"", s->id, s->ip,
		    reason);
	pop3_enter_state(s, POP3_STATE_CLOSED);
	stream_end(s);
	bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	evtimer_del(s->timer);
}

static void
wipe_free(char **p)
{
	if (*p != NULL)
		str_wipe(*p, strlen(*p));
	x_free(p);
}

static void
maildrop_free(struct pop3_session *s)
{
	for (size_t i = 0; i < s->count; i++)
		free((char *)s->msgs[i].uidl);
	x_free(&s->msgs);
	x_free(&s->deleted);
	s->count = 0;
	s->ndeleted = 0;
}

static void
session_free(struct pop3_session *s)
{
	if (s->hooks->on_disconnect != NULL)
		s->hooks->on_disconnect(s, s->ctx);
	log_debug("sid=%s event=disconnect ip=%s commands=%u errors=%u", s->id,
	    s->ip, s->commands, s->errors);
	stream_end(s);
	event_free(s->timer);
	event_free(s->resume_ev);
	bufferevent_free(s->bev);
	if (s->cfg.ssl_ctx != NULL)
		SSL_CTX_free(s->cfg.ssl_ctx);
	wipe_free(&s->user);
	free(s->asked_login);
	free(s->login);
	maildrop_free(s);
	free(s);
}

static bool
session_maybe_finish(struct pop3_session *s)
{
	if (s->state == POP3_STATE_CLOSING && output_empty(s))
		session_lost(s, "closed");
	if (s->state != POP3_STATE_CLOSED || s->question != Q_NONE || s->in_hook)
		return false;
	session_free(s);
	return true;
}

/* ------------------------------------------------------------------ */
/* questions */

static void
ask_begin(struct pop3_session *s, enum pop3_question q, bool *was_r)
{
	if (s->question != Q_NONE)
		panic("pop3: question %d asked while %d is open", q, s->question);
	s->question = q;
	*was_r = s->in_hook;
	s->in_hook = true;
}

static void
ask_end(struct pop3_session *s, bool was)
{
	s->in_hook = was;
}

static void apply_answer(struct pop3_session *s, enum pop3_question q,
    bool ok, const char *text);

static void
ask_open(struct pop3_session *s)
{
	bool was;

	ask_begin(s, Q_OPEN, &was);
	if (s->hooks->on_open != NULL) {
		s->hooks->on_open(s, s->login, s->ctx);
	} else {
		s->question = Q_NONE;
		pop3_enter_state(s, POP3_STATE_TRANSACTION);
		status(s, true, "Logged in.");
	}
	ask_end(s, was);
}

static void
ask_auth(struct pop3_session *s, const char *mech, const char *authzid,
    const char *login, char *password)
{
	bool was;

	free(s->asked_login);
	s->asked_login = xstrdup(login);
	ask_begin(s, Q_AUTH, &was);
	if (s->hooks->on_auth != NULL) {
		s->hooks->on_auth(s, mech, authzid, login, password, s->ctx);
	} else {
		s->question = Q_NONE;
		apply_answer(s, Q_AUTH, false, "[SYS/TEMP] Authentication "
		    "not available");
	}
	ask_end(s, was);
	str_wipe(password, strlen(password));
}

static void
apply_answer(struct pop3_session *s, enum pop3_question q, bool ok,
    const char *text)
{
	if (s->state == POP3_STATE_CLOSED)
		return;		/* the connection went while we asked */
	switch (q) {
	case Q_CONNECT:
		if (!ok) {
			status_text(s, false, text);
			session_close(s, "refused at connect");
			break;
		}
		pop3_enter_state(s, POP3_STATE_AUTHORIZATION);
		status(s, true, "%s POP3 ready", s->cfg.hostname);
		break;
	case Q_AUTH:
		wipe_free(&s->user);
		if (!ok) {
			status_text(s, false, text);
			break;
		}
		free(s->login);
		/* the glue names the account (a master user logs in as it) */
		if (*text != '\0') {
			s->login = xstrdup(text);
			x_free(&s->asked_login);
		} else {
			s->login = s->asked_login;
			s->asked_login = NULL;
		}
		ask_open(s);
		break;
	case Q_OPEN:
		/* success comes through pop3_session_open_ok() */
		status_text(s, false, text);
		x_free(&s->login);
		break;
	case Q_COMMIT:
		if (ok)
			status(s, true, "%s POP3 signing off (%u messages "
			    "deleted)", s->cfg.hostname, s->ndeleted);
		else
			status_text(s, false, text);
		session_close(s, "quit");
		break;
	case Q_NONE:
		panic("pop3: answer without a question");
	}
}

/* The one way an open question is answered; close: end the session after. */
static void answer_question(struct pop3_session *s, bool ok, bool close,
    const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

static void
answer_question(struct pop3_session *s, bool ok, bool close, const char *fmt,
    va_list ap)
{
	char text[REPLY_TEXT_MAX];
	enum pop3_question q = s->question;

	if (q == Q_NONE)
		panic("pop3: a reply with no question open");
	if (q == Q_OPEN && ok)
		panic("pop3: on_open must be answered by pop3_session_open_ok");
	vsnprintf(text, sizeof(text), fmt, ap);
	s->question = Q_NONE;
	apply_answer(s, q, ok, text);
	if (close && !session_gone(s))
		session_close(s, "refused");
	if (!s->in_hook)
		event_active(s->resume_ev, EV_TIMEOUT, 1);
}

void
pop3_session_reply(struct pop3_session *s, bool ok, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	answer_question(s, ok, false, fmt, ap);
	va_end(ap);
}

void
pop3_session_refuse_close(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	answer_question(s, false, true, fmt, ap);
	va_end(ap);
}

void
pop3_session_open_ok(struct pop3_session *s, const struct pop3_msg *msgs,
    size_t count)
{
	if (s->question != Q_OPEN)
		panic("pop3: pop3_session_open_ok without on_open");
	s->question = Q_NONE;
	if (s->state != POP3_STATE_CLOSED) {
		maildrop_free(s);
		s->msgs = xcalloc(count + 1, sizeof(*s->msgs));
		s->deleted = xcalloc(count + 1, sizeof(*s->deleted));
		for (size_t i = 0; i < count; i++) {
			s->msgs[i].size = msgs[i].size;
			s->msgs[i].uidl = xstrdup(msgs[i].uidl);
		}
		s->count = count;
		pop3_enter_state(s, POP3_STATE_TRANSACTION);
		status(s, true, "Logged in.");
	}
	if (!s->in_hook)
		event_active(s->resume_ev, EV_TIMEOUT, 1);
}

/* ------------------------------------------------------------------ */
/* commands */

static bool
auth_allowed(struct pop3_session *s)
{
	return s->cfg.plaintext_auth || pop3_session_tls(s);
}

static bool
stls_offered(struct pop3_session *s)
{
	return s->cfg.ssl_ctx != NULL && !pop3_session_tls(s) &&
	    s->state == POP3_STATE_AUTHORIZATION;
}

static bool
need_auth_allowed(struct pop3_session *s)
{
	if (auth_allowed(s))
		return true;
	error(s, "[AUTH] Plaintext authentication disallowed on "
	    "non-secure connections; use STLS first");
	return false;
}

/*
 * A message number: decimal, 1..count, not deleted. Fills *idx_r and
 * returns 0, or answers -ERR and returns -1.
 */
static int
msg_arg(struct pop3_session *s, const char *arg, size_t *idx_r)
{
	unsigned long long n;

	if (*arg < '0' || *arg > '9' || str_to_ullong(arg, &n) < 0) {
		error(s, "Invalid message number: %.40s", arg);
		return -1;
	}
	if (n < 1 || n > s->count) {
		status(s, false, "There's no message %llu.", n);
		return -1;
	}
	if (s->deleted[n - 1]) {
		status(s, false, "Message is deleted.");
		return -1;
	}
	*idx_r = (size_t)(n - 1);
	return 0;
}

static void
cmd_capa(struct pop3_session *s, const char *args)
{
	struct evbuffer *o = out(s);

	status(s, true, "Capability list follows");
	evbuffer_add_printf(o, "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
	    "PIPELINING\r\n");
	if (auth_allowed(s) && s->state == POP3_STATE_AUTHORIZATION)
		evbuffer_add_printf(o, "USER\r\nSASL PLAIN\r\n");
	if (stls_offered(s))
		evbuffer_add_printf(o, "STLS\r\n");
	evbuffer_add_printf(o, "IMPLEMENTATION tegami\r\n.\r\n");
}

static void
cmd_noop(struct pop3_session *s, const char *args)
{
	status_text(s, true, "");
}

static void
cmd_stls(struct pop3_session *s, const char *args)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t junk = evbuffer_get_length(in);
	struct bufferevent *tls, *under;
	SSL *ssl;

	if (pop3_session_tls(s)) {
		error(s, "TLS is already active");
		return;
	}
	if (s->cfg.ssl_ctx == NULL) {
		error(s, "STLS not available");
		return;
	}
	ssl = SSL_new(s->cfg.ssl_ctx);
	if (ssl == NULL) {
		status(s, false, "[SYS/TEMP] TLS not available");
		return;
	}
	status(s, true, "Begin TLS negotiation now.");
	/* RFC 2595 / CVE-2011-0411: bytes sent after STLS before our +OK
	 * could be seen are dropped, never read as commands under TLS. */
	if (junk > 0) {
		log_info("sid=%s event=stls_injection ip=%s bytes=%zu", s->id,
		    s->ip, junk);
		evbuffer_drain(in, junk);
	}
	wipe_free(&s->user);
	under = s->bev;
	tls = bufferevent_openssl_filter_new(s->base, under, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS);
	if (tls == NULL) {
		SSL_free(ssl);
		log_error("sid=%s event=stls error=\"filter failed\"", s->id);
		session_close(s, "STLS failed");
		return;
	}
	/* The filter stops encrypting while this much waits in the socket's
	 * output: RETR then stays bounded under TLS too. */
	bufferevent_setwatermark(under, EV_WRITE, 0, OUT_MAX);
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	s->bev = tls;
	{
		struct timeval wt = { s->cfg.write_timeout_ms / 1000,
		    (s->cfg.write_timeout_ms % 1000) * 1000 };

		bufferevent_set_timeouts(tls, NULL, &wt);
	}
	bufferevent_setcb(tls, read_cb, write_cb, event_cb, s);
	bufferevent_enable(tls, EV_WRITE);
	pop3_enter_state(s, POP3_STATE_TLS);
}

static void
tls_established(struct pop3_session *s)
{
	if (s->tls_logged || !pop3_session_tls(s))
		return;
	s->tls_logged = true;
	log_info("sid=%s event=tls version=%s cipher=%s", s->id,
	    SSL_get_version(bufferevent_openssl_get_ssl(s->bev)),
	    SSL_get_cipher_name(bufferevent_openssl_get_ssl(s->bev)));
	if (s->state == POP3_STATE_TLS)
		pop3_enter_state(s, POP3_STATE_AUTHORIZATION);
}

static void
cmd_user(struct pop3_session *s, const char *args)
{
	if (!need_auth_allowed(s))
		return;
	if (*args == '\0') {
		error(s, "Syntax: USER <name>");
		return;
	}
	wipe_free(&s->user);
	s->user = xstrdup(args);
	status_text(s, true, "");
}

static void
cmd_pass(struct pop3_session *s, const char *args)
{
	char *pw;

	if (!need_auth_allowed(s))
		return;
	if (s->user == NULL) {
		error(s, "No username given.");
		return;
	}
	pw = xstrdup(args);
	{
		char *user = xstrdup(s->user);

		ask_auth(s, "USER", "", user, pw);
		free(user);
	}
	free(pw);
}

static void
auth_plain(struct pop3_session *s, const char *response)
{
	struct buf dec;
	const char *authzid, *login, *pass, *end;
	char *pw;

	if (strcmp(response, "*") == 0) {
		error(s, "[AUTH] Authentication cancelled");
		return;
	}
	buf_init(&dec, AUTH_DECODED_MAX);
	if (strcmp(response, "=") != 0 &&
	    decode_base64(response, strlen(response), &dec) < 0) {
		error(s, "[AUTH] Invalid base64 data");
		goto out;
	}
	/* authzid NUL authcid NUL passwd (RFC 4616) */
	authzid = buf_cstr(&dec);
	end = authzid + dec.len;
	login = memchr(authzid, '\0', dec.len);
	if (login == NULL || login + 1 >= end) {
		error(s, "[AUTH] Invalid AUTH PLAIN response");
		goto out;
	}
	login++;
	pass = memchr(login, '\0', (size_t)(end - login));
	if (pass == NULL || pass == login) {
		error(s, "[AUTH] Invalid AUTH PLAIN response");
		goto out;
	}
	pass++;
	if (memchr(pass, '\0', (size_t)(end - pass)) != NULL) {
		error(s, "[AUTH] Invalid AUTH PLAIN response");
		goto out;
	}
	pw = xstrndup(pass, (size_t)(end - pass));
	{
		char *az = xstrdup(authzid), *lg = xstrdup(login);

		ask_auth(s, "PLAIN", az, lg, pw);
		free(az);
		free(lg);
	}
	free(pw);
out:
	if (dec.data != NULL)
		str_wipe(dec.data, dec.len);
	buf_free(&dec);
}

static void
cmd_auth(struct pop3_session *s, const char *args)
{
	const char *sp;
	size_t mlen;

	if (*args == '\0') {
		/* the mechanism list (used by clients before RFC 5034) */
		if (!auth_allowed(s)) {
			error(s, "[AUTH] Plaintext authentication disallowed "
			    "on non-secure connections; use STLS first");
			return;
		}
		status_text(s, true, "");
		evbuffer_add_printf(out(s), "PLAIN\r\n.\r\n");
		return;
	}
	if (!need_auth_allowed(s))
		return;
	sp = strchr(args, ' ');
	mlen = sp != NULL ? (size_t)(sp - args) : strlen(args);
	if (mlen != 5 || strncasecmp(args, "PLAIN", 5) != 0) {
		error(s, "[AUTH] Unsupported authentication mechanism.");
		return;
	}
	if (sp != NULL) {
		auth_plain(s, sp + 1);
		return;
	}
	evbuffer_add_printf(out(s), "+ \r\n");
	pop3_enter_state(s, POP3_STATE_AUTH_CONT);
}

static void
cmd_quit(struct pop3_session *s, const char *args)
{
	bool was;

	if (s->state == POP3_STATE_AUTHORIZATION) {
		status(s, true, "%s POP3 signing off", s->cfg.hostname);
		session_close(s, "quit");
		return;
	}
	pop3_enter_state(s, POP3_STATE_UPDATE);
	ask_begin(s, Q_COMMIT, &was);
	if (s->hooks->on_commit != NULL) {
		s->hooks->on_commit(s, s->deleted, s->count, s->ctx);
	} else {
		s->question = Q_NONE;
		apply_answer(s, Q_COMMIT, true, "");
	}
	ask_end(s, was);
}

static void
cmd_stat(struct pop3_session *s, const char *args)
{
	uint64_t total = 0;
	size_t n = 0;

	for (size_t i = 0; i < s->count; i++) {
		if (!s->deleted[i]) {
			total += s->msgs[i].size;
			n++;
		}
	}
	status(s, true, "%zu %llu", n, (unsigned long long)total);
}

static void
cmd_list_uidl(struct pop3_session *s, const char *args, bool uidl)
{
	size_t idx;

	if (*args != '\0') {
		if (msg_arg(s, args, &idx) < 0)
			return;
		if (uidl)
			status(s, true, "%zu %s", idx + 1, s->msgs[idx].uidl);
		else
			status(s, true, "%zu %llu", idx + 1,
			    (unsigned long long)s->msgs[idx].size);
		return;
	}
	if (uidl)
		status_text(s, true, "");
	else
		status(s, true, "%zu messages", s->count - s->ndeleted);
	for (size_t i = 0; i < s->count; i++) {
		if (s->deleted[i])
			continue;
		if (uidl)
			evbuffer_add_printf(out(s), "%zu %s\r\n", i + 1,
			    s->msgs[i].uidl);
		else
			evbuffer_add_printf(out(s), "%zu %llu\r\n", i + 1,
			    (unsigned long long)s->msgs[i].size);
	}
	evbuffer_add_printf(out(s), ".\r\n");
}

static void
cmd_list(struct pop3_session *s, const char *args)
{
	cmd_list_uidl(s, args, false);
}

static void
cmd_uidl(struct pop3_session *s, const char *args)
{
	cmd_list_uidl(s, args, true);
}

static void stream_continue(struct pop3_session *s);

static void
stream_begin(struct pop3_session *s, size_t idx, bool top, uint64_t lines)
{
	int fd = s->hooks->on_message_fd != NULL ?
	    s->hooks->on_message_fd(s, idx, s->ctx) : -1;

	if (fd < 0) {
		status(s, false, "Message is gone.");
		return;
	}
	memset(&s->st, 0, sizeof(s->st));
	s->st.fd = fd;
	s->st.top = top;
	s->st.retr = !top;
	s->st.top_lines = lines;
	s->st.in_header = true;
	s->st.line_start = true;
	s->st.line_empty = true;
	if (top)
		status_text(s, true, "");
	else
		status(s, true, "%llu octets",
		    (unsigned long long)s->msgs[idx].size);
	pop3_enter_state(s, POP3_STATE_STREAM);
	stream_continue(s);
}

static void
cmd_retr(struct pop3_session *s, const char *args)
{
	size_t idx;

	if (msg_arg(s, args, &idx) == 0)
		stream_begin(s, idx, false, 0);
}

static void
cmd_top(struct pop3_session *s, const char *args)
{
	char **v;
	size_t n, idx;
	unsigned long long lines;

	v = str_split(args, " ", &n);
	if (n != 2 || v[1][0] < '0' || v[1][0] > '9' ||
	    str_to_ullong(v[1], &lines) < 0) {
		error(s, "Syntax: TOP <message> <lines>");
	} else if (msg_arg(s, v[0], &idx) == 0) {
		stream_begin(s, idx, true, lines);
	}
	str_array_free(v);
}

static void
cmd_dele(struct pop3_session *s, const char *args)
{
	size_t idx;

	if (msg_arg(s, args, &idx) < 0)
		return;
	s->deleted[idx] = true;
	s->ndeleted++;
	status(s, true, "Marked to be deleted.");
}

static void
cmd_rset(struct pop3_session *s, const char *args)
{
	for (size_t i = 0; i < s->count; i++)
		s->deleted[i] = false;
	s->ndeleted = 0;
	status_text(s, true, "");
}

static const struct pop3_cmd commands[] = {
	{ "CAPA", IN_AUTHZ | IN_TRANS, cmd_capa },
	{ "STLS", IN_AUTHZ, cmd_stls },
	{ "USER", IN_AUTHZ, cmd_user },
	{ "PASS", IN_AUTHZ, cmd_pass },
	{ "AUTH", IN_AUTHZ, cmd_auth },
	{ "QUIT", IN_AUTHZ | IN_TRANS, cmd_quit },
	{ "NOOP", IN_TRANS, cmd_noop },
	{ "STAT", IN_TRANS, cmd_stat },
	{ "LIST", IN_TRANS, cmd_list },
	{ "UIDL", IN_TRANS, cmd_uidl },
	{ "RETR", IN_TRANS, cmd_retr },
	{ "TOP", IN_TRANS, cmd_top },
	{ "DELE", IN_TRANS, cmd_dele },
	{ "RSET", IN_TRANS, cmd_rset },
};

/* Commands without arguments, and those that need one. */
static bool
args_ok(const char *verb, const char *args)
{
	static const char *const none[] = { "CAPA", "STLS", "QUIT", "NOOP",
	    "STAT", "RSET" };
	static const char *const needs[] = { "RETR", "TOP", "DELE" };

	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		if (strcmp(verb, none[i]) == 0)
			return *args == '\0';
	for (size_t i = 0; i < sizeof(needs) / sizeof(needs[0]); i++)
		if (strcmp(verb, needs[i]) == 0)
			return *args != '\0';
	return true;
}

static void
session_command(struct pop3_session *s, char *line)
{
	const struct pop3_cmd *cmd = NULL;
	char verb[8];
	size_t vlen = strcspn(line, " ");
	const char *args = line[vlen] == ' ' ? line + vlen + 1 : "";

	s->commands++;
	for (const char *p = line; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			error(s, "Bad character in command");
			return;
		}
	}
	if (vlen > 0 && vlen < sizeof(verb)) {
		memcpy(verb, line, vlen);
		verb[vlen] = '\0';
		for (char *p = verb; *p != '\0'; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
		for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
			if (strcmp(commands[i].name, verb) == 0)
				cmd = &commands[i];
	}
	if (cmd == NULL) {
		char esc[64];

		log_debug("sid=%s event=unknown_command line=\"%s\"", s->id,
		    log_escape(esc, sizeof(esc), line, strlen(line)));
		error(s, "Unknown command.");
		return;
	}
	log_trace("sid=%s event=command verb=%s", s->id, verb);
	if ((cmd->states & (1u << s->state)) == 0) {
		error(s, s->state == POP3_STATE_AUTHORIZATION ?
		    "Unknown command in AUTHORIZATION state." :
		    "Unknown command in TRANSACTION state.");
		return;
	}
	/* PASS takes the rest of the line as is: passwords may hold spaces */
	if (strcmp(verb, "PASS") != 0 && strcmp(verb, "USER") != 0) {
		char *end = (char *)args + strlen(args);

		while (end > args && end[-1] == ' ')
			*--end = '\0';
	}
	if (!args_ok(verb, args)) {
		error(s, "Wrong number of arguments for %s.", verb);
		return;
	}
	cmd->run(s, args);
}

/* ------------------------------------------------------------------ */
/* streaming RETR and TOP */

/*
 * Converts n file bytes for the wire into o. Returns false when TOP has
 * sent all it should.
 */
static bool
stream_convert(struct stream *st, const unsigned char *in, size_t n,
    struct evbuffer *o)
{
	unsigned char b[2 * FILE_CHUNK + 4];
	size_t k = 0;
	bool more = true;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = in[i];

		if (st->line_start) {
			if (st->top && !st->in_header &&
			    st->body_lines >= st->top_lines) {
				more = false;
				break;
			}
			if (c == '.')
				b[k++] = '.';
		}
		if (c == '\n') {
			if (!st->prev_cr)
				b[k++] = '\r';
			b[k++] = '\n';
			if (st->in_header && st->line_empty)
				st->in_header = false;
			else if (!st->in_header)
				st->body_lines++;
			st->line_start = true;
			st->line_empty = true;
			st->prev_cr = false;
			continue;
		}
		b[k++] = c;
		st->line_start = false;
		if (c != '\r')
			st->line_empty = false;
		st->prev_cr = c == '\r';
	}
	evbuffer_add(o, b, k);
	return more;
}

static void
stream_continue(struct pop3_session *s)
{
	unsigned char b[FILE_CHUNK];

	while (s->state == POP3_STATE_STREAM && output_backlog(s) < OUT_MAX) {
		ssize_t n = read(s->st.fd, b, s->st.top ? 1024 : sizeof(b));
		bool more;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			/* the +OK is out: the client can only be cut off */
			log_error("sid=%s event=read_failed error=\"%s\"", s->id,
			    strerror(errno));
			stream_end(s);
			session_close(s, "message read failed");
			return;
		}
		more = n > 0 && stream_convert(&s->st, b, (size_t)n, out(s));
		if (!more) {
			if (!s->st.line_start)
				evbuffer_add(out(s), "\r\n", 2);
			evbuffer_add(out(s), ".\r\n", 3);
			if (s->st.retr)
				s->retrieved++;
			stream_end(s);
			pop3_enter_state(s, POP3_STATE_TRANSACTION);
		}
	}
}

/* ------------------------------------------------------------------ */
/* input */

enum line_result { LINE_MORE, LINE_OK, LINE_TOO_LONG };

/*
 * Takes one line out of the input into line (NUL-terminated, line end
 * removed). The bytes are wiped in the input buffer (AUTH secrets).
 */
static enum line_result
read_line(struct pop3_session *s, char *line, size_t max)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer_ptr p = evbuffer_search(in, "\n", 1, NULL);
	size_t len = evbuffer_get_length(in), n;
	unsigned char *data;

	if (p.pos < 0) {
		if (len > max + 1) {
			/* too long already: throw it away as it comes */
			data = evbuffer_pullup(in, (ssize_t)len);
			str_wipe(data, len);
			evbuffer_drain(in, len);
			s->skipping = true;
		}
		return LINE_MORE;
	}
	n = (size_t)p.pos;
	data = evbuffer_pullup(in, (ssize_t)n + 1);
	if (s->skipping || n > max + 1 ||
	    (n == max + 1 && data[n - 1] != '\r')) {
		str_wipe(data, n + 1);
		evbuffer_drain(in, n + 1);
		s->skipping = false;
		return LINE_TOO_LONG;
	}
	if (n > 0 && data[n - 1] == '\r')
		n--;
	memcpy(line, data, n);
	line[n] = '\0';
	str_wipe(data, (size_t)p.pos + 1);
	evbuffer_drain(in, (size_t)p.pos + 1);
	/* a NUL would cut the line short: make it visible to the check */
	for (size_t i = 0; i < n; i++)
		if (line[i] == '\0')
			line[i] = 0x01;
	return LINE_OK;
}

static void
session_process(struct pop3_session *s)
{
	char line[POP3_AUTH_LINE_MAX + 2];

	while (s->question == Q_NONE && !session_gone(s)) {
		enum line_result r;
		bool cont;

		if (output_backlog(s) > OUT_MAX)
			break;
		if (s->state == POP3_STATE_STREAM) {
			stream_continue(s);
			if (s->state == POP3_STATE_STREAM)
				break;
			continue;
		}
		if (!reading_commands(s))
			break;
		if (s->shutdown && s->state != POP3_STATE_AUTH_CONT) {
			status(s, false, "[SYS/TEMP] Server shutting down");
			session_close(s, "shutdown");
			break;
		}
		cont = s->state == POP3_STATE_AUTH_CONT;
		r = read_line(s, line, cont ? POP3_AUTH_LINE_MAX :
		    POP3_CMD_LINE_MAX);
		if (r == LINE_MORE)
			break;
		if (cont)
			pop3_enter_state(s, POP3_STATE_AUTHORIZATION);
		if (r == LINE_TOO_LONG) {
			s->commands++;
			error(s, "Line too long");
		} else if (cont) {
			auth_plain(s, line);
		} else {
			session_command(s, line);
		}
		str_wipe(line, sizeof(line));
	}
	/* The client half-closed: run what it sent, answer, end. */
	if (s->eof && s->question == Q_NONE && !session_gone(s) &&
	    s->state != POP3_STATE_STREAM && output_backlog(s) <= OUT_MAX)
		session_close(s, "client closed the connection");
	session_update_io(s);
}

/* ------------------------------------------------------------------ */
/* libevent callbacks */

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct pop3_session *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	switch (s->state) {
	case POP3_STATE_CONNECTED:
		break;		/* kept until the greeting is out */
	case POP3_STATE_CLOSING:
	case POP3_STATE_CLOSED:
		evbuffer_drain(in, evbuffer_get_length(in));
		break;
	case POP3_STATE_TLS:
		tls_established(s);
		session_process(s);
		break;
	default:
		session_process(s);
		break;
	}
	session_maybe_finish(s);
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct pop3_session *s = arg;

	if (!session_gone(s) && s->question == Q_NONE &&
	    s->state != POP3_STATE_CONNECTED && s->state != POP3_STATE_TLS)
		session_process(s);
	session_maybe_finish(s);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct pop3_session *s = arg;

	if (what & BEV_EVENT_CONNECTED) {
		tls_established(s);
		session_process(s);
	} else if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    !session_gone(s) && s->state != POP3_STATE_CONNECTED &&
	    s->state != POP3_STATE_TLS) {
		/* A half-close after the last command (even in the middle of
		 * a RETR) still deserves the answers: finish, then close. */
		s->eof = true;
		bufferevent_disable(bev, EV_READ);
		if (s->question == Q_NONE)
			session_process(s);
	} else if ((what & BEV_EVENT_EOF) && s->state == POP3_STATE_CLOSING) {
		/* keep sending the last replies */
	} else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		unsigned long e;
		char reason[160] = "connection closed";

		if (what & BEV_EVENT_TIMEOUT)
			str_copy(reason, sizeof(reason), "write timeout");
		else if ((e = bufferevent_get_openssl_error(bev)) != 0)
			ERR_error_string_n(e, reason, sizeof(reason));
		else if (what & BEV_EVENT_ERROR)
			str_copy(reason, sizeof(reason), "connection error");
		session_lost(s, reason);
	}
	session_maybe_finish(s);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pop3_session *s = arg;

	if (s->state == POP3_STATE_CLOSING) {
		struct timeval now;

		evutil_gettimeofday(&now, NULL);
		if (output_empty(s) ||
		    evutil_timercmp(&now, &s->close_deadline, >))
			session_lost(s, "closed");
		else
			timer_arm_ms(s, CLOSE_POLL_MS);
	} else if (!session_gone(s)) {
		log_info("sid=%s event=timeout ip=%s state=%s", s->id, s->ip,
		    state_names[s->state]);
		status(s, false, "[SYS/TEMP] Disconnected for inactivity.");
		session_close(s, "timeout");
	}
	session_maybe_finish(s);
}

static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pop3_session *s = arg;

	if (!session_gone(s) && s->question == Q_NONE)
		session_process(s);
	session_maybe_finish(s);
}

/* ------------------------------------------------------------------ */
/* public API */

static void
remote_text(const struct sockaddr *sa, socklen_t len, char *o, size_t osize)
{
	str_copy(o, osize, "unknown");
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET &&
	    len >= (socklen_t)sizeof(struct sockaddr_in))
		inet_ntop(AF_INET, &((const struct sockaddr_in *)
		    (const void *)sa)->sin_addr, o, (socklen_t)osize);
	else if (sa->sa_family == AF_INET6 &&
	    len >= (socklen_t)sizeof(struct sockaddr_in6))
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)
		    (const void *)sa)->sin6_addr, o, (socklen_t)osize);
}

struct pop3_session *
pop3_session_new(struct event_base *base, struct bufferevent *bev,
    const struct pop3_server_settings *settings,
    const struct pop3_hooks *hooks, void *hook_ctx,
    const struct sockaddr *remote, socklen_t remote_len)
{
	static const char hex[] = "0123456789abcdef";
	struct pop3_session *s = xcalloc(1, sizeof(*s));
	unsigned char rnd[8];
	bool was;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		panic("pop3: RAND_bytes failed");
	for (size_t i = 0; i < sizeof(rnd); i++) {
		s->id[2 * i] = hex[rnd[i] >> 4];
		s->id[2 * i + 1] = hex[rnd[i] & 15];
	}
	remote_text(remote, remote_len, s->ip, sizeof(s->ip));
	s->base = base;
	s->bev = bev;
	s->cfg = *settings;
	if (s->cfg.hostname == NULL)
		s->cfg.hostname = "localhost";
	if (s->cfg.cmd_timeout_ms == 0)
		s->cfg.cmd_timeout_ms = DEFAULT_CMD_TIMEOUT;
	if (s->cfg.write_timeout_ms == 0)
		s->cfg.write_timeout_ms = DEFAULT_WRITE_TIMEOUT;
	if (s->cfg.max_errors == 0)
		s->cfg.max_errors = DEFAULT_MAX_ERRORS;
	if (s->cfg.ssl_ctx != NULL)
		SSL_CTX_up_ref(s->cfg.ssl_ctx);
	s->hooks = hooks;
	s->ctx = hook_ctx;
	s->st.fd = -1;
	s->state = POP3_STATE_CONNECTED;
	s->timer = evtimer_new(base, timer_cb, s);
	s->resume_ev = event_new(base, -1, 0, resume_cb, s);
	if (s->timer == NULL || s->resume_ev == NULL)
		panic("pop3: out of memory creating a session");
	bufferevent_setcb(bev, read_cb, write_cb, event_cb, s);
	{
		struct timeval wt = { s->cfg.write_timeout_ms / 1000,
		    (s->cfg.write_timeout_ms % 1000) * 1000 };

		bufferevent_set_timeouts(bev, NULL, &wt);
	}
	if (bufferevent_openssl_get_ssl(bev) != NULL)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	bufferevent_enable(bev, EV_WRITE);
	log_debug("sid=%s event=connect ip=%s", s->id, s->ip);
	ask_begin(s, Q_CONNECT, &was);
	if (hooks->on_connect != NULL) {
		hooks->on_connect(s, hook_ctx);
	} else {
		s->question = Q_NONE;
		apply_answer(s, Q_CONNECT, true, "");
	}
	ask_end(s, was);
	session_update_io(s);
	if (s->question == Q_NONE)
		event_active(s->resume_ev, EV_TIMEOUT, 1);
	return s;
}

void
pop3_session_shutdown(struct pop3_session *s)
{
	s->shutdown = true;
	if (!session_gone(s) && s->question == Q_NONE)
		event_active(s->resume_ev, EV_TIMEOUT, 1);
}

void
pop3_session_destroy(struct pop3_session *s)
{
	if (s->in_hook)
		panic("pop3: pop3_session_destroy() from inside a hook");
	s->question = Q_NONE;
	session_lost(s, "destroyed");
	session_free(s);
}

const char *
pop3_session_id(const struct pop3_session *s)
{
	return s->id;
}

const char *
pop3_session_remote_ip(const struct pop3_session *s)
{
	return s->ip;
}

bool
pop3_session_tls(const struct pop3_session *s)
{
	return bufferevent_openssl_get_ssl(s->bev) != NULL;
}

const char *
pop3_session_user(const struct pop3_session *s)
{
	return s->login;
}

unsigned int
pop3_session_retrieved(const struct pop3_session *s)
{
	return s->retrieved;
}

unsigned int
pop3_session_deleted(const struct pop3_session *s)
{
	return s->ndeleted;
}
