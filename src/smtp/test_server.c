/*
 * Whole SMTP sessions over a bufferevent_pair: the test is the client, the
 * hooks record what the engine asked and answer like a simple glue would.
 */
#include "smtp/server.h"
#include "lib/buf.h"
#include "lib/str.h"
#include "lib/test.h"
#include "lib/xalloc.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

struct harness {
	struct event_base *base;
	struct bufferevent *pair[2];	/* [0] server side, [1] client side */
	struct bufferevent *client;	/* pair[1], or a TLS filter on it */
	struct smtp_session *s;
	struct smtp_server_settings set;
	struct smtp_hooks hooks;
	struct buf calls;		/* "connect|helo x|mail <a@b>|..." */
	struct buf body;
	bool disconnected;
	bool tls_connected;
	/* behaviour */
	bool async;			/* answer from a zero-timeout event */
	bool refuse_data;
	bool refuse_connect;
	bool chunk_fail;
	/* an answer waiting to be given (async) */
	struct event *answer_ev;
	struct smtp_session *answer_s;
	int answer_code;
	const char *answer_enh;
	const char *answer_text;
	struct event *tick;
};

static void
call(struct harness *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
call(struct harness *h, const char *fmt, ...)
{
	char tmp[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (h->calls.len > 0)
		buf_append_c(&h->calls, '|');
	buf_append_str(&h->calls, tmp);
}

static void
answer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct harness *h = arg;

	smtp_session_reply(h->answer_s, h->answer_code, h->answer_enh, "%s",
	    h->answer_text);
}

static void
answer(struct harness *h, struct smtp_session *s, int code, const char *enh,
    const char *text)
{
	if (!h->async) {
		smtp_session_reply(s, code, enh, "%s", text);
		return;
	}
	h->answer_s = s;
	h->answer_code = code;
	h->answer_enh = enh;
	h->answer_text = text;
	event_active(h->answer_ev, EV_TIMEOUT, 1);
}

static void
h_connect(struct smtp_session *s, void *ctx)
{
	struct harness *h = ctx;

	call(h, "connect");
	if (h->refuse_connect)
		answer(h, s, 554, "5.7.1", "No SMTP service here");
	else
		answer(h, s, 220, NULL, "ok");
}

static void
h_helo(struct smtp_session *s, const char *name, bool ehlo, void *ctx)
{
	call(ctx, "%s %s", ehlo ? "ehlo" : "helo", name);
	answer(ctx, s, 250, NULL, "ok");
}

static void
h_auth(struct smtp_session *s, const char *mech, const char *authzid,
    const char *login, char *password, void *ctx)
{
	call(ctx, "auth %s %s [%s]", mech, login, authzid);
	if (strcmp(login, "user@example.org") == 0 && strcmp(password, "secret") == 0)
		answer(ctx, s, 235, "2.7.0", "Authentication successful");
	else
		answer(ctx, s, 535, "5.7.8", "Authentication credentials invalid");
}

static void
h_mail(struct smtp_session *s, const struct address *from, void *ctx)
{
	char *a = address_to_string(from);

	call(ctx, "mail <%s>", a);
	free(a);
	answer(ctx, s, 250, "2.1.0", "Sender OK");
}

static void
h_rcpt(struct smtp_session *s, const struct address *to, void *ctx)
{
	char *a = address_to_string(to);

	call(ctx, "rcpt <%s>", a);
	free(a);
	if (str_has_prefix(to->local, "unknown"))
		answer(ctx, s, 550, "5.1.1", "No such user");
	else
		answer(ctx, s, 250, "2.1.5", "Recipient OK");
}

static void
h_data_begin(struct smtp_session *s, void *ctx)
{
	struct harness *h = ctx;

	call(h, "begin");
	buf_reset(&h->body);
	if (h->refuse_data)
		answer(h, s, 451, "4.3.0", "Spool full");
	else
		answer(h, s, SMTP_REPLY_DATA_GO, NULL, "");
}

static int
h_data_chunk(struct smtp_session *s, const unsigned char *data, size_t len,
    void *ctx)
{
	struct harness *h = ctx;

	if (buf_append(&h->body, data, len) < 0)
		return -1;
	return h->chunk_fail ? -1 : 0;
}

static void
h_data_end(struct smtp_session *s, void *ctx)
{
	struct harness *h = ctx;

	call(h, "end %u", smtp_session_rcpt_count(s));
	answer(h, s, 250, "2.0.0", "Ok: queued");
}

static void
h_tx_abort(struct smtp_session *s, const char *reason, void *ctx)
{
	call(ctx, "abort %s", reason);
}

static void
h_starttls_done(struct smtp_session *s, void *ctx)
{
	call(ctx, "tls");
}

static void
h_disconnect(struct smtp_session *s, void *ctx)
{
	struct harness *h = ctx;

	call(h, "disconnect");
	h->disconnected = true;
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
}

static void
h_init(struct harness *h, enum smtp_port_kind kind)
{
	memset(h, 0, sizeof(*h));
	h->base = event_base_new();
	h->set.hostname = "mx.example.org";
	h->set.port_kind = kind;
	h->hooks.on_connect = h_connect;
	h->hooks.on_helo = h_helo;
	h->hooks.on_auth = h_auth;
	h->hooks.on_mail = h_mail;
	h->hooks.on_rcpt = h_rcpt;
	h->hooks.on_data_begin = h_data_begin;
	h->hooks.on_data_chunk = h_data_chunk;
	h->hooks.on_data_end = h_data_end;
	h->hooks.on_tx_abort = h_tx_abort;
	h->hooks.on_starttls_done = h_starttls_done;
	h->hooks.on_disconnect = h_disconnect;
	buf_init(&h->calls, BUF_UNLIMITED);
	buf_init(&h->body, 1 << 20);
	h->answer_ev = event_new(h->base, -1, 0, answer_cb, h);
	/* keeps EVLOOP_ONCE from sleeping on the session's long timers */
	h->tick = event_new(h->base, -1, EV_PERSIST, tick_cb, h);
	{
		struct timeval tv = { 0, 5000 };

		event_add(h->tick, &tv);
	}
}

static void
client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct harness *h = arg;

	if (what & BEV_EVENT_CONNECTED)
		h->tls_connected = true;
}

/* server_ssl: wrap the server side in TLS first (port 465). */
static void
h_start_ex(struct harness *h, SSL_CTX *server_ssl, SSL_CTX *client_ssl)
{
	struct sockaddr_in sin;
	struct bufferevent *server;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0xc0000201);	/* 192.0.2.1 */
	if (bufferevent_pair_new(h->base, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS, h->pair) < 0)
		abort();
	server = h->pair[0];
	h->client = h->pair[1];
	if (server_ssl != NULL) {
		server = bufferevent_openssl_filter_new(h->base, h->pair[0],
		    SSL_new(server_ssl), BUFFEREVENT_SSL_ACCEPTING,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		h->client = bufferevent_openssl_filter_new(h->base, h->pair[1],
		    SSL_new(client_ssl), BUFFEREVENT_SSL_CONNECTING,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		bufferevent_setcb(h->client, NULL, NULL, client_event_cb, h);
	}
	bufferevent_enable(h->client, EV_READ | EV_WRITE);
	h->s = smtp_session_new(h->base, server, &h->set, &h->hooks, h,
	    (struct sockaddr *)&sin, sizeof(sin));
}

static void
h_start(struct harness *h)
{
	h_start_ex(h, NULL, NULL);
}

static void
h_free(struct harness *h)
{
	if (!h->disconnected)
		smtp_session_destroy(h->s);
	bufferevent_free(h->client);
	event_free(h->answer_ev);
	event_free(h->tick);
	event_base_free(h->base);
	buf_free(&h->calls);
	buf_free(&h->body);
}

static void
h_send_raw(struct harness *h, const void *p, size_t len)
{
	bufferevent_write(h->client, p, len);
}

static void
h_send(struct harness *h, const char *s)
{
	h_send_raw(h, s, strlen(s));
}

static double
now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return tv.tv_sec * 1000.0 + tv.tv_usec / 1000.0;
}

/* Length of the first complete reply in the input, or 0. */
static size_t
reply_len(struct evbuffer *in)
{
	size_t len = evbuffer_get_length(in), pos = 0;
	const char *p;

	if (len == 0)
		return 0;
	p = (const char *)evbuffer_pullup(in, -1);
	while (pos < len) {
		const char *nl = memchr(p + pos, '\n', len - pos);

		if (nl == NULL)
			return 0;
		if ((size_t)(nl - p) - pos >= 4 && p[pos + 3] == ' ')
			return (size_t)(nl - p) + 1;
		pos = (size_t)(nl - p) + 1;
	}
	return 0;
}

/*
 * Runs the loop until the client has a whole reply (returned, malloc'd)
 * or the session is gone ("CLOSED") or 3 s pass ("TIMEOUT").
 */
static char *
h_reply(struct harness *h)
{
	double end = now_ms() + 3000;

	for (;;) {
		struct evbuffer *in = bufferevent_get_input(h->client);
		size_t n = reply_len(in);

		if (n > 0) {
			char *r = xmalloc(n + 1);

			evbuffer_remove(in, r, n);
			r[n] = '\0';
			return r;
		}
		if (h->disconnected && evbuffer_get_length(in) == 0)
			return xstrdup("CLOSED");
		if (now_ms() > end)
			return xstrdup("TIMEOUT");
		event_base_loop(h->base, EVLOOP_ONCE);
	}
}

/* Runs the loop for ms milliseconds. */
static void
h_run(struct harness *h, unsigned int ms)
{
	double end = now_ms() + ms;

	while (now_ms() < end)
		event_base_loop(h->base, EVLOOP_ONCE);
}

#define h_expect(h, prefix) h_expect_at(h, prefix, __FILE__, __LINE__)

static bool
h_expect_at(struct harness *h, const char *prefix, const char *file, int line)
{
	char *r = h_reply(h);
	bool ok = str_has_prefix(r, prefix);

	if (!ok) {
		test_assert_fail("reply has the expected prefix", file, line);
		printf("     want \"%s...\"\n     got  \"%s\"\n", prefix, r);
	}
	free(r);
	return ok;
}

static void
h_wait_closed(struct harness *h)
{
	double end = now_ms() + 3000;

	while (!h->disconnected && now_ms() < end)
		event_base_loop(h->base, EVLOOP_ONCE);
	test_assert(h->disconnected);
}

static void
h_ehlo(struct harness *h)
{
	h_expect(h, "220 mx.example.org ESMTP");
	h_send(h, "EHLO client.example.net\r\n");
	h_expect(h, "250-mx.example.org");
}

/* ------------------------------------------------------------------ */

static void
test_smtp_session_ehlo_ports(void)
{
	struct harness h;
	char *r;

	test_begin("smtp session: EHLO per port");
	h_init(&h, SMTP_PORT_MTA);
	h.set.max_message_size = 1000;
	h.set.max_recipients = 7;
	h_start(&h);
	h_expect(&h, "220 mx.example.org ESMTP");
	h_send(&h, "EHLO client.example.net\r\n");
	r = h_reply(&h);
	test_assert_str(r, "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 1000\r\n"
	    "250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n"
	    "250-CHUNKING\r\n250 LIMITS RCPTMAX=7\r\n");
	free(r);
	test_assert_str(smtp_session_helo(h.s), "client.example.net");
	test_assert_str(smtp_session_remote_ip(h.s), "192.0.2.1");
	test_assert_int(strlen(smtp_session_id(h.s)), 16);
	test_assert(!smtp_session_tls(h.s));
	h_send(&h, "HELO plain.example.net\r\n");
	h_expect(&h, "250 mx.example.org\r\n");
	h_send(&h, "EHLO\r\n");
	h_expect(&h, "501 5.5.4");
	h_send(&h, "QUIT\r\n");
	h_expect(&h, "221 2.0.0");
	h_wait_closed(&h);
	test_assert_str(buf_cstr(&h.calls), "connect|ehlo client.example.net|"
	    "helo plain.example.net|disconnect");
	h_free(&h);
	test_end();
}
TEST(test_smtp_session_ehlo_ports);

static const char body_in[] =
    "Subject: test\r\n"
    "\r\n"
    "..leading dot\r\n"
    ".\tdot tab\r\n"
    "line\r\n"
    ".\r\n";
static const char body_want[] =
    "Subject: test\r\n"
    "\r\n"
    ".leading dot\r\n"
    "\tdot tab\r\n"
    "line\r\n";

static void
happy_path(bool async)
{
	struct harness h;

	h_init(&h, SMTP_PORT_MTA);
	h.async = async;
	h_start(&h);
	h_ehlo(&h);
	h_send(&h, "MAIL FROM:<sender@example.net> SIZE=100 BODY=8BITMIME\r\n");
	h_expect(&h, "250 2.1.0 Sender OK");
	test_assert(smtp_session_8bitmime(h.s));
	test_assert_int(smtp_session_declared_size(h.s), 100);
	h_send(&h, "RCPT TO:<a@example.org>\r\n");
	h_expect(&h, "250 2.1.5");
	h_send(&h, "rcpt to: <B@Example.ORG>\r\n");
	h_expect(&h, "250 2.1.5");
	test_assert_int(smtp_session_rcpt_count(h.s), 2);
	test_assert_str(smtp_session_rcpt(h.s, 1)->domain, "example.org");
	test_assert_str(smtp_session_rcpt(h.s, 1)->local, "B");
	h_send(&h, "DATA\r\n");
	h_expect(&h, "354 ");
	/* in two pieces that split the terminator */
	h_send_raw(&h, body_in, sizeof(body_in) - 3);
	h_run(&h, 10);
	h_send(&h, "\r\n");
	h_expect(&h, "250 2.0.0 Ok: queued");
	test_assert_int(h.body.len, sizeof(body_want) - 1);
	test_assert(memcmp(buf_cstr(&h.body), body_want, sizeof(body_want) - 1) == 0);
	test_assert(smtp_session_mail_from(h.s) == NULL);
	/* second transaction with the null sender */
	h_send(&h, "MAIL FROM:<>\r\n");
	h_expect(&h, "250 2.1.0");
	h_send(&h, "RCPT TO:<Postmaster>\r\n");
	h_expect(&h, "250 2.1.5");
	h_send(&h, "DATA\r\n");
	h_expect(&h, "354 ");
	h_send(&h, ".\r\n");
	h_expect(&h, "250 2.0.0");
	test_assert_int(h.body.len, 0);
	h_send(&h, "QUIT\r\n");
	h_expect(&h, "221 2.0.0");
	h_wait_closed(&h);
	test_assert_str(buf_cstr(&h.calls), "connect|ehlo client.example.net|"
	    "mail <sender@example.net>|rcpt <a@example.org>|rcpt <B@example.org>|"
	    "begin|end 2|mail <>|rcpt <Postmaster>|begin|end 1|disconnect");
	h_free(&h);
}

static void
test_smtp_session_happy(void)
{
	test_begin("smtp session: MAIL, RCPT, DATA (hooks answer at once)");
	happy_path(false);
	test_end();
	test_begin("smtp session: MAIL, RCPT, DATA (hooks answer later)");
	happy_path(true);
	test_end();
}
TEST(test_smtp_session_happy);

static void
test_smtp_session_pipelining(void)
{
	struct harness h;
	char *r;

	test_begin("smtp session: pipelined group");
	h_init(&h, SMTP_PORT_MTA);
	h.async = true;
	h_start(&h);
	h_ehlo(&h);
	h_send(&h, "MAIL FROM:<s@example.net>\r\nRCPT TO:<a@example.org>\r\n"
	    "RCPT TO:<unknown@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
	h_expect(&h, "250 2.1.0");
	h_expect(&h, "250 2.1.5");
	h_expect(&h, "550 5.1.1");
	h_expect(&h, "250 2.1.5");
	h_expect(&h, "354 ");
	h_send(&h, "x\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n");
	h_expect(&h, "250 2.0.0 Ok");
	r = h_reply(&h);
	test_assert_str(r, "250 2.0.0 OK\r\n");
	free(r);
	h_expect(&h, "250 2.0.0 OK");
	h_expect(&h, "221 ");
	h_wait_closed(&h);
	test_assert_str(buf_cstr(&h.body), "x\r\n");
	test_assert(strstr(buf_cstr(&h.calls), "end 2") != NULL);
	h_free(&h);
	test_end();
}
TEST(test_smtp_session_pipelining);

static void
test_smtp_session_bdat(void)
{
	struct harness h;

	test_begin("smtp session: BDAT chunks");
	h_init(&h, SMTP_PORT_MTA);
	h_start(&h);
	h_ehlo(&h);
	/* BDAT without a transaction: the octets are read away, not run */
	h_send(&h, "BDAT 6\r\nQUIT\r\n");
	h_expect(&h, "503 5.5.1");
	h_send(&h, "MAIL FROM:<s@example.net>\r\nRCPT TO:<a@example.org>\r\n");
	h_expect(&h, "250 ");
	h_expect(&h, "250 ");
	h_send(&h, "BDAT 7\r\nHello\r\n");
	h_expect(&h, "250 2.0.0 7 octets");
	test_assert(smtp_session_chunking(h.s));
	h_send(&h, "BDAT 10\r\nwor");
	h_run(&h, 10);
	h_send(&h, "ld\r\n.\r\nBDAT 0 LAST\r\n");
	h_expect(&h, "250 2.0.0 10 octets");
	h_expect(&h, "250 2.0.0 Ok: queued");
	test_assert_str(buf_cstr(&h.body), "Hello\r\nworld\r\n.\r\n");
	/* one chunk with LAST; then DATA in a BDAT transaction */
	h_send(&h, "MAIL FROM:<s@example.net>\r\nRCPT TO:<a@example.org>\r\n"
	    "BDAT 4 LAST\r\nab\r");
	h_expect(&h, "250 ");
	h_expect(&h, "250 ");
	h_run(&h, 10);
	h_send(&h, "\n");
	h_expect(&h, "250 2.0.0 Ok");
	test_assert_str(buf_cstr(&h.body), "ab\r\n");
	h_send(&h, "MAIL FROM:<s@example.net>\r\nRCPT TO:<a@example.org>\r\n"
	    "BDAT 2\r\nab");
	h_expect(&h, "250 ");
	h_expect(&h, "250 ");
	h_expect(&h, "250 2.0.0 2 octets");
	h_send(&h, "DATA\r\n");
	h_expect(&h, "503 5.5.1");
	/* a bare LF in a chunk */
	h_send(&h, "BDAT 3 LAST\r\nc\nd");
	h_expect(&h, "550 5.5.2");
	test_assert(strstr(buf_cstr(&h.calls), "abort bare CR or LF") != NULL);
	/* no recipients */
	h_send(&h, "MAIL FROM:<s@example.net>\r\nBDAT 1 LAST\r\nx");
	h_expect(&h, "250 ");
	h_expect(&h, "554 5.5.1");
	h_send(&h, "BDAT x\r\n");
	h_expect(&h, "501 5.5.4");
	h_send(&h, "NOOP\r\n");
	h_expect(&h, "250 ");
	h_free(&h);
	test_end();
}
TEST(test_smtp_session_bdat);

static void
test_smtp_session_bare_lf(void)
{
	struct harness h;

	test_begin("smtp session: bare LF in DATA is refused, session goes on");
	h_init(&h, SMTP_PORT_MTA);
	h_start(&h);
	h_ehlo(&h);
	h_send(&h, "MAIL FROM:<s@example.net>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n");
	h_expect(&h, "250 ");
	h_expect(&h, "250 ");
	h_expect(&h, "354 ");
	/* the smuggling pattern: LF.LF and LF.CRLF must not end the data */
	h_send(&h, "a\n.\nMAIL FROM:<evil@example.net>\n.\r\nRCPT TO:<x@example.org>\r\n.\r\n");
	h_expect(&h, "550 5.5.2");
	test_assert(strstr(buf_cstr(&h.calls), "evil") == NULL);
	test_assert(strstr(buf_cstr(&h.calls), "abort bare CR or LF") != NULL);
	test_assert(strstr(buf_cstr(&h.calls), "end") == NULL);
	h_send(&h, "NOOP\r\n");
	h_expect(&h, "250 2.0.0");
	h_send(&h, "MAIL FROM:<s@example.net>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n");
	h_expect(&h, "250 ");
	h_expect(&h, "250 ");
	h_expect(&h, "354 ");
	h_send(&h, "fine\r\n.\r\n");
	h_expect(&h, "250 2.0.0");
	/* a bare LF ending a command line */
	h_send(&h, "NOOP\n");
	h_expect(&h, "500 5.5.2");
	h_send_raw(&h, "NO\0OP\r\n", 7);
	h_expect(&h, "500 5.5.2 Bad character");
	h_free(&h);
	test_end();
}
TEST(test_smtp_session_bare_lf);

static void
test_smtp_session_limits(void)
{
	struct harness h;
	char big[300];

	test_begin("smtp session: size and recipient limits");
	h_init(&h, SMTP_PORT_MTA);
	h.set.max_message_size = 100;
	h.set.max_recipients = 2;
	h_start(&h);
	h_ehlo(&h);
	h_send(&h, "MAIL FROM:<s@example.net> SIZE=101\r\n");
	h_expect(&h, "552 5.3.4");
	h_send(&h, "MAIL FROM:<s@example.net> SIZE=100\r\n");
	h_expect(&h, "250 ");
	h_send(&h, "RCPT TO:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n"
	    "RCPT TO:<c@example.org>\r\n");
	h_expect(&h, "250 ");
	h_expect(&h, "250 ");
	h_expect(&h, "452 4.5.3 Too many recipients");
	test_assert_int(smtp_session_rcpt_count(h.s), 2);
	h_send(&h, "DATA\r\n");
	h_expect(&h, "354 ");
	memset(big, 'x', sizeof(big));
	for (int i = 0; i < 3; i++) {
		h_send_raw(&h, big, sizeof(big));
		h_send(&h, "\r\n");
	}
	h_send(&h, ".\r\n");
	h_expect(&h, "552 5.3.4");
	test_assert(strstr(buf_cstr(&h.calls), "abort too big") != NULL);
	test_assert(h.body.len <= 100);
	h_send(&h, "NOOP\r\n");
	h_expect(&h, "250 ");
	h_free(&h);
	test_end();
}
TEST(test_smtp_session_limits);

static void
test_smtp_session_sequence(void)
{
	struct harness h;

	test_begin("smtp session: bad sequence, unknown command, syntax");
	h_init(&h, SMTP_PORT_MTA);
	h.set.max_errors = 100;
	h_start(&h);
	h_expect(&h, "220 ");
	h_send(&h, "MAIL FROM:<s@example.net>\r\n");
	h_expect(&h, "503 5.5.1");
	h_send(&h, "EHLO c.example\r\n");
	h_expect(&h, "250-");
	h_send(&h, "RCPT TO:<a@example.org>\r\n");
	h_expect(&h, "503 5.5.1");
	h_send(&h, "DATA\r\n");
	h_expect(&h, "503 5.5.1");
	h_send(&h, "FOO bar\r\n");
	h_expect(&h, "500 5.5.2");
	h_send(&h, "MAIL FROM:s@example.net\r\n");
	h_expect(&h, "501 5.1.7");
	h_send(&h, "MAIL FROM:<s@example.net> FOO=1\r\n");
	h_expect(&h, "555 5.5.4");
	h_send(&h, "MAIL FROM:<s@example.net> BODY=BINARYMIME\r\n");
	h_expect(&h, "555 5.5.4");
	h_send(&h, "MAIL FROM:<\xc3\xa9@example.net>\r\n");
	h_expect(&h, "553 5.6.7");
	h_send(&h, "MAIL FROM:<\xc3\xa9@example.net> SMTPUTF8\r\n");
	h_expect(&h, "250 ");
	test_assert(smtp_session_smtputf8(h.s));
	h_send(&h, "MAIL FROM:<s@example.net>\r\n");
	h_expect(&h, "503 5.5.1 Nested");
	h_send(&h, "DATA\r\n");
	h_expect(&h, "554 5.5.1");
	h_send(&h, "RCPT TO:<a@example.org> NOTIFY=NEVER\r\n");
	h_expect(&h, "555 5.5.4");
	h_send(&h, "RCPT TO:<>\r\n");
	h_expect(&h, "501 5.1.3");
	h_send(&h, "VRFY root\r\n");
	h_expect(&h, "252 2.5.2");
	h_send(&h, "HELP\r\n");
	h_expect(&h, "214 ");
	h_send(&h, "RSET extra\r\n");
	h_expect(&h, "501 5.5.4");
	h_send(&h, "RSET\r\n");
	h_expect(&h, "250 2.0.0");
	h_send(&h, "AUTH PLAIN AHVzZXIAc2VjcmV0\r\n");
	h_expect(&h, "503 5.5.1");	/* AUTH not offered on this port */
	h_free(&h);
	test_end();
}
TEST(test_smtp_session_sequence);

static void
test_smtp_session_line_limits(void)
{
	struct harness h;
	char *line = xmalloc(5001);

	test_begin("smtp session: line too long, error limit");
	h_init(&h, SMTP_PORT_MTA);
	h.set.max_errors = 4;
	h_start(&h);
	h_ehlo(&h);
	memset(line, 'A', 5000);
	line[0] = 'N';	/* "NOOP..." must not be run */
	line[1] = 'O';
	line[2] = 'O';
	line[3] = 'P';
	line[4] = ' ';
	h_send_raw(&h, line, 5000);
	h_run(&h, 10);
	h_send(&h, "\r\nNOOP\r\n");
	h_expect(&h, "500 5.5.2 Line too long");
	h_expect(&h, "250 2.0.0");
	h_send(&h, "BAD1\r\n");
	h_expect(&h, "500 5.5.2");
	h_send(&h, "BAD2\r\n\r\n");
	h_expect(&h, "500 5.5.2");
	h_expect(&h, "500 5.5.2");	/* 4th error ... */
	h_expect(&h, "421 4.7.0");	/* ... ends the session */
	h_wait_closed(&h);
	h_free(&h);
	free(line);
	test_end();
}
TEST(test_smtp_session_line_limits);

static void
test_smtp_session_timeout(void)
{
	struct harness h;

	test_begin("smtp session: idle timeout");
	h_init(&h, SMTP_PORT_MTA);
	h.set.cmd_timeout_ms = 100;
	h_start(&h);
	h_ehlo(&h);
	h_send(&h, "MAIL FROM:<s@example.net>\r\n");
	h_expect(&h, "250 ");
	h_expect(&h, "421 4.4.2");
	h_wait_closed(&h);
	test_assert(strstr(buf_cstr(&h.calls), "abort disconnect|disconnect") != NULL);
	h_free(&h);
	test_end();
}
TEST(test_smtp_session_timeout);

static void
test_smtp_session_greet_pause(void)
{
	struct harness h;

	test_begin("smtp session: early talker refused, patient client served");
	h_init(&h, SMTP_PORT_MTA);
	h.set.greet_pause_ms = 200;
	h_start(&h);
	h_send(&h, "EHLO hasty.example\r\n");
	h_expect(&h, "554 5.5.0");
	h_wait_closed(&h);
	test_assert(strstr(buf_cstr(&h.calls), "ehlo") == NULL);
	h_free(&h);

	h_init(&h, SMTP_PORT_MTA);
	h.set.greet_pause_ms = 50;
	h_start(&h);
	h_ehlo(&h);
	h_free(&h);
	test_end();
}
TEST(test_smtp_session_greet_pause);

static void
test_smtp_session_submission_plain(void)
{
	struct harness h;

	test_begin("smtp session: 587 before STARTTLS, AUTH needs TLS");
	h_init(&h, SMTP_PORT_SUBMISSION);
	h.set.auth_enabled = true;
	h_start(&h);
	h_ehlo(&h);
	h_send(&h, "MAIL FROM:<s@example.net>\r\n");
	h_expect(&h, "530 5.7.0 Must issue a STARTTLS command first");
	h_send(&h, "AUTH PLAIN AHVzZXJAZXhhbXBsZS5vcmcAc2VjcmV0\r\n");
	h_expect(&h, "530 5.7.0 Must issue a STARTTLS command first");
	h_send(&h, "STARTTLS\r\n");
	h_expect(&h, "502 5.5.1");	/* no certificate configured */
	h_free(&h);

	/* port 25 with AUTH switched on: plaintext AUTH is refused */
	h_init(&h, SMTP_PORT_MTA);
	h.set.auth_enabled = true;
	h_start(&h);
	h_ehlo(&h);
	h_send(&h, "AUTH PLAIN AHVzZXJAZXhhbXBsZS5vcmcAc2VjcmV0\r\n");
	h_expect(&h, "538 5.7.11");
	h_free(&h);
	test_end();
}
TEST(test_smtp_session_submission_plain);

/* ------------------------------------------------------------------ */
/* TLS */

static EVP_PKEY *test_key;
static X509 *test_cert;

static void
make_cert(void)
{
	X509_NAME *name;

	if (test_cert != NULL)
		return;
	test_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	test_cert = X509_new();
	X509_set_version(test_cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(test_cert), 1);
	X509_gmtime_adj(X509_getm_notBefore(test_cert), -60);
	X509_gmtime_adj(X509_getm_notAfter(test_cert), 3600);
	X509_set_pubkey(test_cert, test_key);
	name = X509_get_subject_name(test_cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"mx.example.org", -1, -1, 0);
	X509_set_issuer_name(test_cert, name);
	if (X509_sign(test_cert, test_key, EVP_sha256()) == 0)
		abort();
}

static SSL_CTX *
server_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	make_cert();
	SSL_CTX_use_certificate(ctx, test_cert);
	SSL_CTX_use_PrivateKey(ctx, test_key);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	return ctx;
}

static SSL_CTX *
client_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}

static void
h_client_starttls(struct harness *h, SSL_CTX *cctx)
{
	double end = now_ms() + 3000;

	h->client = bufferevent_openssl_filter_new(h->base, h->pair[1],
	    SSL_new(cctx), BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	bufferevent_setcb(h->client, NULL, NULL, client_event_cb, h);
	bufferevent_enable(h->client, EV_READ | EV_WRITE);
	while (!h->tls_connected && now_ms() < end)
		event_base_loop(h->base, EVLOOP_ONCE);
	test_assert(h->tls_connected);
}

static void
test_smtp_session_starttls(void)
{
	SSL_CTX *sctx = server_ctx(), *cctx = client_ctx();
	struct harness h;
	char *r;

	test_begin("smtp session: STARTTLS on 587, injection, AUTH, MAIL");
	h_init(&h, SMTP_PORT_SUBMISSION);
	h.set.ssl_ctx = sctx;
	h.set.auth_enabled = true;
	h_start(&h);
	h_expect(&h, "220 ");
	h_send(&h, "EHLO client.example.net\r\n");
	r = h_reply(&h);
	test_assert(strstr(r, "250-STARTTLS\r\n") != NULL);
	test_assert(strstr(r, "AUTH") == NULL);
	free(r);
	/* the plaintext after STARTTLS must be thrown away */
	h_send(&h, "STARTTLS\r\nRSET\r\n");
	h_expect(&h, "220 2.0.0");
	h_run(&h, 20);
	test_assert_int(evbuffer_get_length(bufferevent_get_input(h.client)), 0);
	h_client_starttls(&h, cctx);
	test_assert(smtp_session_tls(h.s));
	test_assert(smtp_session_tls_version(h.s) != NULL);
	test_assert(smtp_session_tls_cipher(h.s) != NULL);
	test_assert(smtp_session_helo(h.s) == NULL);
	h_send(&h, "MAIL FROM:<s@example.org>\r\n");
	h_expect(&h, "503 5.5.1");	/* EHLO again first */
	h_send(&h, "EHLO client.example.net\r\n");
	r = h_reply(&h);
	test_assert(str_has_prefix(r, "250-mx.example.org\r\n"));
	test_assert(strstr(r, "STARTTLS") == NULL);
	test_assert(strstr(r, "250-AUTH PLAIN LOGIN\r\n") != NULL);
	free(r);
	h_send(&h, "MAIL FROM:<s@example.org>\r\n");
	h_expect(&h, "530 5.7.0 Authentication required");
	/* AUTH PLAIN with an initial response: user@example.org / secret */
	h_send(&h, "AUTH PLAIN AHVzZXJAZXhhbXBsZS5vcmcAc2VjcmV0\r\n");
	h_expect(&h, "235 2.7.0");
	test_assert_str(smtp_session_auth_login(h.s), "user@example.org");
	h_send(&h, "AUTH PLAIN AHVzZXJAZXhhbXBsZS5vcmcAc2VjcmV0\r\n");
	h_expect(&h, "503 5.5.1");
	h_send(&h, "STARTTLS\r\n");
	h_expect(&h, "503 5.5.1");
	h_send(&h, "MAIL FROM:<user@example.org>\r\nRCPT TO:<x@example.com>\r\nDATA\r\n");
	h_expect(&h, "250 ");
	h_expect(&h, "250 ");
	h_expect(&h, "354 ");
	h_send(&h, "over TLS\r\n.\r\n");
	h_expect(&h, "250 2.0.0");
	test_assert_str(buf_cstr(&h.body), "over TLS\r\n");
	test_assert(strstr(buf_cstr(&h.calls), "ehlo client.example.net|tls|ehlo") != NULL);
	h_send(&h, "QUIT\r\n");
	h_expect(&h, "221 ");
	h_wait_closed(&h);
	h_free(&h);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	test_end();
}
TEST(test_smtp_session_starttls);

static void
test_smtp_session_auth(void)
{
	SSL_CTX *sctx = server_ctx(), *cctx = client_ctx();
	struct harness h;
	char *r;

	test_begin("smtp session: 465, AUTH PLAIN and LOGIN, refused and cancelled");
	h_init(&h, SMTP_PORT_SUBMISSIONS);
	h.set.auth_enabled = true;
	h.set.ssl_ctx = sctx;
	h_start_ex(&h, sctx, cctx);
	h_expect(&h, "220 ");
	test_assert(smtp_session_tls(h.s));
	h_send(&h, "EHLO client.example.net\r\n");
	r = h_reply(&h);
	test_assert(strstr(r, "STARTTLS") == NULL);
	test_assert(strstr(r, "250-AUTH PLAIN LOGIN\r\n") != NULL);
	free(r);
	h_send(&h, "MAIL FROM:<s@example.org>\r\n");
	h_expect(&h, "530 5.7.0 Authentication required");
	/* wrong password, PLAIN with a continuation */
	h_send(&h, "AUTH PLAIN\r\n");
	r = h_reply(&h);
	test_assert_str(r, "334 \r\n");
	free(r);
	h_send(&h, "AHVzZXJAZXhhbXBsZS5vcmcAd3Jvbmc=\r\n");
	h_expect(&h, "535 5.7.8");
	test_assert(smtp_session_auth_login(h.s) == NULL);
	/* cancelled */
	h_send(&h, "AUTH LOGIN\r\n");
	h_expect(&h, "334 VXNlcm5hbWU6");
	h_send(&h, "*\r\n");
	h_expect(&h, "501 5.7.0");
	/* bad base64 */
	h_send(&h, "AUTH PLAIN !!!!\r\n");
	h_expect(&h, "501 5.5.2");
	h_send(&h, "AUTH CRAM-MD5\r\n");
	h_expect(&h, "504 5.5.4");
	/* LOGIN: user@example.org / secret */
	h_send(&h, "AUTH LOGIN\r\n");
	h_expect(&h, "334 VXNlcm5hbWU6");
	h_send(&h, "dXNlckBleGFtcGxlLm9yZw==\r\n");
	h_expect(&h, "334 UGFzc3dvcmQ6");
	h_send(&h, "c2VjcmV0\r\n");
	h_expect(&h, "235 2.7.0");
	test_assert_str(smtp_session_auth_login(h.s), "user@example.org");
	h_send(&h, "MAIL FROM:<user@example.org>\r\n");
	h_expect(&h, "250 ");
	test_assert(strstr(buf_cstr(&h.calls), "auth PLAIN user@example.org []|"
	    "auth LOGIN user@example.org []") != NULL);
	h_free(&h);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	test_end();
}
TEST(test_smtp_session_auth);

static void
test_smtp_session_data_refusals(void)
{
	struct harness h;

	test_begin("smtp session: data begin refused, chunk write error, shutdown");
	h_init(&h, SMTP_PORT_MTA);
	h_start(&h);
	h_ehlo(&h);
	h.refuse_data = true;
	h_send(&h, "MAIL FROM:<s@example.net>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n");
	h_expect(&h, "250 ");
	h_expect(&h, "250 ");
	h_expect(&h, "451 4.3.0 Spool full");
	/* BDAT refused: the chunk is read away and the transaction dropped */
	h_send(&h, "BDAT 4\r\nNOOPBDAT 1 LAST\r\nx");
	h_expect(&h, "451 4.3.0");
	h_expect(&h, "503 5.5.1");
	h.refuse_data = false;
	h.chunk_fail = true;
	h_send(&h, "MAIL FROM:<s@example.net>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n");
	h_expect(&h, "250 ");
	h_expect(&h, "250 ");
	h_expect(&h, "354 ");
	h_send(&h, "body\r\n.\r\n");
	h_expect(&h, "451 4.3.0");
	test_assert(strstr(buf_cstr(&h.calls), "abort write error") != NULL);
	h.chunk_fail = false;
	h_send(&h, "MAIL FROM:<s@example.net>\r\n");
	h_expect(&h, "250 ");
	smtp_session_shutdown(h.s);
	h_run(&h, 20);
	h_send(&h, "RCPT TO:<a@example.org>\r\nDATA\r\n");
	h_expect(&h, "250 ");
	h_expect(&h, "354 ");
	h_send(&h, "last\r\n.\r\n");
	h_expect(&h, "250 2.0.0");
	h_expect(&h, "421 4.3.2");
	h_wait_closed(&h);
	h_free(&h);
	test_end();
}
TEST(test_smtp_session_data_refusals);

static void
test_smtp_session_backpressure(void)
{
	enum { N = 20000 };
	struct harness h;
	struct buf cmds;
	size_t replies = 0;
	double end;

	test_begin("smtp session: a client that does not read its replies is not read either");
	h_init(&h, SMTP_PORT_MTA);
	h_start(&h);
	h_ehlo(&h);
	buf_init(&cmds, BUF_UNLIMITED);
	for (int i = 0; i < N; i++)
		buf_append_str(&cmds, "NOOP\r\n");
	bufferevent_disable(h.client, EV_READ);
	h_send_raw(&h, cmds.data, cmds.len);
	h_run(&h, 50);
	/* the server stopped running commands with about 64 KiB of replies
	 * unread; the rest of the commands wait in its input */
	test_assert(evbuffer_get_length(bufferevent_get_output(h.pair[0])) <= 65536 + 64);
	test_assert(evbuffer_get_length(bufferevent_get_input(h.pair[0])) > 0);
	bufferevent_enable(h.client, EV_READ);
	end = now_ms() + 5000;
	while (replies < N && now_ms() < end) {
		struct evbuffer *in = bufferevent_get_input(h.client);
		char tmp[4096];
		int n;

		event_base_loop(h.base, EVLOOP_ONCE);
		while ((n = evbuffer_remove(in, tmp, sizeof(tmp))) > 0) {
			for (int i = 0; i < n; i++)
				replies += tmp[i] == '\n';
		}
	}
	test_assert_int(replies, N);
	buf_free(&cmds);
	h_free(&h);
	test_end();
}
TEST(test_smtp_session_backpressure);

static void
test_smtp_session_half_close(void)
{
	struct harness h;

	test_begin("smtp session: client half-closes after QUIT, still gets replies");
	h_init(&h, SMTP_PORT_MTA);
	h.async = true;
	h_start(&h);
	h_ehlo(&h);
	h_send(&h, "MAIL FROM:<s@example.net>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n");
	h_expect(&h, "250 ");
	h_expect(&h, "250 ");
	h_expect(&h, "354 ");
	h_send(&h, "body\r\n.\r\nNOOP\r\nQUIT\r\n");
	bufferevent_flush(h.client, EV_WRITE, BEV_FINISHED);
	h_expect(&h, "250 2.0.0 Ok: queued");
	h_expect(&h, "250 2.0.0 OK");
	h_expect(&h, "221 ");
	h_wait_closed(&h);
	test_assert(strstr(buf_cstr(&h.calls), "abort") == NULL);
	h_free(&h);

	/* a body cut short by the hang-up is dropped */
	h_init(&h, SMTP_PORT_MTA);
	h_start(&h);
	h_ehlo(&h);
	h_send(&h, "MAIL FROM:<s@example.net>\r\nRCPT TO:<a@example.org>\r\nDATA\r\n");
	h_expect(&h, "250 ");
	h_expect(&h, "250 ");
	h_expect(&h, "354 ");
	h_send(&h, "partial body\r\n");
	bufferevent_flush(h.client, EV_WRITE, BEV_FINISHED);
	h_wait_closed(&h);
	test_assert(strstr(buf_cstr(&h.calls), "abort disconnect|disconnect") != NULL);
	h_free(&h);
	test_end();
}
TEST(test_smtp_session_half_close);

static void
test_smtp_session_mta_starttls(void)
{
	SSL_CTX *sctx = server_ctx(), *cctx = client_ctx();
	struct harness h;
	char *r;

	test_begin("smtp session: STARTTLS on 25, no AUTH, MAIL without AUTH");
	h_init(&h, SMTP_PORT_MTA);
	h.set.ssl_ctx = sctx;
	h_start(&h);
	h_expect(&h, "220 ");
	h_send(&h, "EHLO client.example.net\r\n");
	r = h_reply(&h);
	test_assert(strstr(r, "250-STARTTLS\r\n") != NULL);
	test_assert(strstr(r, "AUTH") == NULL);
	free(r);
	h_send(&h, "MAIL FROM:<s@example.net>\r\n");
	h_expect(&h, "250 ");
	h_send(&h, "STARTTLS extra\r\n");
	h_expect(&h, "501 5.5.4");
	h_send(&h, "STARTTLS\r\n");
	h_expect(&h, "220 2.0.0");
	h_client_starttls(&h, cctx);
	test_assert(strstr(buf_cstr(&h.calls), "abort STARTTLS|tls") != NULL);
	h_send(&h, "EHLO client.example.net\r\n");
	r = h_reply(&h);
	test_assert(strstr(r, "STARTTLS") == NULL);
	test_assert(strstr(r, "AUTH") == NULL);
	free(r);
	h_send(&h, "MAIL FROM:<s@example.net>\r\nRCPT TO:<a@example.org>\r\nBDAT 5 LAST\r\nx\r\n");
	h_expect(&h, "250 ");
	h_expect(&h, "250 ");
	h_send(&h, "\r\n");
	h_expect(&h, "250 2.0.0 Ok");
	test_assert_str(buf_cstr(&h.body), "x\r\n\r\n");
	h_free(&h);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	test_end();

	test_begin("smtp session: HTTP request ends the session");
	h_init(&h, SMTP_PORT_MTA);
	h_start(&h);
	h_expect(&h, "220 ");
	h_send(&h, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
	h_expect(&h, "421 4.7.0");
	h_wait_closed(&h);
	h_free(&h);
	test_end();
}
TEST(test_smtp_session_mta_starttls);

static void
test_smtp_session_connect_refused(void)
{
	struct harness h;

	test_begin("smtp session: on_connect refuses, now and later");
	for (int async = 0; async < 2; async++) {
		h_init(&h, SMTP_PORT_MTA);
		h.refuse_connect = true;
		h.async = async;
		h.set.greet_pause_ms = 30;
		h_start(&h);
		h_expect(&h, "554 5.7.1 No SMTP service here");
		h_wait_closed(&h);
		test_assert_str(buf_cstr(&h.calls), "connect|disconnect");
		h_free(&h);
	}
	/* accepted later, greeting only after the pause */
	h_init(&h, SMTP_PORT_MTA);
	h.async = true;
	h.set.greet_pause_ms = 30;
	h_start(&h);
	h_ehlo(&h);
	h_free(&h);
	test_end();
}
TEST(test_smtp_session_connect_refused);

static void
test_smtp_session_bytewise(void)
{
	static const char script[] =
	    "EHLO client.example.net\r\n"
	    "MAIL FROM:<s@example.net>\r\n"
	    "RCPT TO:<a@example.org>\r\n"
	    "DATA\r\n"
	    "..one\r\n"
	    "two\r\n"
	    ".\r\n"
	    "MAIL FROM:<s@example.net>\r\n"
	    "RCPT TO:<b@example.org>\r\n"
	    "BDAT 5\r\nthree"
	    "BDAT 2 LAST\r\n\r\n"
	    "QUIT\r\n";
	struct harness h;
	struct buf got;
	double end;

	test_begin("smtp session: a whole session sent one byte at a time");
	h_init(&h, SMTP_PORT_MTA);
	h_start(&h);
	buf_init(&got, BUF_UNLIMITED);
	for (size_t i = 0; i < sizeof(script) - 1; i++) {
		h_send_raw(&h, script + i, 1);
		for (int k = 0; k < 4; k++)
			event_base_loop(h.base, EVLOOP_NONBLOCK);
	}
	end = now_ms() + 3000;
	while (!h.disconnected && now_ms() < end)
		event_base_loop(h.base, EVLOOP_ONCE);
	{
		struct evbuffer *in = bufferevent_get_input(h.client);
		size_t n = evbuffer_get_length(in);

		buf_append(&got, evbuffer_pullup(in, -1), n);
	}
	test_assert(h.disconnected);
	test_assert(strstr(buf_cstr(&got), "354 ") != NULL);
	test_assert(strstr(buf_cstr(&got), "250 2.0.0 5 octets received\r\n") != NULL);
	test_assert(str_has_suffix(buf_cstr(&got), "221 2.0.0 mx.example.org Bye\r\n"));
	test_assert(strstr(buf_cstr(&got), "5.5.") == NULL);
	test_assert_str(buf_cstr(&h.body), "three\r\n");
	test_assert_str(buf_cstr(&h.calls), "connect|ehlo client.example.net|"
	    "mail <s@example.net>|rcpt <a@example.org>|begin|end 1|"
	    "mail <s@example.net>|rcpt <b@example.org>|begin|end 1|disconnect");
	buf_free(&got);
	h_free(&h);
	test_end();
}
TEST(test_smtp_session_bytewise);
