/*
 * smtp/server: the SMTP server session (contract in server.h).
 *
 * Shape (after OpenSMTPD's smtp_session.c): one explicit state enum changed
 * only by smtp_enter_state(); a table with one row per verb, each with a
 * check step (syntax, order, limits: may refuse) and a proceed step (acts,
 * usually by asking the glue a question through a hook). Per-connection
 * state is struct smtp_session, per-transaction state struct smtp_tx.
 *
 * Control flow: every libevent callback (read, write, event, timers and
 * the "resume" event fired after an asynchronous answer) is a top-level
 * entry; each ends with session_maybe_finish(), the only place a session
 * is freed, so nothing below a callback ever sees a freed session.
 */
#include "smtp/server.h"

#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "smtp/parser.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#define DEFAULT_MAX_SIZE	10240000ULL
#define DEFAULT_MAX_RCPT	100
#define DEFAULT_CMD_LINE_MAX	4096
#define DEFAULT_DATA_LINE_MAX	65536
#define DEFAULT_CMD_TIMEOUT	300000
#define DEFAULT_DATA_TIMEOUT	180000
#define DEFAULT_MAX_ERRORS	10
#define REPLY_TEXT_MAX		512
#define AUTH_DECODED_MAX	1024
#define DATA_CHUNK		16384
#define CLOSE_POLL_MS		10
#define OUT_MAX			65536	/* unread replies before we stop reading */

enum smtp_state {
	SMTP_STATE_CONNECTED = 0,	/* before the greeting */
	SMTP_STATE_COMMAND,		/* reading command lines */
	SMTP_STATE_AUTH,		/* reading an AUTH continuation line */
	SMTP_STATE_DATA,		/* reading a DATA body */
	SMTP_STATE_BDAT,		/* reading the octets of a BDAT chunk */
	SMTP_STATE_TLS,			/* STARTTLS handshake under way */
	SMTP_STATE_CLOSING,		/* sending the last reply */
	SMTP_STATE_CLOSED,		/* connection over; freed once no question is open */
};

static const char *const state_names[] = {
	"connected", "command", "auth", "data", "bdat", "tls", "closing", "closed",
};

/* The question a hook was asked and not yet answered. */
enum smtp_question {
	Q_NONE = 0,
	Q_CONNECT,
	Q_HELO,
	Q_AUTH,
	Q_MAIL,
	Q_RCPT,
	Q_DATA_BEGIN,
	Q_DATA_END,
};

enum auth_step {
	AUTH_NONE = 0,
	AUTH_PLAIN_RESPONSE,	/* after "334 " for PLAIN */
	AUTH_LOGIN_USER,	/* after "334 VXNlcm5hbWU6" */
	AUTH_LOGIN_PASS,	/* after "334 UGFzc3dvcmQ6" */
};

enum body_type {
	BODY_NONE = 0,
	BODY_7BIT,
	BODY_8BITMIME,
};

struct smtp_tx {
	struct address from;
	struct address *rcpts;
	unsigned int rcpt_count;
	struct address asked_rcpt;	/* the recipient on_rcpt is asked about */
	uint64_t declared_size;
	enum body_type body;
	bool smtputf8;
	bool body_started;		/* on_data_begin answered 354 */
	bool chunking;			/* the body comes by BDAT */
	bool chunk_error;		/* on_data_chunk failed */
	bool too_big;
	uint64_t size;			/* body bytes received */
	struct smtp_data_reader dr;
};

struct smtp_session {
	char id[17];
	char ip[INET6_ADDRSTRLEN];
	struct event_base *base;
	struct bufferevent *bev;
	struct smtp_server_settings cfg;	/* with defaults filled in */
	const struct smtp_hooks *hooks;
	void *ctx;

	enum smtp_state state;
	enum smtp_question question;
	bool in_hook;			/* a hook is running: answers are acted on after it returns */
	bool connect_ok;		/* on_connect answered 2xx */
	bool pause_over;		/* greet pause elapsed (or none) */
	bool flush_now;			/* a last-in-group command was run */
	bool shutdown;			/* smtp_session_shutdown() was called */
	bool tls_logged;
	bool eof;			/* the client has finished sending */

	struct event *timer;		/* command/data timeout; close polling */
	struct event *pause_ev;		/* greet pause */
	struct event *resume_ev;	/* fired after an answer given outside a hook */
	struct evbuffer *out;		/* replies not yet handed to the bufferevent */
	struct smtp_line_reader lr;

	char *helo;
	char *asked_helo;
	bool esmtp, asked_ehlo;
	char *auth_login;
	char *asked_login;
	enum auth_step auth_step;
	char *auth_user;		/* AUTH LOGIN user name between the two steps */
	unsigned int errors;
	unsigned int commands;
	struct timeval close_deadline;

	struct smtp_tx *tx;		/* the open transaction */
	struct smtp_tx *new_tx;		/* the one on_mail is asked about */

	/* BDAT chunk being read */
	uint64_t bdat_left;
	uint64_t bdat_size;
	bool bdat_last;
	bool bdat_discard;		/* throw the chunk away, then send bdat_err_* */
	bool bdat_err_counts;		/* the refusal is a protocol error */
	int bdat_err_code;
	char bdat_err_enh[16];
	char bdat_err_text[REPLY_TEXT_MAX];
	bool data_is_bdat;		/* on_data_begin was asked for BDAT */
};

enum cmd_flags {
	CMD_PRE_TLS = 1 << 0,	/* allowed before STARTTLS on 587 */
	CMD_LAST = 1 << 1,	/* ends a pipelined group: flush replies after it */
	CMD_HELO = 1 << 2,	/* needs HELO/EHLO first */
	CMD_TX = 1 << 3,	/* needs an open transaction */
	CMD_NO_ARGS = 1 << 4,	/* takes no arguments */
	CMD_RAW = 1 << 5,	/* does all its checks itself (BDAT must read its chunk) */
};

struct smtp_cmd {
	const char *name;
	unsigned int flags;
	/* Syntax and order; refuses (and returns -1) or returns 0. */
	int (*check)(struct smtp_session *s, const char *args);
	/* Acts; typically by asking a hook. */
	void (*proceed)(struct smtp_session *s, const char *args);
};

static void session_process(struct smtp_session *s);
static void session_close(struct smtp_session *s, const char *reason);
static void tx_abort(struct smtp_session *s, const char *reason);

/* ------------------------------------------------------------------ */
/* state, replies, output */

static void
smtp_enter_state(struct smtp_session *s, enum smtp_state state)
{
	if (s->state == state)
		return;
	log_trace("sid=%s event=state old=%s new=%s", s->id,
	    state_names[s->state], state_names[state]);
	s->state = state;
}

static bool
session_gone(const struct smtp_session *s)
{
	return s->state == SMTP_STATE_CLOSING || s->state == SMTP_STATE_CLOSED;
}

/* Appends one reply; '\n' in text makes it multi-line. */
static void
reply_text(struct smtp_session *s, int code, const char *enh, const char *text)
{
	const char *p = text;

	if (session_gone(s))
		return;
	if (code < 200 || code > 599)
		panic("smtp: reply code %d out of range", code);
	for (;;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		bool last = nl == NULL || nl[1] == '\0';
		char line[REPLY_TEXT_MAX];
		size_t k = 0;

		/* never let a CR or other control byte into a reply */
		for (size_t i = 0; i < n && k + 1 < sizeof(line); i++) {
			unsigned char c = (unsigned char)p[i];

			line[k++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
		}
		line[k] = '\0';
		evbuffer_add_printf(s->out, "%d%c%s%s%s\r\n", code, last ? ' ' : '-',
		    enh != NULL ? enh : "", enh != NULL && k > 0 ? " " : "", line);
		if (last)
			break;
		p = nl + 1;
	}
	log_trace("sid=%s event=reply code=%d", s->id, code);
}

static void reply(struct smtp_session *s, int code, const char *enh,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
reply(struct smtp_session *s, int code, const char *enh, const char *fmt, ...)
{
	char text[REPLY_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	reply_text(s, code, enh, text);
}

static void reply_error(struct smtp_session *s, int code, const char *enh,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A protocol error of the client: counted, and too many end the session. */
static void
reply_error(struct smtp_session *s, int code, const char *enh,
    const char *fmt, ...)
{
	char text[REPLY_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	reply_text(s, code, enh, text);
	s->errors++;
	log_debug("sid=%s event=protocol-error code=%d errors=%u", s->id, code,
	    s->errors);
	if (s->errors >= s->cfg.max_errors && !session_gone(s)) {
		log_warn("sid=%s event=too-many-errors ip=%s errors=%u", s->id,
		    s->ip, s->errors);
		reply(s, 421, "4.7.0", "%s Too many errors, closing connection",
		    s->cfg.hostname);
		session_close(s, "too many errors");
	}
}

static void
flush_out(struct smtp_session *s)
{
	if (evbuffer_get_length(s->out) > 0)
		bufferevent_write_buffer(s->bev, s->out);
}

static size_t
output_backlog(struct smtp_session *s)
{
	return evbuffer_get_length(s->out) +
	    evbuffer_get_length(bufferevent_get_output(s->bev));
}

static bool
output_empty(struct smtp_session *s)
{
	struct bufferevent *under = bufferevent_get_underlying(s->bev);

	if (evbuffer_get_length(s->out) > 0 ||
	    evbuffer_get_length(bufferevent_get_output(s->bev)) > 0)
		return false;
	return under == NULL ||
	    evbuffer_get_length(bufferevent_get_output(under)) == 0;
}

static void
timer_arm_ms(struct smtp_session *s, unsigned int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(s->timer, &tv);
}

/* Reading, timers and output after any change. */
static void
session_update_io(struct smtp_session *s)
{
	bool want_read = false;

	if (session_gone(s))
		return;
	flush_out(s);
	switch (s->state) {
	case SMTP_STATE_CONNECTED:
		/* early-talker test: any byte before the greeting is a fault */
		want_read = s->cfg.greet_pause_ms > 0;
		break;
	case SMTP_STATE_COMMAND:
	case SMTP_STATE_AUTH:
	case SMTP_STATE_DATA:
	case SMTP_STATE_BDAT:
	case SMTP_STATE_TLS:
		want_read = s->question == Q_NONE && output_backlog(s) <= OUT_MAX &&
		    !s->eof;
		break;
	default:
		break;
	}
	if (want_read)
		bufferevent_enable(s->bev, EV_READ);
	else
		bufferevent_disable(s->bev, EV_READ);
	if (s->question != Q_NONE || s->state == SMTP_STATE_CONNECTED) {
		evtimer_del(s->timer);
	} else {
		timer_arm_ms(s, s->state == SMTP_STATE_DATA ||
		    s->state == SMTP_STATE_BDAT ? s->cfg.data_timeout_ms :
		    s->cfg.cmd_timeout_ms);
	}
}

/* Ends the session once the replies queued so far are sent. */
static void
session_close(struct smtp_session *s, const char *reason)
{
	struct timeval now, add = {
		s->cfg.data_timeout_ms / 1000, (s->cfg.data_timeout_ms % 1000) * 1000
	};

	if (session_gone(s))
		return;
	log_debug("sid=%s event=close reason=\"%s\"", s->id, reason);
	flush_out(s);
	smtp_enter_state(s, SMTP_STATE_CLOSING);
	bufferevent_disable(s->bev, EV_READ);
	evutil_gettimeofday(&now, NULL);
	evutil_timeradd(&now, &add, &s->close_deadline);
	/* write_cb or the poll timer finish the job; resume_ev makes sure a
	 * top-level callback looks at the session soon */
	timer_arm_ms(s, CLOSE_POLL_MS);
	event_active(s->resume_ev, EV_TIMEOUT, 1);
}

/* The connection is unusable: nothing more is sent. */
static void
session_lost(struct smtp_session *s, const char *reason)
{
	if (s->state == SMTP_STATE_CLOSED)
		return;
	if (s->state != SMTP_STATE_CLOSING)
		log_info("sid=%s event=lost ip=%s reason=\"%s\"", s->id, s->ip,
		    reason);
	smtp_enter_state(s, SMTP_STATE_CLOSED);
	evbuffer_drain(s->out, evbuffer_get_length(s->out));
	bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	evtimer_del(s->timer);
	evtimer_del(s->pause_ev);
}

static void
tx_free(struct smtp_tx **txp)
{
	struct smtp_tx *tx = *txp;

	if (tx == NULL)
		return;
	address_free(&tx->from);
	for (unsigned int i = 0; i < tx->rcpt_count; i++)
		address_free(&tx->rcpts[i]);
	free(tx->rcpts);
	address_free(&tx->asked_rcpt);
	free(tx);
	*txp = NULL;
}

static void
auth_reset(struct smtp_session *s)
{
	if (s->auth_user != NULL) {
		str_wipe(s->auth_user, strlen(s->auth_user));
		x_free(&s->auth_user);
	}
	s->auth_step = AUTH_NONE;
}

static void
session_free(struct smtp_session *s)
{
	if (s->tx != NULL)
		tx_abort(s, "disconnect");
	tx_free(&s->new_tx);
	if (s->hooks->on_disconnect != NULL)
		s->hooks->on_disconnect(s, s->ctx);
	log_debug("sid=%s event=disconnect ip=%s commands=%u errors=%u", s->id,
	    s->ip, s->commands, s->errors);
	event_free(s->timer);
	event_free(s->pause_ev);
	event_free(s->resume_ev);
	bufferevent_free(s->bev);
	if (s->cfg.ssl_ctx != NULL)
		SSL_CTX_free(s->cfg.ssl_ctx);
	evbuffer_free(s->out);
	smtp_line_reader_free(&s->lr);
	auth_reset(s);
	free(s->helo);
	free(s->asked_helo);
	free(s->auth_login);
	free(s->asked_login);
	free(s);
}

/*
 * Called at the end of every top-level callback: frees the session once it
 * is closed and no question is open. Returns true if it did.
 */
static bool
session_maybe_finish(struct smtp_session *s)
{
	if (s->state == SMTP_STATE_CLOSING && output_empty(s))
		session_lost(s, "closed");
	if (s->state != SMTP_STATE_CLOSED || s->question != Q_NONE || s->in_hook)
		return false;
	session_free(s);
	return true;
}

/* ------------------------------------------------------------------ */
/* hooks */

static void
tx_abort(struct smtp_session *s, const char *reason)
{
	if (s->tx == NULL)
		return;
	log_debug("sid=%s event=tx-abort reason=\"%s\"", s->id, reason);
	if (s->hooks->on_tx_abort != NULL)
		s->hooks->on_tx_abort(s, reason, s->ctx);
	tx_free(&s->tx);
}

static void apply_answer(struct smtp_session *s, enum smtp_question q,
    int code, const char *enh, const char *text);

/* Marks a question open before its hook runs. */
static void
ask_begin(struct smtp_session *s, enum smtp_question q)
{
	if (s->question != Q_NONE)
		panic("smtp: question %d asked while %d is open", q, s->question);
	s->question = q;
	s->in_hook = true;
}

static void
ask_end(struct smtp_session *s)
{
	s->in_hook = false;
}

/* A NULL hook: the default answer. */
static void
ask_default(struct smtp_session *s, int code, const char *enh, const char *text)
{
	enum smtp_question q = s->question;

	s->question = Q_NONE;
	apply_answer(s, q, code, enh, text);
}

void
smtp_session_reply(struct smtp_session *s, int code, const char *enhanced,
    const char *fmt, ...)
{
	char text[REPLY_TEXT_MAX];
	enum smtp_question q = s->question;
	va_list ap;

	if (q == Q_NONE)
		panic("smtp: smtp_session_reply(%d) with no question open", code);
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	s->question = Q_NONE;
	apply_answer(s, q, code, enhanced, text);
	if (!s->in_hook)
		event_active(s->resume_ev, EV_TIMEOUT, 1);
}

bool
smtp_session_reply_pending(const struct smtp_session *s)
{
	return s->question != Q_NONE;
}

static void
send_greeting(struct smtp_session *s)
{
	reply(s, 220, NULL, "%s ESMTP", s->cfg.hostname);
	smtp_enter_state(s, SMTP_STATE_COMMAND);
}

static void
send_ehlo(struct smtp_session *s)
{
	bool tls = smtp_session_tls(s);
	struct buf b;

	if (!s->esmtp) {
		reply(s, 250, NULL, "%s", s->cfg.hostname);
		return;
	}
	buf_init(&b, REPLY_TEXT_MAX);
	buf_printf(&b, "%s\nPIPELINING\nSIZE %" PRIu64 "\n8BITMIME\nSMTPUTF8\n"
	    "ENHANCEDSTATUSCODES\n", s->cfg.hostname, s->cfg.max_message_size);
	if (!tls && s->cfg.ssl_ctx != NULL)
		buf_append_str(&b, "STARTTLS\n");
	if (tls && s->cfg.auth_enabled)
		buf_append_str(&b, "AUTH PLAIN LOGIN\n");
	buf_printf(&b, "CHUNKING\nLIMITS RCPTMAX=%u", s->cfg.max_recipients);
	reply_text(s, 250, NULL, buf_cstr(&b));
	buf_free(&b);
}

static void
start_body(struct smtp_session *s)
{
	s->tx->body_started = true;
	smtp_data_reader_init(&s->tx->dr, s->cfg.data_line_max);
}

/* The BDAT chunk being read is thrown away and this reply sent after it. */
static void
bdat_refuse(struct smtp_session *s, int code, const char *enh,
    const char *text, bool counts)
{
	s->bdat_discard = true;
	s->bdat_err_counts = counts;
	s->bdat_err_code = code;
	str_copy(s->bdat_err_enh, sizeof(s->bdat_err_enh), enh != NULL ? enh : "");
	str_copy(s->bdat_err_text, sizeof(s->bdat_err_text), text);
}

/* Acts on the glue's answer to question q. */
static void
apply_answer(struct smtp_session *s, enum smtp_question q, int code,
    const char *enh, const char *text)
{
	bool ok = code >= 200 && code < 300;
	char esc[200];

	if (session_gone(s)) {
		/* the client is gone: only tidy up; a data-end answer ends the
		 * transaction (no on_tx_abort after it) */
		if (q == Q_DATA_END)
			tx_free(&s->tx);
		tx_free(&s->new_tx);
		x_free(&s->asked_helo);
		x_free(&s->asked_login);
		return;
	}
	switch (q) {
	case Q_CONNECT:
		if (ok) {
			s->connect_ok = true;
			if (s->pause_over)
				send_greeting(s);
			return;
		}
		reply_text(s, code, enh, text);
		session_close(s, "refused at connect");
		return;
	case Q_HELO:
		if (ok) {
			free(s->helo);
			s->helo = s->asked_helo;
			s->asked_helo = NULL;
			s->esmtp = s->asked_ehlo;
			send_ehlo(s);
		} else {
			x_free(&s->asked_helo);
			reply_text(s, code, enh, text);
		}
		break;
	case Q_AUTH:
		log_info("sid=%s event=auth ip=%s login=%s result=%s code=%d", s->id,
		    s->ip, log_escape(esc, sizeof(esc), s->asked_login,
		    strlen(s->asked_login)), ok ? "ok" : "failed", code);
		if (ok) {
			free(s->auth_login);
			s->auth_login = s->asked_login;
			s->asked_login = NULL;
		} else {
			x_free(&s->asked_login);
		}
		reply_text(s, code, enh, text);
		break;
	case Q_MAIL:
		if (ok) {
			s->tx = s->new_tx;
			s->new_tx = NULL;
		} else {
			tx_free(&s->new_tx);
		}
		reply_text(s, code, enh, text);
		break;
	case Q_RCPT:
		if (ok) {
			struct smtp_tx *tx = s->tx;

			tx->rcpts = xreallocarray(tx->rcpts, tx->rcpt_count + 1,
			    sizeof(*tx->rcpts));
			tx->rcpts[tx->rcpt_count++] = tx->asked_rcpt;
			memset(&tx->asked_rcpt, 0, sizeof(tx->asked_rcpt));
		} else {
			address_free(&s->tx->asked_rcpt);
		}
		reply_text(s, code, enh, text);
		break;
	case Q_DATA_BEGIN:
		if (code == SMTP_REPLY_DATA_GO) {
			start_body(s);
			if (s->data_is_bdat) {
				smtp_enter_state(s, SMTP_STATE_BDAT);
			} else {
				reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
				smtp_enter_state(s, SMTP_STATE_DATA);
			}
		} else if (s->data_is_bdat) {
			/* read the chunk away, then refuse and drop the
			 * transaction (RFC 3030: no more chunks after a failure) */
			bdat_refuse(s, code, enh, text, false);
			smtp_enter_state(s, SMTP_STATE_BDAT);
		} else {
			reply_text(s, code, enh, text);
		}
		break;
	case Q_DATA_END:
		log_debug("sid=%s event=data-end code=%d size=%" PRIu64, s->id,
		    code, s->tx->size);
		tx_free(&s->tx);
		reply_text(s, code, enh, text);
		break;
	default:
		panic("smtp: answer to unknown question %d", q);
	}
	if (code == 421)
		session_close(s, "421 from policy");
}

/* ------------------------------------------------------------------ */
/* commands */

static bool
is_submission(const struct smtp_session *s)
{
	return s->cfg.port_kind != SMTP_PORT_MTA;
}

/* Only "name" (a domain, an address literal or any printable token). */
static int
check_helo(struct smtp_session *s, const char *args)
{
	size_t n = strlen(args);

	while (n > 0 && args[n - 1] == ' ')
		n--;
	if (n == 0 || n > 255 || memchr(args, ' ', n) != NULL ||
	    memchr(args, '\t', n) != NULL) {
		reply_error(s, 501, "5.5.4", "Syntax: EHLO hostname");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)args[i] >= 0x80) {
			reply_error(s, 501, "5.5.4", "Invalid EHLO hostname");
			return -1;
		}
	}
	free(s->asked_helo);
	s->asked_helo = xstrndup(args, n);
	return 0;
}

static void
proceed_helo_common(struct smtp_session *s, bool ehlo)
{
	/* RFC 5321 4.1.4: EHLO in a session resets it like RSET */
	tx_abort(s, "EHLO");
	s->asked_ehlo = ehlo;
	ask_begin(s, Q_HELO);
	if (s->hooks->on_helo != NULL)
		s->hooks->on_helo(s, s->asked_helo, ehlo, s->ctx);
	else
		ask_default(s, 250, NULL, "OK");
	ask_end(s);
}

static void
proceed_ehlo(struct smtp_session *s, const char *args)
{
	proceed_helo_common(s, true);
}

static void
proceed_helo(struct smtp_session *s, const char *args)
{
	proceed_helo_common(s, false);
}

/* "FROM:" or "TO:", case-insensitive; tolerates spaces before the path. */
static const char *
skip_keyword(const char *args, const char *kw)
{
	size_t n = strlen(kw);

	if (strncasecmp(args, kw, n) != 0)
		return NULL;
	args += n;
	while (*args == ' ')
		args++;
	return args;
}

static int
check_mail(struct smtp_session *s, const char *args)
{
	struct esmtp_params params;
	struct smtp_tx *tx;
	struct address from;
	const char *p, *error;
	size_t consumed;
	int ret = -1;

	if (s->tx != NULL) {
		reply_error(s, 503, "5.5.1", "Nested MAIL command");
		return -1;
	}
	if (is_submission(s) && s->auth_login == NULL) {
		reply_error(s, 530, "5.7.0", "Authentication required");
		return -1;
	}
	if ((p = skip_keyword(args, "FROM:")) == NULL) {
		reply_error(s, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
		return -1;
	}
	if (address_parse_path(p, strlen(p), ADDRESS_ALLOW_NULL | ADDRESS_ALLOW_UTF8,
	    &from, &consumed, &error) < 0) {
		reply_error(s, 501, "5.1.7", "Bad sender address syntax: %s", error);
		return -1;
	}
	p += consumed;
	if (*p != '\0' && *p != ' ') {
		address_free(&from);
		reply_error(s, 501, "5.1.7", "Bad sender address syntax");
		return -1;
	}
	if (esmtp_params_parse(p, strlen(p), ADDRESS_ALLOW_UTF8, &params,
	    &error) < 0) {
		esmtp_params_free(&params);
		address_free(&from);
		reply_error(s, 501, "5.5.4", "Bad MAIL parameters: %s", error);
		return -1;
	}
	tx = xcalloc(1, sizeof(*tx));
	tx->from = from;
	for (unsigned int i = 0; i < params.count; i++) {
		const char *kw = params.list[i].keyword, *v = params.list[i].value;
		unsigned long long size;

		for (unsigned int j = 0; j < i; j++) {
			if (strcasecmp(kw, params.list[j].keyword) == 0) {
				reply_error(s, 501, "5.5.4", "Duplicate MAIL parameter");
				goto out;
			}
		}
		if (strcasecmp(kw, "SIZE") == 0) {
			if (v == NULL || str_to_ullong(v, &size) < 0) {
				reply_error(s, 501, "5.5.4", "Bad SIZE parameter");
				goto out;
			}
			if (size > s->cfg.max_message_size) {
				reply(s, 552, "5.3.4", "Message size exceeds fixed maximum message size");
				goto out;
			}
			tx->declared_size = size;
		} else if (strcasecmp(kw, "BODY") == 0) {
			if (v != NULL && strcasecmp(v, "7BIT") == 0) {
				tx->body = BODY_7BIT;
			} else if (v != NULL && strcasecmp(v, "8BITMIME") == 0) {
				tx->body = BODY_8BITMIME;
			} else {
				reply_error(s, 555, "5.5.4", "Unsupported BODY type");
				goto out;
			}
		} else if (strcasecmp(kw, "SMTPUTF8") == 0) {
			if (v != NULL) {
				reply_error(s, 501, "5.5.4", "SMTPUTF8 takes no value");
				goto out;
			}
			tx->smtputf8 = true;
		} else if (strcasecmp(kw, "AUTH") == 0) {
			/* RFC 4954 AUTH=<mailbox>: accepted, not trusted, ignored */
			if (v == NULL) {
				reply_error(s, 501, "5.5.4", "Bad AUTH parameter");
				goto out;
			}
		} else {
			reply_error(s, 555, "5.5.4", "Unsupported MAIL parameter");
			goto out;
		}
	}
	if (tx->from.utf8 && !tx->smtputf8) {
		reply_error(s, 553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
		goto out;
	}
	if (s->shutdown) {
		reply(s, 421, "4.3.2", "%s Service shutting down", s->cfg.hostname);
		session_close(s, "shutdown");
		goto out;
	}
	tx_free(&s->new_tx);
	s->new_tx = tx;
	tx = NULL;
	ret = 0;
out:
	esmtp_params_free(&params);
	tx_free(&tx);
	return ret;
}

static void
proceed_mail(struct smtp_session *s, const char *args)
{
	if (log_get_level() <= LOG_DEBUG) {
		char esc[300], *a = address_to_string(&s->new_tx->from);

		log_debug("sid=%s event=mail from=<%s>", s->id,
		    log_escape(esc, sizeof(esc), a, strlen(a)));
		free(a);
	}
	ask_begin(s, Q_MAIL);
	if (s->hooks->on_mail != NULL)
		s->hooks->on_mail(s, &s->new_tx->from, s->ctx);
	else
		ask_default(s, 250, "2.1.0", "OK");
	ask_end(s);
}

static int
check_rcpt(struct smtp_session *s, const char *args)
{
	struct address to;
	const char *p, *error;
	size_t consumed;

	if ((p = skip_keyword(args, "TO:")) == NULL) {
		reply_error(s, 501, "5.5.4", "Syntax: RCPT TO:<address>");
		return -1;
	}
	if (address_parse_path(p, strlen(p), ADDRESS_ALLOW_POSTMASTER |
	    ADDRESS_ALLOW_UTF8, &to, &consumed, &error) < 0) {
		reply_error(s, 501, "5.1.3", "Bad recipient address syntax: %s", error);
		return -1;
	}
	p += consumed;
	while (*p == ' ')
		p++;
	if (*p != '\0') {
		address_free(&to);
		reply_error(s, 555, "5.5.4", "Unsupported RCPT parameter");
		return -1;
	}
	if (to.utf8 && !s->tx->smtputf8) {
		address_free(&to);
		reply_error(s, 553, "5.6.7", "Non-ASCII address requires SMTPUTF8");
		return -1;
	}
	if (s->tx->rcpt_count >= s->cfg.max_recipients) {
		address_free(&to);
		reply(s, 452, "4.5.3", "Too many recipients");
		return -1;
	}
	address_free(&s->tx->asked_rcpt);
	s->tx->asked_rcpt = to;
	return 0;
}

static void
proceed_rcpt(struct smtp_session *s, const char *args)
{
	if (log_get_level() <= LOG_DEBUG) {
		char esc[300], *a = address_to_string(&s->tx->asked_rcpt);

		log_debug("sid=%s event=rcpt to=<%s>", s->id,
		    log_escape(esc, sizeof(esc), a, strlen(a)));
		free(a);
	}
	ask_begin(s, Q_RCPT);
	if (s->hooks->on_rcpt != NULL)
		s->hooks->on_rcpt(s, &s->tx->asked_rcpt, s->ctx);
	else
		ask_default(s, 250, "2.1.5", "OK");
	ask_end(s);
}

static void
ask_data_begin(struct smtp_session *s, bool bdat)
{
	s->data_is_bdat = bdat;
	ask_begin(s, Q_DATA_BEGIN);
	if (s->hooks->on_data_begin != NULL)
		s->hooks->on_data_begin(s, s->ctx);
	else
		ask_default(s, SMTP_REPLY_DATA_GO, NULL, "");
	ask_end(s);
}

static int
check_data(struct smtp_session *s, const char *args)
{
	if (s->tx->chunking) {
		reply_error(s, 503, "5.5.1", "DATA not allowed after BDAT");
		return -1;
	}
	if (s->tx->rcpt_count == 0) {
		reply_error(s, 554, "5.5.1", "No valid recipients");
		return -1;
	}
	return 0;
}

static void
proceed_data(struct smtp_session *s, const char *args)
{
	ask_data_begin(s, false);
}

/* The reply to a body that is complete; faults found while reading first. */
static void
body_complete(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;

	smtp_enter_state(s, SMTP_STATE_COMMAND);
	if (tx->chunk_error) {
		reply(s, 451, "4.3.0", "Error writing message, try again later");
		tx_abort(s, "write error");
	} else if (tx->too_big) {
		reply(s, 552, "5.3.4", "Message size exceeds fixed maximum message size");
		tx_abort(s, "too big");
	} else if (tx->dr.bare_cr_lf) {
		log_info("sid=%s event=bare-cr-lf ip=%s", s->id, s->ip);
		reply(s, 550, "5.5.2", "Message refused: bare CR or LF (lines must end in CRLF)");
		tx_abort(s, "bare CR or LF");
	} else if (tx->dr.long_line) {
		reply(s, 550, "5.5.2", "Message refused: line too long");
		tx_abort(s, "line too long");
	} else {
		ask_begin(s, Q_DATA_END);
		if (s->hooks->on_data_end != NULL)
			s->hooks->on_data_end(s, s->ctx);
		else
			ask_default(s, 250, "2.0.0", "OK");
		ask_end(s);
	}
}

/* Hands body bytes to the glue unless the message is already lost. */
static void
body_deliver(struct smtp_session *s, const unsigned char *p, size_t n)
{
	struct smtp_tx *tx = s->tx;

	tx->size += n;
	if (tx->size > s->cfg.max_message_size)
		tx->too_big = true;
	if (n == 0 || tx->too_big || tx->chunk_error || tx->dr.bare_cr_lf ||
	    tx->dr.long_line)
		return;
	if (s->hooks->on_data_chunk != NULL &&
	    s->hooks->on_data_chunk(s, p, n, s->ctx) < 0)
		tx->chunk_error = true;
}

/* Reads DATA body bytes; returns false when it needs more input. */
static bool
process_data(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	unsigned char out[DATA_CHUNK];

	while (evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		size_t n, used, out_len;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		n = v.iov_len < sizeof(out) - 1 ? v.iov_len : sizeof(out) - 1;
		used = smtp_data_reader_feed(&s->tx->dr, v.iov_base, n, out,
		    &out_len);
		evbuffer_drain(in, used);
		body_deliver(s, out, out_len);
		if (s->tx->dr.done) {
			body_complete(s);
			return true;
		}
	}
	return false;
}

/* BDAT: "n" or "n LAST". */
static int
check_bdat(struct smtp_session *s, const char *args)
{
	char num[24];
	const char *sp = strchr(args, ' ');
	size_t n = sp != NULL ? (size_t)(sp - args) : strlen(args);
	unsigned long long size;

	if (n == 0 || n >= sizeof(num)) {
		reply_error(s, 501, "5.5.4", "Syntax: BDAT size [LAST]");
		return -1;
	}
	memcpy(num, args, n);
	num[n] = '\0';
	if (str_to_ullong(num, &size) < 0) {
		reply_error(s, 501, "5.5.4", "Syntax: BDAT size [LAST]");
		return -1;
	}
	s->bdat_last = false;
	if (sp != NULL) {
		while (*sp == ' ')
			sp++;
		if (strcasecmp(sp, "LAST") == 0) {
			s->bdat_last = true;
		} else if (*sp != '\0') {
			reply_error(s, 501, "5.5.4", "Syntax: BDAT size [LAST]");
			return -1;
		}
	}
	s->bdat_left = s->bdat_size = size;
	s->bdat_discard = false;
	/* from here on the chunk is read whatever happens, so that its
	 * octets are never taken for commands */
	if (s->cfg.port_kind == SMTP_PORT_SUBMISSION && !smtp_session_tls(s))
		bdat_refuse(s, 530, "5.7.0", "Must issue a STARTTLS command first", true);
	else if (s->helo == NULL)
		bdat_refuse(s, 503, "5.5.1", "Send EHLO/HELO first", true);
	else if (s->tx == NULL)
		bdat_refuse(s, 503, "5.5.1", "Send MAIL first", true);
	else if (s->tx->rcpt_count == 0)
		bdat_refuse(s, 554, "5.5.1", "No valid recipients", true);
	else if (s->tx->body_started && !s->tx->chunking)
		bdat_refuse(s, 503, "5.5.1", "BDAT not allowed after DATA", true);
	return 0;
}

static void
proceed_bdat(struct smtp_session *s, const char *args)
{
	if (s->bdat_discard || s->tx->body_started) {
		smtp_enter_state(s, SMTP_STATE_BDAT);
		return;
	}
	s->tx->chunking = true;
	ask_data_begin(s, true);
}

/* The chunk has been read in full. */
static void
bdat_complete(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;

	smtp_enter_state(s, SMTP_STATE_COMMAND);
	if (s->bdat_discard) {
		const char *enh = s->bdat_err_enh[0] != '\0' ? s->bdat_err_enh : NULL;

		s->bdat_discard = false;
		tx_abort(s, "BDAT refused");
		if (s->bdat_err_counts)
			reply_error(s, s->bdat_err_code, enh, "%s", s->bdat_err_text);
		else
			reply_text(s, s->bdat_err_code, enh, s->bdat_err_text);
		if (s->bdat_err_code == 421)
			session_close(s, "421 from policy");
		return;
	}
	if (tx->chunk_error || tx->too_big) {
		body_complete(s);
		return;
	}
	if (!s->bdat_last) {
		reply(s, 250, "2.0.0", "%" PRIu64 " octets received", s->bdat_size);
		return;
	}
	smtp_data_reader_finish_binary(&tx->dr);
	body_complete(s);
}

static bool
process_bdat(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);

	while (s->bdat_left > 0 && evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		size_t n;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		n = v.iov_len;
		if ((uint64_t)n > s->bdat_left)
			n = (size_t)s->bdat_left;
		if (!s->bdat_discard) {
			smtp_data_reader_scan_binary(&s->tx->dr, v.iov_base, n);
			body_deliver(s, v.iov_base, n);
		}
		evbuffer_drain(in, n);
		s->bdat_left -= n;
	}
	if (s->bdat_left > 0)
		return false;
	bdat_complete(s);
	return true;
}

static void
proceed_rset(struct smtp_session *s, const char *args)
{
	tx_abort(s, "RSET");
	reply(s, 250, "2.0.0", "OK");
}

static void
proceed_noop(struct smtp_session *s, const char *args)
{
	reply(s, 250, "2.0.0", "OK");
}

static void
proceed_quit(struct smtp_session *s, const char *args)
{
	reply(s, 221, "2.0.0", "%s Bye", s->cfg.hostname);
	session_close(s, "QUIT");
}

static void
proceed_help(struct smtp_session *s, const char *args)
{
	reply(s, 214, "2.0.0", "See https://www.rfc-editor.org/rfc/rfc5321");
}

static void
proceed_vrfy(struct smtp_session *s, const char *args)
{
	/* never reveals whether an account exists */
	reply(s, 252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery");
}

static void
proceed_expn(struct smtp_session *s, const char *args)
{
	reply_error(s, 502, "5.5.1", "EXPN not available");
}

/*
 * A web browser or proxy pointed at us (cross-protocol attacks): nothing it
 * sends is SMTP, so do not read on (Postfix smtpd_forbidden_commands).
 */
static void
proceed_http(struct smtp_session *s, const char *args)
{
	log_info("sid=%s event=http-command ip=%s", s->id, s->ip);
	reply(s, 421, "4.7.0", "%s HTTP is not spoken here, closing connection",
	    s->cfg.hostname);
	session_close(s, "HTTP command");
}

/* AUTH */

static int
check_auth(struct smtp_session *s, const char *args)
{
	if (!s->cfg.auth_enabled) {
		reply_error(s, 503, "5.5.1", "AUTH not available");
		return -1;
	}
	if (!smtp_session_tls(s)) {
		reply_error(s, 538, "5.7.11", "Encryption required for requested authentication mechanism");
		return -1;
	}
	if (s->auth_login != NULL) {
		reply_error(s, 503, "5.5.1", "Already authenticated");
		return -1;
	}
	if (s->tx != NULL) {
		reply_error(s, 503, "5.5.1", "AUTH not allowed during a mail transaction");
		return -1;
	}
	if (*args == '\0') {
		reply_error(s, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
		return -1;
	}
	return 0;
}

static void
ask_auth(struct smtp_session *s, const char *mech, const char *authzid,
    const char *login, char *password)
{
	free(s->asked_login);
	s->asked_login = xstrdup(login);
	ask_begin(s, Q_AUTH);
	if (s->hooks->on_auth != NULL)
		s->hooks->on_auth(s, mech, authzid, login, password, s->ctx);
	else
		ask_default(s, 454, "4.7.0", "Temporary authentication failure");
	ask_end(s);
	str_wipe(password, strlen(password));
}

/* Decodes one base64 response; "=" is the empty response (RFC 4954). */
static long
auth_decode(struct smtp_session *s, const char *line, unsigned char *out,
    size_t outsize)
{
	long n;

	if (strcmp(line, "=") == 0)
		return 0;
	n = smtp_base64_decode(line, strlen(line), out, outsize);
	if (n < 0)
		reply_error(s, 501, "5.5.2", "Invalid base64 data");
	return n;
}

/* PLAIN: authzid NUL authcid NUL passwd (RFC 4616). */
static void
auth_plain(struct smtp_session *s, const char *response)
{
	unsigned char dec[AUTH_DECODED_MAX + 1];
	long n = auth_decode(s, response, dec, AUTH_DECODED_MAX);
	const char *authzid, *login;
	char *password;

	if (n < 0)
		return;
	if (smtp_sasl_plain_split(dec, (size_t)n, &authzid, &login,
	    &password) < 0) {
		reply_error(s, 501, "5.5.2", "Invalid AUTH PLAIN response");
		goto out;
	}
	ask_auth(s, "PLAIN", authzid, login, password);
out:
	str_wipe(dec, sizeof(dec));
}

static void
proceed_auth(struct smtp_session *s, const char *args)
{
	const char *sp = strchr(args, ' ');
	size_t mlen = sp != NULL ? (size_t)(sp - args) : strlen(args);
	const char *initial = sp != NULL ? sp + 1 : NULL;

	if (mlen == 5 && strncasecmp(args, "PLAIN", 5) == 0) {
		if (initial != NULL) {
			auth_plain(s, initial);
			return;
		}
		s->auth_step = AUTH_PLAIN_RESPONSE;
		reply(s, 334, NULL, "%s", "");
		smtp_enter_state(s, SMTP_STATE_AUTH);
	} else if (mlen == 5 && strncasecmp(args, "LOGIN", 5) == 0) {
		if (initial != NULL) {
			unsigned char dec[256];
			long n = auth_decode(s, initial, dec, sizeof(dec) - 1);

			if (n < 0)
				return;
			dec[n] = '\0';
			if ((size_t)n != strlen((char *)dec) || n == 0) {
				reply_error(s, 501, "5.5.2", "Invalid user name");
				return;
			}
			s->auth_user = xstrdup((char *)dec);
			s->auth_step = AUTH_LOGIN_PASS;
			reply(s, 334, NULL, "UGFzc3dvcmQ6");
		} else {
			s->auth_step = AUTH_LOGIN_USER;
			reply(s, 334, NULL, "VXNlcm5hbWU6");
		}
		smtp_enter_state(s, SMTP_STATE_AUTH);
	} else {
		reply_error(s, 504, "5.5.4", "Unrecognized authentication mechanism");
	}
}

/* A line sent after a 334 challenge. */
static void
auth_continue(struct smtp_session *s, const char *line)
{
	enum auth_step step = s->auth_step;
	unsigned char dec[AUTH_DECODED_MAX + 1];
	long n;

	smtp_enter_state(s, SMTP_STATE_COMMAND);
	s->auth_step = AUTH_NONE;
	if (strcmp(line, "*") == 0) {
		auth_reset(s);
		reply_error(s, 501, "5.7.0", "Authentication cancelled");
		return;
	}
	if (step == AUTH_PLAIN_RESPONSE) {
		auth_plain(s, line);
		return;
	}
	n = auth_decode(s, line, dec, AUTH_DECODED_MAX);
	if (n < 0) {
		auth_reset(s);
		return;
	}
	dec[n] = '\0';
	if ((size_t)n != strlen((char *)dec)) {
		auth_reset(s);
		reply_error(s, 501, "5.5.2", "Invalid AUTH LOGIN response");
	} else if (step == AUTH_LOGIN_USER) {
		if (n == 0) {
			reply_error(s, 501, "5.5.2", "Invalid user name");
		} else {
			s->auth_user = xstrdup((char *)dec);
			s->auth_step = AUTH_LOGIN_PASS;
			reply(s, 334, NULL, "UGFzc3dvcmQ6");
			smtp_enter_state(s, SMTP_STATE_AUTH);
		}
	} else if (step == AUTH_LOGIN_PASS) {
		char *user = s->auth_user;

		s->auth_user = NULL;
		ask_auth(s, "LOGIN", "", user, (char *)dec);
		str_wipe(user, strlen(user));
		free(user);
	} else {
		panic("smtp: AUTH continuation in step %d", step);
	}
	str_wipe(dec, sizeof(dec));
}

/* STARTTLS */

static void event_cb(struct bufferevent *bev, short what, void *arg);
static void read_cb(struct bufferevent *bev, void *arg);
static void write_cb(struct bufferevent *bev, void *arg);

static int
check_starttls(struct smtp_session *s, const char *args)
{
	if (smtp_session_tls(s)) {
		reply_error(s, 503, "5.5.1", "TLS already active");
		return -1;
	}
	if (s->cfg.ssl_ctx == NULL) {
		reply_error(s, 502, "5.5.1", "STARTTLS not available");
		return -1;
	}
	return 0;
}

static void
proceed_starttls(struct smtp_session *s, const char *args)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct bufferevent *tls;
	SSL *ssl = SSL_new(s->cfg.ssl_ctx);
	size_t junk = evbuffer_get_length(in);

	if (ssl == NULL) {
		log_error("sid=%s event=starttls error=\"SSL_new failed\"", s->id);
		reply(s, 454, "4.7.0", "TLS not available due to temporary reason");
		return;
	}
	reply(s, 220, "2.0.0", "Ready to start TLS");
	flush_out(s);
	/* RFC 3207 section 6 / CVE-2011-0411: whatever the client sent after
	 * STARTTLS before it could have seen our 220 is thrown away, never
	 * read as commands under TLS */
	if (junk > 0) {
		log_info("sid=%s event=starttls-injection ip=%s bytes=%zu", s->id,
		    s->ip, junk);
		evbuffer_drain(in, junk);
	}
	smtp_line_reader_next(&s->lr);
	tx_abort(s, "STARTTLS");
	x_free(&s->helo);
	s->esmtp = false;
	auth_reset(s);
	tls = bufferevent_openssl_filter_new(s->base, s->bev, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tls == NULL) {
		SSL_free(ssl);
		log_error("sid=%s event=starttls error=\"filter failed\"", s->id);
		session_close(s, "STARTTLS failed");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	s->bev = tls;
	{
		struct timeval wt = { s->cfg.data_timeout_ms / 1000,
		    (s->cfg.data_timeout_ms % 1000) * 1000 };

		bufferevent_set_timeouts(tls, NULL, &wt);
	}
	bufferevent_setcb(tls, read_cb, write_cb, event_cb, s);
	smtp_enter_state(s, SMTP_STATE_TLS);
}

static void
tls_established(struct smtp_session *s)
{
	if (s->tls_logged)
		return;
	s->tls_logged = true;
	log_info("sid=%s event=tls version=%s cipher=%s", s->id,
	    smtp_session_tls_version(s), smtp_session_tls_cipher(s));
	if (s->state == SMTP_STATE_TLS) {
		smtp_enter_state(s, SMTP_STATE_COMMAND);
		if (s->hooks->on_starttls_done != NULL)
			s->hooks->on_starttls_done(s, s->ctx);
	}
}

static const struct smtp_cmd commands[] = {
	{ "EHLO", CMD_PRE_TLS | CMD_LAST, check_helo, proceed_ehlo },
	{ "HELO", CMD_PRE_TLS | CMD_LAST, check_helo, proceed_helo },
	{ "MAIL", CMD_HELO, check_mail, proceed_mail },
	{ "RCPT", CMD_HELO | CMD_TX, check_rcpt, proceed_rcpt },
	{ "DATA", CMD_HELO | CMD_TX | CMD_NO_ARGS | CMD_LAST, check_data, proceed_data },
	{ "BDAT", CMD_RAW, check_bdat, proceed_bdat },
	{ "RSET", CMD_PRE_TLS | CMD_NO_ARGS, NULL, proceed_rset },
	{ "NOOP", CMD_PRE_TLS | CMD_LAST, NULL, proceed_noop },
	{ "QUIT", CMD_PRE_TLS | CMD_NO_ARGS | CMD_LAST, NULL, proceed_quit },
	{ "HELP", CMD_PRE_TLS | CMD_LAST, NULL, proceed_help },
	{ "VRFY", CMD_LAST, NULL, proceed_vrfy },
	{ "EXPN", CMD_LAST, NULL, proceed_expn },
	{ "STARTTLS", CMD_PRE_TLS | CMD_NO_ARGS | CMD_LAST, check_starttls, proceed_starttls },
	{ "AUTH", CMD_HELO | CMD_LAST, check_auth, proceed_auth },
	{ "GET", CMD_RAW, NULL, proceed_http },
	{ "POST", CMD_RAW, NULL, proceed_http },
	{ "HEAD", CMD_RAW, NULL, proceed_http },
	{ "CONNECT", CMD_RAW, NULL, proceed_http },
};

static const struct smtp_cmd *
command_find(const char *verb)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcasecmp(commands[i].name, verb) == 0)
			return &commands[i];
	}
	return NULL;
}

static void
session_command(struct smtp_session *s, const char *line, size_t len)
{
	const struct smtp_cmd *cmd;
	const char *args;
	char verb[16];

	s->commands++;
	if (!smtp_command_chars_ok(line, len)) {
		reply_error(s, 500, "5.5.2", "Bad character in command");
		return;
	}
	if (smtp_command_split(line, verb, &args) < 0 ||
	    (cmd = command_find(verb)) == NULL) {
		char esc[64];

		log_debug("sid=%s event=unknown-command line=\"%s\"", s->id,
		    log_escape(esc, sizeof(esc), line, len));
		reply_error(s, 500, "5.5.2", "Command unrecognized");
		return;
	}
	if (log_get_level() <= LOG_TRACE) {
		char esc[200];

		/* AUTH arguments are secrets: only the verb is logged */
		log_trace("sid=%s event=command line=\"%s\"", s->id,
		    strcasecmp(verb, "AUTH") == 0 ? "AUTH" :
		    log_escape(esc, sizeof(esc), line, len));
	}
	if (cmd->flags & CMD_LAST)
		s->flush_now = true;
	if ((cmd->flags & CMD_RAW) == 0) {
		if (s->cfg.port_kind == SMTP_PORT_SUBMISSION &&
		    !smtp_session_tls(s) && (cmd->flags & CMD_PRE_TLS) == 0) {
			reply_error(s, 530, "5.7.0", "Must issue a STARTTLS command first");
			return;
		}
		if ((cmd->flags & CMD_NO_ARGS) && *args != '\0') {
			reply_error(s, 501, "5.5.4", "Syntax: %s (no parameters)", cmd->name);
			return;
		}
		if ((cmd->flags & CMD_HELO) && s->helo == NULL) {
			reply_error(s, 503, "5.5.1", "Send EHLO/HELO first");
			return;
		}
		if ((cmd->flags & CMD_TX) && s->tx == NULL) {
			reply_error(s, 503, "5.5.1", "Send MAIL first");
			return;
		}
	}
	if (cmd->check != NULL && cmd->check(s, args) < 0)
		return;
	cmd->proceed(s, args);
}

/* Reads one line into s->lr; SMTP_LINE_MORE when the input ran out. */
static enum smtp_line_result
read_line(struct smtp_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);

	while (evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		enum smtp_line_result r;
		size_t used;

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		r = smtp_line_reader_feed(&s->lr, v.iov_base, v.iov_len, &used);
		/* command lines may carry AUTH secrets: leave no copy behind in
		 * the evbuffer's freed chunks (the line reader wipes its own) */
		str_wipe(v.iov_base, used);
		evbuffer_drain(in, used);
		if (r != SMTP_LINE_MORE)
			return r;
	}
	return SMTP_LINE_MORE;
}

/* Runs the commands and body bytes that are buffered, in order. */
static void
session_process(struct smtp_session *s)
{
	while (s->question == Q_NONE && !session_gone(s)) {
		enum smtp_line_result r;

		if (output_backlog(s) > OUT_MAX) {
			/* the client does not read its replies: stop reading
			 * its commands until write_cb sees the output drained */
			break;
		}

		if (s->state == SMTP_STATE_DATA) {
			if (!process_data(s))
				break;
			continue;
		}
		if (s->state == SMTP_STATE_BDAT) {
			if (!process_bdat(s))
				break;
			continue;
		}
		if (s->state != SMTP_STATE_COMMAND && s->state != SMTP_STATE_AUTH)
			break;
		if (s->flush_now) {
			/* RFC 2920: the reply to a last-in-group command goes out now */
			s->flush_now = false;
			flush_out(s);
		}
		if (s->state == SMTP_STATE_COMMAND && s->shutdown && s->tx == NULL) {
			reply(s, 421, "4.3.2", "%s Service shutting down",
			    s->cfg.hostname);
			session_close(s, "shutdown");
			break;
		}
		r = read_line(s);
		if (r == SMTP_LINE_MORE)
			break;
		if (r != SMTP_LINE_OK) {
			s->commands++;
			if (s->state == SMTP_STATE_AUTH) {
				smtp_enter_state(s, SMTP_STATE_COMMAND);
				auth_reset(s);
			}
			if (r == SMTP_LINE_TOO_LONG)
				reply_error(s, 500, "5.5.2", "Line too long");
			else
				reply_error(s, 500, "5.5.2", "Bare LF in command (lines must end in CRLF)");
		} else if (s->state == SMTP_STATE_AUTH) {
			auth_continue(s, buf_cstr(&s->lr.line));
		} else {
			session_command(s, buf_cstr(&s->lr.line), s->lr.line.len);
		}
		smtp_line_reader_next(&s->lr);
	}
	/* The client half-closed: everything it sent has been run (or we wait
	 * for an answer or for it to read its replies); send what is left and
	 * end. A body cut short is dropped with the transaction. */
	if (s->eof && s->question == Q_NONE && !session_gone(s) &&
	    output_backlog(s) <= OUT_MAX)
		session_close(s, "client closed the connection");
	session_update_io(s);
}

/* ------------------------------------------------------------------ */
/* libevent callbacks: the top-level entries */

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	switch (s->state) {
	case SMTP_STATE_CONNECTED:
		if (s->cfg.greet_pause_ms > 0 && evbuffer_get_length(in) > 0) {
			log_info("sid=%s event=early-talker ip=%s", s->id, s->ip);
			evbuffer_drain(in, evbuffer_get_length(in));
			reply(s, 554, "5.5.0", "%s Error: talked before greeting",
			    s->cfg.hostname);
			session_close(s, "early talker");
		}
		break;
	case SMTP_STATE_CLOSING:
	case SMTP_STATE_CLOSED:
		evbuffer_drain(in, evbuffer_get_length(in));
		break;
	case SMTP_STATE_TLS:
		/* application data: the handshake is done even if the
		 * CONNECTED event has not been seen yet */
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
	struct smtp_session *s = arg;

	/* all output written: go on with input held back by OUT_MAX */
	if (!session_gone(s) && s->question == Q_NONE &&
	    s->state != SMTP_STATE_CONNECTED && s->state != SMTP_STATE_TLS)
		session_process(s);
	session_maybe_finish(s);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;

	if (what & BEV_EVENT_CONNECTED) {
		tls_established(s);
		session_process(s);
	} else if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    !session_gone(s) && s->state != SMTP_STATE_CONNECTED &&
	    s->state != SMTP_STATE_TLS) {
		/* A half-close after the last command ("QUIT" + FIN) still
		 * deserves the replies: finish the input, then close. */
		s->eof = true;
		bufferevent_disable(bev, EV_READ);
		if (s->question == Q_NONE)
			session_process(s);
	} else if ((what & BEV_EVENT_EOF) && s->state == SMTP_STATE_CLOSING) {
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
	struct smtp_session *s = arg;

	if (s->state == SMTP_STATE_CLOSING) {
		struct timeval now;

		evutil_gettimeofday(&now, NULL);
		if (output_empty(s) || evutil_timercmp(&now, &s->close_deadline, >))
			session_lost(s, "closed");
		else
			timer_arm_ms(s, CLOSE_POLL_MS);
	} else if (!session_gone(s)) {
		log_info("sid=%s event=timeout ip=%s state=%s", s->id, s->ip,
		    state_names[s->state]);
		reply(s, 421, "4.4.2", "%s Error: timeout exceeded, closing connection",
		    s->cfg.hostname);
		session_close(s, "timeout");
	}
	session_maybe_finish(s);
}

static void
pause_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	s->pause_over = true;
	if (s->state == SMTP_STATE_CONNECTED && s->connect_ok) {
		send_greeting(s);
		session_process(s);
	}
	session_maybe_finish(s);
}

static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	if (!session_gone(s) && s->question == Q_NONE)
		session_process(s);
	session_maybe_finish(s);
}

/* ------------------------------------------------------------------ */
/* public API */

static void
remote_text(const struct sockaddr *sa, socklen_t len, char *out, size_t outsize)
{
	str_copy(out, outsize, "unknown");
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
		    out, (socklen_t)outsize);
	} else if (sa->sa_family == AF_INET6 &&
	    len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		    out, (socklen_t)outsize);
	}
}

struct smtp_session *
smtp_session_new(struct event_base *base, struct bufferevent *bev,
    const struct smtp_server_settings *settings, const struct smtp_hooks *hooks,
    void *hook_ctx, const struct sockaddr *remote, socklen_t remote_len)
{
	static const char hex[] = "0123456789abcdef";
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	unsigned char rnd[8];

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		panic("smtp: RAND_bytes failed");
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
	if (s->cfg.max_message_size == 0)
		s->cfg.max_message_size = DEFAULT_MAX_SIZE;
	if (s->cfg.max_recipients == 0)
		s->cfg.max_recipients = DEFAULT_MAX_RCPT;
	if (s->cfg.cmd_line_max == 0)
		s->cfg.cmd_line_max = DEFAULT_CMD_LINE_MAX;
	if (s->cfg.data_line_max == 0)
		s->cfg.data_line_max = DEFAULT_DATA_LINE_MAX;
	if (s->cfg.cmd_timeout_ms == 0)
		s->cfg.cmd_timeout_ms = DEFAULT_CMD_TIMEOUT;
	if (s->cfg.data_timeout_ms == 0)
		s->cfg.data_timeout_ms = DEFAULT_DATA_TIMEOUT;
	if (s->cfg.max_errors == 0)
		s->cfg.max_errors = DEFAULT_MAX_ERRORS;
	/* our own reference: a certificate reload may drop the glue's */
	if (s->cfg.ssl_ctx != NULL)
		SSL_CTX_up_ref(s->cfg.ssl_ctx);
	s->hooks = hooks;
	s->ctx = hook_ctx;
	s->state = SMTP_STATE_CONNECTED;
	s->out = evbuffer_new();
	s->timer = evtimer_new(base, timer_cb, s);
	s->pause_ev = evtimer_new(base, pause_cb, s);
	s->resume_ev = event_new(base, -1, 0, resume_cb, s);
	if (s->out == NULL || s->timer == NULL || s->pause_ev == NULL ||
	    s->resume_ev == NULL)
		panic("smtp: out of memory creating a session");
	smtp_line_reader_init(&s->lr, s->cfg.cmd_line_max);
	bufferevent_setcb(bev, read_cb, write_cb, event_cb, s);
	{
		struct timeval wt = { s->cfg.data_timeout_ms / 1000,
		    (s->cfg.data_timeout_ms % 1000) * 1000 };

		bufferevent_set_timeouts(bev, NULL, &wt);
	}
	if (bufferevent_openssl_get_ssl(bev) != NULL)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	bufferevent_enable(bev, EV_WRITE);
	log_debug("sid=%s event=connect ip=%s port=%s", s->id, s->ip,
	    s->cfg.port_kind == SMTP_PORT_MTA ? "smtp" :
	    s->cfg.port_kind == SMTP_PORT_SUBMISSION ? "submission" : "submissions");

	if (s->cfg.greet_pause_ms > 0) {
		struct timeval tv = { s->cfg.greet_pause_ms / 1000,
		    (s->cfg.greet_pause_ms % 1000) * 1000 };

		evtimer_add(s->pause_ev, &tv);
	} else {
		s->pause_over = true;
	}
	ask_begin(s, Q_CONNECT);
	if (hooks->on_connect != NULL)
		hooks->on_connect(s, hook_ctx);
	else
		ask_default(s, 250, NULL, "");
	ask_end(s);
	session_update_io(s);
	return s;
}

void
smtp_session_shutdown(struct smtp_session *s)
{
	s->shutdown = true;
	if (!session_gone(s) && s->question == Q_NONE)
		event_active(s->resume_ev, EV_TIMEOUT, 1);
}

void
smtp_session_destroy(struct smtp_session *s)
{
	if (s->in_hook)
		panic("smtp: smtp_session_destroy() from inside a hook");
	s->question = Q_NONE;
	session_lost(s, "destroyed");
	session_free(s);
}

const char *
smtp_session_id(const struct smtp_session *s)
{
	return s->id;
}

const char *
smtp_session_remote_ip(const struct smtp_session *s)
{
	return s->ip;
}

enum smtp_port_kind
smtp_session_port_kind(const struct smtp_session *s)
{
	return s->cfg.port_kind;
}

const char *
smtp_session_helo(const struct smtp_session *s)
{
	return s->helo;
}

bool
smtp_session_esmtp(const struct smtp_session *s)
{
	return s->esmtp;
}

bool
smtp_session_tls(const struct smtp_session *s)
{
	return bufferevent_openssl_get_ssl(s->bev) != NULL;
}

const char *
smtp_session_tls_version(const struct smtp_session *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);

	return ssl != NULL ? SSL_get_version(ssl) : NULL;
}

const char *
smtp_session_tls_cipher(const struct smtp_session *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);

	return ssl != NULL ? SSL_get_cipher_name(ssl) : NULL;
}

const char *
smtp_session_auth_login(const struct smtp_session *s)
{
	return s->auth_login;
}

/* The open transaction, or the one on_mail is being asked about. */
static const struct smtp_tx *
cur_tx(const struct smtp_session *s)
{
	return s->tx != NULL ? s->tx : s->new_tx;
}

const struct address *
smtp_session_mail_from(const struct smtp_session *s)
{
	return cur_tx(s) != NULL ? &cur_tx(s)->from : NULL;
}

unsigned int
smtp_session_rcpt_count(const struct smtp_session *s)
{
	return s->tx != NULL ? s->tx->rcpt_count : 0;
}

const struct address *
smtp_session_rcpt(const struct smtp_session *s, unsigned int i)
{
	if (s->tx == NULL || i >= s->tx->rcpt_count)
		return NULL;
	return &s->tx->rcpts[i];
}

bool
smtp_session_smtputf8(const struct smtp_session *s)
{
	return cur_tx(s) != NULL && cur_tx(s)->smtputf8;
}

bool
smtp_session_8bitmime(const struct smtp_session *s)
{
	return cur_tx(s) != NULL && cur_tx(s)->body == BODY_8BITMIME;
}

const char *
smtp_session_body_type(const struct smtp_session *s)
{
	if (cur_tx(s) == NULL)
		return NULL;
	switch (cur_tx(s)->body) {
	case BODY_7BIT:
		return "7BIT";
	case BODY_8BITMIME:
		return "8BITMIME";
	default:
		return NULL;
	}
}

uint64_t
smtp_session_declared_size(const struct smtp_session *s)
{
	return cur_tx(s) != NULL ? cur_tx(s)->declared_size : 0;
}

uint64_t
smtp_session_body_size(const struct smtp_session *s)
{
	return s->tx != NULL ? s->tx->size : 0;
}

bool
smtp_session_chunking(const struct smtp_session *s)
{
	return s->tx != NULL && s->tx->chunking;
}
