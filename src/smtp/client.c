/*
 * The SMTP client. Every command we write pushes an expectation on a FIFO
 * (`pending`); every complete reply pops one and is handled by its kind.
 * That one mechanism serves both the lock-step dialogue and PIPELINING
 * (RFC 2920), where MAIL, the RCPTs and DATA go out in one write and the
 * replies come back in order.
 */
#include "smtp/client.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"

/* Body bytes queued on the socket before we wait for it to drain. */
#define OUT_HIGH (256 * 1024)
#define OUT_LOW (64 * 1024)
#define BDAT_CHUNK (64 * 1024)

enum cmd {
	CMD_GREETING,
	CMD_EHLO,
	CMD_HELO,
	CMD_STARTTLS,
	CMD_AUTH,
	CMD_RSET,
	CMD_MAIL,
	CMD_RCPT,
	CMD_DATA,
	CMD_DATA_END,
	CMD_BDAT,
	CMD_QUIT,
};

static const char *const cmd_names[] = {
	"greeting", "EHLO", "HELO", "STARTTLS", "AUTH", "RSET", "MAIL", "RCPT",
	"DATA", "end of data", "BDAT", "QUIT",
};

struct pending {
	enum cmd cmd;
	size_t rcpt;	/* CMD_RCPT */
	bool last;	/* CMD_BDAT: the LAST chunk */
};

enum phase {
	PHASE_OPENING,	/* greeting .. AUTH */
	PHASE_IDLE,	/* ready, no transaction */
	PHASE_TX,	/* a transaction is running */
	PHASE_QUIT,
	PHASE_DEAD,
};

struct smtp_client {
	struct event_base *base;
	struct bufferevent *bev;
	char *helo_name, *peer_name, *auth_user, *auth_password;
	SSL_CTX *ssl_ctx;
	enum smtp_tls_policy tls_policy;
	unsigned int timeout_secs, data_timeout_secs;

	enum phase phase;
	bool tls, tls_handshake;
	bool ehlo_done_after_tls;
	unsigned int ext;
	uint64_t size_max;
	unsigned int refs;
	bool free_pending;
	struct event *deferred;	/* for outcomes decided without the server */

	smtp_client_ready_cb *ready;
	void *ready_context;

	struct pending *pending;
	size_t pending_head, pending_tail, pending_cap;
	struct smtp_reply_parser parser;

	/* the transaction */
	const struct smtp_client_msg *msg;
	smtp_client_done_cb *done;
	void *done_context;
	struct smtp_client_result result;
	bool had_tx;
	bool need_rset;
	size_t next_rcpt;	/* next RCPT to write */
	size_t rcpt_replies;
	size_t accepted;
	bool mail_failed;
	struct smtp_reply mail_reply;
	bool data_sent;		/* DATA (or first BDAT) written */
	bool streaming;		/* body going out */
	/* body source state */
	size_t prefix_pos, data_pos;
	bool body_eof;
	bool at_line_start;
	bool last_cr;
};

static void client_read_cb(struct bufferevent *bev, void *arg);
static void client_write_cb(struct bufferevent *bev, void *arg);
static void client_event_cb(struct bufferevent *bev, short what, void *arg);
static void client_fail(struct smtp_client *c, enum smtp_status status,
    int code, const char *enhanced, const char *text);
static void tx_advance(struct smtp_client *c);
static void deferred_fail_cb(evutil_socket_t fd, short what, void *arg);

/* ---- reply parsing ---- */

void
smtp_reply_parser_init(struct smtp_reply_parser *p)
{
	memset(p, 0, sizeof(*p));
}

static bool
is_enhanced(const char *s, size_t len, size_t *elen_r)
{
	size_t i = 0, dots = 0, digits = 0;

	/* class "." subject "." detail: 1 digit, 1-3 digits, 1-3 digits */
	if (len < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return false;
	for (i = 2; i < len && i < 15; i++) {
		if (s[i] == '.') {
			if (digits == 0 || ++dots > 1)
				return false;
			digits = 0;
		} else if (isdigit((unsigned char)s[i])) {
			if (++digits > 3)
				return false;
		} else {
			break;
		}
	}
	if (dots != 1 || digits == 0 || (i < len && s[i] != ' '))
		return false;
	*elen_r = i;
	return true;
}

int
smtp_reply_parser_line(struct smtp_reply_parser *p, const char *line,
    size_t len)
{
	struct smtp_reply *r = &p->reply;
	struct bufreader rd;
	const unsigned char *digits;
	uint8_t sep = ' ';
	int code;
	size_t tlen, elen;
	const char *text;

	bufreader_init(&rd, line, len);
	if (bufreader_get_bytes(&rd, 3, &digits) < 0 ||
	    !isdigit(digits[0]) || !isdigit(digits[1]) || !isdigit(digits[2]))
		return -1;
	code = (digits[0] - '0') * 100 + (digits[1] - '0') * 10 + (digits[2] - '0');
	if (code < 200 || code > 599)
		return -1;
	if (bufreader_left(&rd) > 0) {
		(void)bufreader_get_u8(&rd, &sep);
		if (sep != ' ' && sep != '-')
			return -1;
	}
	if (p->lines == 0)
		r->code = code;
	else if (code != r->code)
		return -1;
	if (++p->lines > SMTP_CLIENT_MAX_REPLY_LINES)
		return -1;
	text = line + rd.pos;
	tlen = len - rd.pos;
	if (p->lines == 1 && is_enhanced(text, tlen, &elen) &&
	    text[0] == '0' + code / 100) {
		memcpy(r->enhanced, text, elen);
		r->enhanced[elen] = '\0';
	}
	/* Keep what fits; a reply's first lines say the most. */
	if (p->text_len > 0 && p->text_len + 1 < sizeof(r->text))
		r->text[p->text_len++] = '\n';
	if (p->text_len + 1 < sizeof(r->text)) {
		size_t n = tlen < sizeof(r->text) - 1 - p->text_len ? tlen :
		    sizeof(r->text) - 1 - p->text_len;

		memcpy(r->text + p->text_len, text, n);
		p->text_len += n;
	}
	r->text[p->text_len] = '\0';
	return sep == '-' ? 0 : 1;
}

unsigned int
smtp_ehlo_keyword(const char *line, size_t len, uint64_t *size_r)
{
	static const struct {
		const char *kw;
		unsigned int bit;
	} kws[] = {
		{ "PIPELINING", SMTP_EXT_PIPELINING },
		{ "SIZE", SMTP_EXT_SIZE },
		{ "8BITMIME", SMTP_EXT_8BITMIME },
		{ "SMTPUTF8", SMTP_EXT_SMTPUTF8 },
		{ "CHUNKING", SMTP_EXT_CHUNKING },
		{ "STARTTLS", SMTP_EXT_STARTTLS },
		{ "ENHANCEDSTATUSCODES", SMTP_EXT_ENHANCEDSTATUSCODES },
	};
	size_t kwlen = 0;

	while (kwlen < len && line[kwlen] != ' ')
		kwlen++;
	for (size_t i = 0; i < sizeof(kws) / sizeof(kws[0]); i++) {
		if (strlen(kws[i].kw) != kwlen ||
		    strncasecmp(line, kws[i].kw, kwlen) != 0)
			continue;
		if (kws[i].bit == SMTP_EXT_SIZE && size_r != NULL) {
			uint64_t v = 0;

			*size_r = 0;
			for (size_t k = kwlen + 1; k < len; k++) {
				if (!isdigit((unsigned char)line[k]) ||
				    v > (UINT64_MAX - 9) / 10) {
					v = 0;
					break;
				}
				v = v * 10 + (uint64_t)(line[k] - '0');
			}
			*size_r = v;
		}
		return kws[i].bit;
	}
	if (kwlen == 4 && strncasecmp(line, "AUTH", 4) == 0) {
		/* "AUTH LOGIN PLAIN ..." */
		for (size_t k = 4; k + 5 <= len; k++)
			if ((line[k - 1] == ' ' || line[k - 1] == '=') &&
			    strncasecmp(line + k, "PLAIN", 5) == 0 &&
			    (k + 5 == len || line[k + 5] == ' '))
				return SMTP_EXT_AUTH_PLAIN;
	}
	return 0;
}

/* The EHLO reply's lines after the first: one keyword each. */
static void
parse_ehlo(struct smtp_client *c, const struct smtp_reply *r)
{
	const char *p = r->text, *nl;

	c->ext = 0;
	c->size_max = 0;
	if ((nl = strchr(p, '\n')) == NULL)
		return;
	for (p = nl + 1; *p != '\0'; p = nl + 1) {
		uint64_t size = 0;
		unsigned int bit;

		nl = strchr(p, '\n');
		bit = smtp_ehlo_keyword(p, nl != NULL ? (size_t)(nl - p) : strlen(p),
		    &size);
		c->ext |= bit;
		if (bit == SMTP_EXT_SIZE)
			c->size_max = size;
		if (nl == NULL)
			break;
	}
}

/* ---- plumbing ---- */

static void
client_free(struct smtp_client *c)
{
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	if (c->deferred != NULL)
		event_free(c->deferred);
	free(c->helo_name);
	free(c->peer_name);
	free(c->auth_user);
	if (c->auth_password != NULL) {
		str_wipe(c->auth_password, strlen(c->auth_password));
		free(c->auth_password);
	}
	free(c->pending);
	free(c->result.rcpts);
	free(c);
}

static void
client_ref(struct smtp_client *c)
{
	c->refs++;
}

/* Frees a client marked for freeing once no callback frame uses it. */
static bool
client_unref(struct smtp_client *c)
{
	if (--c->refs == 0 && c->free_pending) {
		client_free(c);
		return false;
	}
	return true;
}

static void
pending_push(struct smtp_client *c, enum cmd cmd, size_t rcpt, bool last)
{
	if (c->pending_head == c->pending_tail)
		c->pending_head = c->pending_tail = 0;
	if (c->pending_tail == c->pending_cap) {
		c->pending_cap = c->pending_cap * 2 + 8;
		c->pending = xreallocarray(c->pending, c->pending_cap,
		    sizeof(*c->pending));
	}
	c->pending[c->pending_tail].cmd = cmd;
	c->pending[c->pending_tail].rcpt = rcpt;
	c->pending[c->pending_tail].last = last;
	c->pending_tail++;
}

static bool
pending_empty(const struct smtp_client *c)
{
	return c->pending_head == c->pending_tail;
}

static void
set_timeout(struct smtp_client *c, unsigned int secs)
{
	struct timeval tv = { secs, 0 };

	bufferevent_set_timeouts(c->bev, &tv, &tv);
}

static void
send_cmd(struct smtp_client *c, enum cmd cmd, size_t rcpt, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
send_cmd(struct smtp_client *c, enum cmd cmd, size_t rcpt, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
	if (cmd != CMD_AUTH)
		log_trace("event=smtp_client_send peer=%s cmd=%s", c->peer_name,
		    cmd_names[cmd]);
	pending_push(c, cmd, rcpt, false);
}

struct smtp_client *
smtp_client_new(struct event_base *base, struct bufferevent *bev,
    const struct smtp_client_params *params, smtp_client_ready_cb *ready,
    void *context)
{
	struct smtp_client *c = xcalloc(1, sizeof(*c));

	c->base = base;
	c->bev = bev;
	c->helo_name = xstrdup(params->helo_name != NULL ? params->helo_name :
	    "localhost");
	c->peer_name = xstrdup(params->peer_name != NULL ? params->peer_name : "");
	if (params->auth_user != NULL)
		c->auth_user = xstrdup(params->auth_user);
	if (params->auth_password != NULL)
		c->auth_password = xstrdup(params->auth_password);
	c->ssl_ctx = params->ssl_ctx;
	c->tls_policy = params->ssl_ctx != NULL ? params->tls : SMTP_TLS_NONE;
	if (params->tls == SMTP_TLS_REQUIRED)
		c->tls_policy = SMTP_TLS_REQUIRED;
	c->timeout_secs = params->timeout_secs != 0 ? params->timeout_secs : 300;
	c->data_timeout_secs = params->data_timeout_secs != 0 ?
	    params->data_timeout_secs : 600;
	c->ready = ready;
	c->ready_context = context;
	c->phase = PHASE_OPENING;
	c->deferred = evtimer_new(base, deferred_fail_cb, c);
	if (c->deferred == NULL)
		panic("evtimer_new failed");
	smtp_reply_parser_init(&c->parser);
	pending_push(c, CMD_GREETING, 0, false);
	bufferevent_setcb(bev, client_read_cb, client_write_cb, client_event_cb, c);
	bufferevent_setwatermark(bev, EV_WRITE, OUT_LOW, 0);
	set_timeout(c, c->timeout_secs);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	return c;
}

/* ---- opening ---- */

static void
session_ready(struct smtp_client *c)
{
	c->phase = PHASE_IDLE;
	log_debug("event=smtp_client_ready peer=%s tls=%d ext=0x%x",
	    c->peer_name, c->tls, c->ext);
	c->ready(c, NULL, c->ready_context);
}

static void
start_tls(struct smtp_client *c)
{
	struct bufferevent *tls;
	SSL *ssl = SSL_new(c->ssl_ctx);

	if (ssl == NULL) {
		client_fail(c, SMTP_STATUS_TEMPFAIL, 0, "4.7.0",
		    "cannot create a TLS session");
		return;
	}
	if (c->peer_name[0] != '\0')
		SSL_set_tlsext_host_name(ssl, c->peer_name);
	tls = bufferevent_openssl_filter_new(c->base, c->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL) {
		SSL_free(ssl);
		client_fail(c, SMTP_STATUS_TEMPFAIL, 0, "4.7.0",
		    "cannot start TLS");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	c->bev = tls;
	c->tls_handshake = true;
	bufferevent_setcb(tls, client_read_cb, client_write_cb, client_event_cb, c);
	bufferevent_setwatermark(tls, EV_WRITE, OUT_LOW, 0);
	set_timeout(c, c->timeout_secs);
	bufferevent_enable(tls, EV_READ | EV_WRITE);
}

static void
send_auth(struct smtp_client *c)
{
	struct buf plain;
	char *b64;
	size_t ulen = strlen(c->auth_user), plen = strlen(c->auth_password);

	/* RFC 4616: authzid NUL authcid NUL passwd */
	buf_init(&plain, BUF_UNLIMITED);
	buf_append_c(&plain, '\0');
	buf_append(&plain, c->auth_user, ulen);
	buf_append_c(&plain, '\0');
	buf_append(&plain, c->auth_password, plen);
	b64 = xmalloc(4 * ((plain.len + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)plain.data,
	    (int)plain.len);
	send_cmd(c, CMD_AUTH, 0, "AUTH PLAIN %s", b64);
	str_wipe(b64, strlen(b64));
	str_wipe(plain.data, plain.len);
	free(b64);
	buf_free(&plain);
}

/* After a successful EHLO/HELO: TLS, then AUTH, then ready. */
static void
opening_next(struct smtp_client *c)
{
	if (!c->tls && (c->ext & SMTP_EXT_STARTTLS) &&
	    c->tls_policy != SMTP_TLS_NONE && c->ssl_ctx != NULL) {
		send_cmd(c, CMD_STARTTLS, 0, "STARTTLS");
		return;
	}
	if (!c->tls && c->tls_policy == SMTP_TLS_REQUIRED) {
		client_fail(c, SMTP_STATUS_TEMPFAIL, 0, "4.7.4",
		    "TLS is required but the server does not offer STARTTLS");
		return;
	}
	if (c->auth_user != NULL) {
		/* Never a password in clear text. */
		if (!c->tls) {
			client_fail(c, SMTP_STATUS_TEMPFAIL, 0, "4.7.4",
			    "not sending AUTH credentials without TLS");
			return;
		}
		if (!(c->ext & SMTP_EXT_AUTH_PLAIN)) {
			client_fail(c, SMTP_STATUS_TEMPFAIL, 0, "4.7.4",
			    "the relay host does not offer AUTH PLAIN");
			return;
		}
		send_auth(c);
		return;
	}
	session_ready(c);
}

static enum smtp_status
status_of(int code)
{
	if (code >= 200 && code < 400)
		return SMTP_STATUS_OK;
	if (code >= 500)
		return SMTP_STATUS_PERMFAIL;
	return SMTP_STATUS_TEMPFAIL;
}

/* ---- the transaction ---- */

static void
result_reset(struct smtp_client *c, size_t rcpt_count)
{
	free(c->result.rcpts);
	memset(&c->result, 0, sizeof(c->result));
	c->result.rcpt_count = rcpt_count;
	c->result.rcpts = xcalloc(rcpt_count + 1, sizeof(*c->result.rcpts));
	for (size_t i = 0; i < rcpt_count; i++)
		c->result.rcpts[i].status = SMTP_STATUS_TEMPFAIL;
}

static void
reply_set(struct smtp_reply *r, int code, const char *enhanced,
    const char *text)
{
	r->code = code;
	str_copy(r->enhanced, sizeof(r->enhanced), enhanced != NULL ? enhanced : "");
	str_copy(r->text, sizeof(r->text), text);
}

static void
tx_finish(struct smtp_client *c)
{
	struct smtp_client_result *res = &c->result;
	bool any_ok = false, any_temp = false;
	smtp_client_done_cb *done = c->done;

	for (size_t i = 0; i < res->rcpt_count; i++) {
		if (res->rcpts[i].status == SMTP_STATUS_OK)
			any_ok = true;
		else if (res->rcpts[i].status == SMTP_STATUS_TEMPFAIL)
			any_temp = true;
	}
	res->status = any_ok ? SMTP_STATUS_OK : any_temp ?
	    SMTP_STATUS_TEMPFAIL : SMTP_STATUS_PERMFAIL;
	if (res->reply.code == 0 && res->reply.text[0] == '\0' &&
	    res->rcpt_count > 0)
		res->reply = res->rcpts[0].reply;
	res->tls = c->tls;
	res->extensions = c->ext;
	c->streaming = false;
	c->msg = NULL;
	c->done = NULL;
	if (c->phase == PHASE_TX)
		c->phase = PHASE_IDLE;
	set_timeout(c, c->timeout_secs);
	done(c, res, c->done_context);
}

/* A local decision (no command sent): every recipient gets it. */
static void
tx_fail_all(struct smtp_client *c, enum smtp_status status, int code,
    const char *enhanced, const char *text)
{
	reply_set(&c->result.reply, code, enhanced, text);
	for (size_t i = 0; i < c->result.rcpt_count; i++) {
		c->result.rcpts[i].status = status;
		c->result.rcpts[i].reply = c->result.reply;
	}
	tx_finish(c);
}

static void
deferred_fail_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_client *c = arg;

	client_ref(c);
	if (c->phase == PHASE_DEAD) {
		c->free_pending = true;
		tx_fail_all(c, SMTP_STATUS_TEMPFAIL, 0, "4.4.2",
		    "connection lost");
	}
	else if (c->msg->needs_smtputf8 && !(c->ext & SMTP_EXT_SMTPUTF8))
		tx_fail_all(c, SMTP_STATUS_PERMFAIL, 0, "5.6.7",
		    "the message needs SMTPUTF8, which the server does not offer");
	else if (c->msg->needs_8bitmime && !(c->ext & SMTP_EXT_8BITMIME))
		tx_fail_all(c, SMTP_STATUS_PERMFAIL, 0, "5.6.3",
		    "the message has 8-bit data and the server does not offer "
		    "8BITMIME");
	else
		tx_fail_all(c, SMTP_STATUS_PERMFAIL, 0, "5.3.4",
		    "message too big for the server (SIZE)");
	client_unref(c);
}

/* "MAIL FROM:<...> SIZE=n BODY=8BITMIME SMTPUTF8" */
static void
send_mail(struct smtp_client *c)
{
	const struct smtp_client_msg *m = c->msg;
	struct buf params;

	buf_init(&params, BUF_UNLIMITED);
	if (c->ext & SMTP_EXT_SIZE)
		buf_printf(&params, " SIZE=%llu", (unsigned long long)m->size);
	if (m->needs_8bitmime && (c->ext & SMTP_EXT_8BITMIME))
		buf_append_str(&params, " BODY=8BITMIME");
	if (m->needs_smtputf8)
		buf_append_str(&params, " SMTPUTF8");
	send_cmd(c, CMD_MAIL, 0, "MAIL FROM:<%s>%s", m->mail_from,
	    buf_cstr(&params));
	buf_free(&params);
}

void
smtp_client_send(struct smtp_client *c, const struct smtp_client_msg *msg,
    smtp_client_done_cb *done, void *context)
{
	if (c->phase != PHASE_IDLE && c->phase != PHASE_DEAD)
		panic("smtp_client_send in phase %d", (int)c->phase);
	c->msg = msg;
	c->done = done;
	c->done_context = context;
	result_reset(c, msg->rcpt_count);
	c->next_rcpt = 0;
	c->rcpt_replies = 0;
	c->accepted = 0;
	c->mail_failed = false;
	c->data_sent = false;
	c->streaming = false;
	c->prefix_pos = c->data_pos = 0;
	c->body_eof = false;
	c->at_line_start = true;
	c->last_cr = false;
	memset(&c->mail_reply, 0, sizeof(c->mail_reply));

	if (c->phase == PHASE_DEAD ||
	    (msg->needs_smtputf8 && !(c->ext & SMTP_EXT_SMTPUTF8)) ||
	    (msg->needs_8bitmime && !(c->ext & SMTP_EXT_8BITMIME)) ||
	    ((c->ext & SMTP_EXT_SIZE) && c->size_max > 0 &&
	    msg->size > c->size_max)) {
		/* Decided without the server; the callback never runs inside send. */
		struct timeval now = { 0, 0 };

		evtimer_add(c->deferred, &now);
		return;
	}
	c->phase = PHASE_TX;
	if (c->had_tx)
		send_cmd(c, CMD_RSET, 0, "RSET");
	c->had_tx = true;
	send_mail(c);
	tx_advance(c);
}

/* Writes the next commands: all at once with PIPELINING, else one. */
static void
tx_advance(struct smtp_client *c)
{
	const struct smtp_client_msg *m = c->msg;
	bool pipelining = (c->ext & SMTP_EXT_PIPELINING) != 0;
	bool chunking = (c->ext & SMTP_EXT_CHUNKING) != 0;

	while (c->next_rcpt < m->rcpt_count && (pipelining || pending_empty(c))) {
		send_cmd(c, CMD_RCPT, c->next_rcpt, "RCPT TO:<%s>",
		    m->rcpts[c->next_rcpt]);
		c->next_rcpt++;
	}
	if (c->data_sent || c->next_rcpt < m->rcpt_count)
		return;
	if (chunking) {
		/* BDAT only after every RCPT reply: no data for nobody. */
		if (!pending_empty(c) || c->rcpt_replies < m->rcpt_count)
			return;
		if (c->accepted == 0 || c->mail_failed) {
			tx_finish(c);
			return;
		}
		c->data_sent = true;
		c->streaming = true;
		set_timeout(c, c->data_timeout_secs);
		client_write_cb(c->bev, c);
		return;
	}
	if (pipelining || pending_empty(c)) {
		if (!pipelining && (c->accepted == 0 || c->mail_failed)) {
			tx_finish(c);
			return;
		}
		c->data_sent = true;
		send_cmd(c, CMD_DATA, 0, "DATA");
	}
}

/* Reads up to max bytes of prefix + body. */
static size_t
body_read(struct smtp_client *c, char *out, size_t max)
{
	const struct smtp_client_msg *m = c->msg;
	size_t n = 0;

	if (m->prefix != NULL && m->prefix[c->prefix_pos] != '\0') {
		size_t left = strlen(m->prefix + c->prefix_pos);

		n = left < max ? left : max;
		memcpy(out, m->prefix + c->prefix_pos, n);
		c->prefix_pos += n;
		return n;
	}
	if (m->data != NULL) {
		size_t left = m->data_len - c->data_pos;

		n = left < max ? left : max;
		memcpy(out, (const char *)m->data + c->data_pos, n);
		c->data_pos += n;
		return n;
	}
	for (;;) {
		ssize_t r = read(m->fd, out, max);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			log_error("event=smtp_client_read_failed error=\"%m\"");
			return (size_t)-1;
		}
		return (size_t)r;
	}
}

/* DATA: dot-stuffing (RFC 5321 4.5.2), bare LF sent as CRLF. */
static void
stuff(struct smtp_client *c, struct evbuffer *out, const char *p, size_t n)
{
	size_t start = 0;

	for (size_t i = 0; i < n; i++) {
		char ch = p[i];

		if (c->at_line_start && ch == '.') {
			evbuffer_add(out, p + start, i - start);
			evbuffer_add(out, ".", 1);
			start = i;
		}
		if (ch == '\n' && !c->last_cr) {
			evbuffer_add(out, p + start, i - start);
			evbuffer_add(out, "\r", 1);
			start = i;
		}
		c->at_line_start = ch == '\n';
		c->last_cr = ch == '\r';
	}
	evbuffer_add(out, p + start, n - start);
}

static void
stream_body(struct smtp_client *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	bool chunking = (c->ext & SMTP_EXT_CHUNKING) != 0;
	char chunk[16384];

	if (chunking) {
		/* One BDAT per call; the next when its 250 arrives. */
		char *data = xmalloc(BDAT_CHUNK);
		size_t len = 0, n;

		while (len < BDAT_CHUNK && (n = body_read(c, data + len,
		    BDAT_CHUNK - len)) != 0) {
			if (n == (size_t)-1) {
				free(data);
				client_fail(c, SMTP_STATUS_TEMPFAIL, 0, "4.3.0",
				    "cannot read the queued message");
				return;
			}
			len += n;
		}
		c->streaming = false;
		evbuffer_add_printf(out, "BDAT %zu%s\r\n", len,
		    len == 0 ? " LAST" : "");
		evbuffer_add(out, data, len);
		pending_push(c, CMD_BDAT, 0, len == 0);
		free(data);
		return;
	}
	while (evbuffer_get_length(out) < OUT_HIGH) {
		size_t n = body_read(c, chunk, sizeof(chunk));

		if (n == (size_t)-1) {
			client_fail(c, SMTP_STATUS_TEMPFAIL, 0, "4.3.0",
			    "cannot read the queued message");
			return;
		}
		if (n == 0) {
			/* A final CRLF if the body lacks one, then the dot. */
			if (!c->at_line_start)
				evbuffer_add(out, "\r\n", 2);
			evbuffer_add(out, ".\r\n", 3);
			c->streaming = false;
			pending_push(c, CMD_DATA_END, 0, false);
			return;
		}
		stuff(c, out, chunk, n);
	}
}

static void
client_write_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_client *c = arg;

	if (c->streaming) {
		client_ref(c);
		stream_body(c);
		client_unref(c);
	}
}

/* Every accepted recipient gets the outcome of the data. */
static void
data_outcome(struct smtp_client *c, const struct smtp_reply *r)
{
	enum smtp_status st = status_of(r->code);

	c->result.reply = *r;
	for (size_t i = 0; i < c->result.rcpt_count; i++) {
		if (c->result.rcpts[i].status == SMTP_STATUS_OK &&
		    c->result.rcpts[i].reply.code / 100 == 2 &&
		    c->result.rcpts[i].reply.code != 0) {
			c->result.rcpts[i].status = st;
			if (st != SMTP_STATUS_OK)
				c->result.rcpts[i].reply = *r;
		}
	}
	/* Keep the RCPT 250 for the log, but mark that data decided. */
	tx_finish(c);
}

static void
handle_reply(struct smtp_client *c, const struct pending *pd,
    const struct smtp_reply *r)
{
	char esc[200];

	log_escape(esc, sizeof(esc), r->text, strlen(r->text));
	log_debug("event=smtp_client_reply peer=%s cmd=%s code=%d text=\"%s\"",
	    c->peer_name, cmd_names[pd->cmd], r->code, esc);
	/* After smtp_client_quit() only the QUIT reply matters. */
	if (c->phase == PHASE_QUIT && pd->cmd != CMD_QUIT)
		return;
	switch (pd->cmd) {
	case CMD_GREETING:
		if (r->code != 220) {
			client_fail(c, status_of(r->code), r->code, r->enhanced, r->text);
			return;
		}
		send_cmd(c, CMD_EHLO, 0, "EHLO %s", c->helo_name);
		return;
	case CMD_EHLO:
		if (r->code != 250) {
			if (c->tls) {
				client_fail(c, status_of(r->code), r->code,
				    r->enhanced, r->text);
				return;
			}
			send_cmd(c, CMD_HELO, 0, "HELO %s", c->helo_name);
			return;
		}
		parse_ehlo(c, r);
		opening_next(c);
		return;
	case CMD_HELO:
		if (r->code != 250) {
			client_fail(c, status_of(r->code), r->code, r->enhanced, r->text);
			return;
		}
		c->ext = 0;
		opening_next(c);
		return;
	case CMD_STARTTLS:
		if (r->code != 220) {
			if (c->tls_policy == SMTP_TLS_REQUIRED) {
				client_fail(c, SMTP_STATUS_TEMPFAIL, r->code,
				    r->enhanced, r->text);
				return;
			}
			/* Opportunistic: go on in clear text. */
			c->ext &= ~(unsigned int)SMTP_EXT_STARTTLS;
			opening_next(c);
			return;
		}
		start_tls(c);
		return;
	case CMD_AUTH:
		if (r->code != 235) {
			client_fail(c, SMTP_STATUS_TEMPFAIL, r->code, r->enhanced,
			    r->text);
			return;
		}
		session_ready(c);
		return;
	case CMD_RSET:
		return;
	case CMD_MAIL:
		c->mail_reply = *r;
		if (r->code / 100 != 2) {
			c->mail_failed = true;
			if (!(c->ext & SMTP_EXT_PIPELINING)) {
				/* Nothing else was sent: every recipient gets it. */
				c->result.reply = *r;
				for (size_t i = 0; i < c->result.rcpt_count; i++) {
					c->result.rcpts[i].status = status_of(r->code);
					c->result.rcpts[i].reply = *r;
				}
				tx_finish(c);
				return;
			}
		}
		tx_advance(c);
		return;
	case CMD_RCPT: {
		struct smtp_rcpt_result *rr = &c->result.rcpts[pd->rcpt];

		c->rcpt_replies++;
		if (c->mail_failed) {
			rr->reply = c->mail_reply;
			rr->status = status_of(c->mail_reply.code);
		} else {
			rr->reply = *r;
			rr->status = status_of(r->code);
			if (rr->status == SMTP_STATUS_OK)
				c->accepted++;
		}
		if (c->mail_failed && c->rcpt_replies == 1)
			c->result.reply = c->mail_reply;
		tx_advance(c);
		return;
	}
	case CMD_DATA:
		if (r->code == 354) {
			if (c->accepted == 0 || c->mail_failed) {
				/* Nobody to deliver to: end the data at once. */
				evbuffer_add(bufferevent_get_output(c->bev), ".\r\n", 3);
				pending_push(c, CMD_DATA_END, 0, false);
				c->accepted = 0;
				return;
			}
			c->streaming = true;
			set_timeout(c, c->data_timeout_secs);
			stream_body(c);
			return;
		}
		if (c->accepted == 0 || c->mail_failed) {
			/* The expected refusal after no recipients. */
			tx_finish(c);
			return;
		}
		data_outcome(c, r);
		return;
	case CMD_DATA_END:
		if (c->accepted == 0) {
			tx_finish(c);
			return;
		}
		data_outcome(c, r);
		return;
	case CMD_BDAT:
		if (pd->last || r->code / 100 != 2) {
			data_outcome(c, r);
			return;
		}
		c->streaming = true;
		stream_body(c);
		return;
	case CMD_QUIT:
		c->free_pending = true;
		return;
	}
}

static void
client_read_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	client_ref(c);
	while (c->phase != PHASE_DEAD && !c->free_pending) {
		size_t len;
		char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
		int ret;

		if (line == NULL) {
			if (evbuffer_get_length(in) > SMTP_CLIENT_MAX_LINE)
				client_fail(c, SMTP_STATUS_TEMPFAIL, 0, "4.5.0",
				    "reply line too long");
			break;
		}
		if (len > SMTP_CLIENT_MAX_LINE || pending_empty(c)) {
			free(line);
			client_fail(c, SMTP_STATUS_TEMPFAIL, 0, "4.5.0",
			    len > SMTP_CLIENT_MAX_LINE ? "reply line too long" :
			    "reply without a command");
			break;
		}
		ret = smtp_reply_parser_line(&c->parser, line, len);
		free(line);
		if (ret < 0) {
			client_fail(c, SMTP_STATUS_TEMPFAIL, 0, "4.5.0",
			    "malformed reply");
			break;
		}
		if (ret == 1) {
			struct pending pd = c->pending[c->pending_head++];
			struct smtp_reply r = c->parser.reply;

			smtp_reply_parser_init(&c->parser);
			handle_reply(c, &pd, &r);
			/* After STARTTLS, in belongs to the TLS filter now. */
			if (c->bev != bev)
				break;
		}
	}
	client_unref(c);
}

/* The session (or transaction) failed: report, then drop the connection. */
static void
client_fail(struct smtp_client *c, enum smtp_status status, int code,
    const char *enhanced, const char *text)
{
	enum phase phase = c->phase;
	char esc[200];

	/* text may be the peer's: escaped, cut short. */
	log_escape(esc, sizeof(esc), text, strlen(text));
	log_info("event=smtp_client_failed peer=%s code=%d text=\"%s\"",
	    c->peer_name, code, esc);
	c->phase = PHASE_DEAD;
	c->streaming = false;
	if (c->bev != NULL) {
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	}
	client_ref(c);
	if (phase == PHASE_OPENING) {
		struct smtp_client_result res;

		memset(&res, 0, sizeof(res));
		res.status = status;
		reply_set(&res.reply, code, enhanced, text);
		res.tls = c->tls;
		res.extensions = c->ext;
		c->free_pending = true;
		c->ready(c, &res, c->ready_context);
	} else if (phase == PHASE_TX) {
		/* Recipients without a final answer: try again later. */
		struct smtp_reply r;

		reply_set(&r, code, enhanced, text);
		c->result.reply = r;
		for (size_t i = 0; i < c->result.rcpt_count; i++) {
			struct smtp_rcpt_result *rr = &c->result.rcpts[i];

			if (rr->reply.code == 0 || rr->status == SMTP_STATUS_OK) {
				rr->status = SMTP_STATUS_TEMPFAIL;
				rr->reply = r;
			}
		}
		c->free_pending = true;
		tx_finish(c);
	} else if (phase == PHASE_QUIT) {
		c->free_pending = true;
	}
	/* PHASE_IDLE: the next send reports the lost connection. */
	client_unref(c);
}

static void
client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_client *c = arg;

	if (what & BEV_EVENT_CONNECTED) {
		if (c->tls_handshake) {
			c->tls_handshake = false;
			c->tls = true;
			client_ref(c);
			send_cmd(c, CMD_EHLO, 0, "EHLO %s", c->helo_name);
			client_unref(c);
		}
		return;
	}
	if (c->phase == PHASE_QUIT) {
		client_ref(c);
		c->free_pending = true;
		c->phase = PHASE_DEAD;
		client_unref(c);
		return;
	}
	if (c->tls_handshake)
		client_fail(c, SMTP_STATUS_TEMPFAIL, 0, "4.7.5",
		    "TLS handshake failed");
	else if (what & BEV_EVENT_TIMEOUT)
		client_fail(c, SMTP_STATUS_TEMPFAIL, 0, "4.4.2",
		    "timeout waiting for the server");
	else
		client_fail(c, SMTP_STATUS_TEMPFAIL, 0, "4.4.2",
		    "connection lost");
}

unsigned int
smtp_client_extensions(const struct smtp_client *c)
{
	return c->ext;
}

void
smtp_client_quit(struct smtp_client *c)
{
	if (c->phase == PHASE_DEAD) {
		smtp_client_abort(&c);
		return;
	}
	c->phase = PHASE_QUIT;
	send_cmd(c, CMD_QUIT, 0, "QUIT");
}

void
smtp_client_abort(struct smtp_client **cp)
{
	struct smtp_client *c = *cp;

	if (c == NULL)
		return;
	*cp = NULL;
	c->free_pending = true;
	c->phase = PHASE_DEAD;
	if (c->refs == 0)
		client_free(c);
	else if (c->bev != NULL)
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
}
