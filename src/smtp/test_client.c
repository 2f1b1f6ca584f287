#include "smtp/client.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "lib/buf.h"
#include "lib/file.h"
#include "lib/test.h"
#include "lib/xalloc.h"
#include "dns/mxroute.h"
#include "msgauth/dkim_keys.h"
#include "msgauth/dkim_sign.h"

static void
test_smtp_reply_parser(void)
{
	static const struct {
		const char *lines[4];
		int ret;	/* of the last line */
		int code;
		const char *enhanced, *text;
	} cases[] = {
		{ { "250 OK" }, 1, 250, "", "OK" },
		{ { "250-mx.b.test", "250-PIPELINING", "250 SIZE 100" }, 1, 250, "",
		    "mx.b.test\nPIPELINING\nSIZE 100" },
		{ { "550 5.1.1 no such user" }, 1, 550, "5.1.1", "5.1.1 no such user" },
		{ { "451 4.7.650 greylisted" }, 1, 451, "4.7.650", "4.7.650 greylisted" },
		{ { "451 4.7.6500 x" }, 1, 451, "", "4.7.6500 x" },
		{ { "451 4..1 x" }, 1, 451, "", "4..1 x" },
		{ { "452 4.3.1" }, 1, 452, "4.3.1", "4.3.1" },
		/* class of the enhanced code must match the reply */
		{ { "250 5.0.0 odd" }, 1, 250, "", "5.0.0 odd" },
		{ { "220" }, 1, 220, "", "" },
		{ { "250-a", "251 b" }, -1, 250, "", "" },
		{ { "2x0 no" }, -1, 0, "", "" },
		{ { "199 low" }, -1, 0, "", "" },
		{ { "250x" }, -1, 0, "", "" },
		{ { "25" }, -1, 0, "", "" },
	};

	test_begin("smtp client reply parser");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_reply_parser p;
		int ret = 0;

		smtp_reply_parser_init(&p);
		for (size_t k = 0; k < 4 && cases[i].lines[k] != NULL; k++)
			ret = smtp_reply_parser_line(&p, cases[i].lines[k],
			    strlen(cases[i].lines[k]));
		test_assert_int(ret, cases[i].ret);
		if (ret == 1) {
			test_assert_int(p.reply.code, cases[i].code);
			test_assert_str(p.reply.enhanced, cases[i].enhanced);
			test_assert_str(p.reply.text, cases[i].text);
		}
	}
	test_end();
}

static void
test_smtp_reply_limits(void)
{
	struct smtp_reply_parser p;
	char line[3000];
	int ret = 0;

	test_begin("smtp client reply limits: lines and text");
	smtp_reply_parser_init(&p);
	for (int i = 0; i < SMTP_CLIENT_MAX_REPLY_LINES + 5 && ret == 0; i++)
		ret = smtp_reply_parser_line(&p, "250-x", 5);
	test_assert_int(ret, -1);
	smtp_reply_parser_init(&p);
	memset(line, 'a', sizeof(line));
	memcpy(line, "250 ", 4);
	test_assert_int(smtp_reply_parser_line(&p, line, sizeof(line)), 1);
	test_assert_int(strlen(p.reply.text), SMTP_CLIENT_MAX_REPLY_TEXT - 1);
	test_end();
}

static void
test_smtp_ehlo_keywords(void)
{
	uint64_t size = 1;

	test_begin("smtp client EHLO keywords");
	test_assert_int(smtp_ehlo_keyword("PIPELINING", 10, NULL), SMTP_EXT_PIPELINING);
	test_assert_int(smtp_ehlo_keyword("size 1000", 9, &size), SMTP_EXT_SIZE);
	test_assert_int(size, 1000);
	test_assert_int(smtp_ehlo_keyword("SIZE", 4, &size), SMTP_EXT_SIZE);
	test_assert_int(size, 0);
	test_assert_int(smtp_ehlo_keyword("SIZE 99999999999999999999999", 27, &size), SMTP_EXT_SIZE);
	test_assert_int(size, 0);
	test_assert_int(smtp_ehlo_keyword("AUTH LOGIN PLAIN", 16, NULL), SMTP_EXT_AUTH_PLAIN);
	test_assert_int(smtp_ehlo_keyword("AUTH=PLAIN", 10, NULL), 0);
	test_assert_int(smtp_ehlo_keyword("AUTH CRAM-MD5", 13, NULL), 0);
	test_assert_int(smtp_ehlo_keyword("AUTH PLAINX", 11, NULL), 0);
	test_assert_int(smtp_ehlo_keyword("STARTTLSX", 9, NULL), 0);
	test_assert_int(smtp_ehlo_keyword("CHUNKING", 8, NULL), SMTP_EXT_CHUNKING);
	test_end();
}

/*
 * A scripted server on the other end of a socketpair, on the same loop.
 * It records every command line with the number of the read callback that
 * saw it (commands of one pipelined write share it).
 */
struct fake {
	struct event_base *base;
	struct bufferevent *bev;
	const char *greeting;	/* default "220 fake ESMTP" */
	const char *ehlo;	/* full EHLO reply, or NULL = 502 */
	const char *data_reply;	/* default "250 2.0.0 queued" */
	SSL_CTX *ssl_ctx;	/* STARTTLS when set */
	bool close_in_data;	/* drop the connection in the body */
	bool in_data;
	size_t bdat_left;
	bool bdat_last;
	unsigned int batch;
	struct buf log;		/* "batch:line\n" */
	struct buf data;	/* message as received (DATA: un-stuffed) */
	bool quit;
	bool tls;
};

static void
fake_reply(struct fake *f, const char *s)
{
	evbuffer_add_printf(bufferevent_get_output(f->bev), "%s\r\n", s);
}

static void fake_read(struct bufferevent *bev, void *arg);

static void
fake_event(struct bufferevent *bev, short what, void *arg)
{
	struct fake *f = arg;

	if (what & BEV_EVENT_CONNECTED)
		return;
	bufferevent_disable(bev, EV_READ | EV_WRITE);
	f->quit = true;
}

static void
fake_starttls(struct fake *f)
{
	SSL *ssl = SSL_new(f->ssl_ctx);
	struct bufferevent *tls;

	tls = bufferevent_openssl_filter_new(f->base, f->bev, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	f->bev = tls;
	f->tls = true;
	bufferevent_setcb(tls, fake_read, NULL, fake_event, f);
	bufferevent_enable(tls, EV_READ | EV_WRITE);
}

static void
fake_line(struct fake *f, const char *line)
{
	buf_printf(&f->log, "%u:%s\n", f->batch, line);
	if (strncasecmp(line, "EHLO", 4) == 0) {
		if (f->ehlo == NULL) {
			fake_reply(f, "502 5.5.2 no ESMTP here");
		} else if (f->tls) {
			/* No STARTTLS once in TLS. */
			struct buf e;
			char *p;

			buf_init(&e, BUF_UNLIMITED);
			buf_append_str(&e, f->ehlo);
			if ((p = strstr(e.data, "250-STARTTLS\r\n")) != NULL)
				memmove(p, p + 14, strlen(p + 14) + 1);
			evbuffer_add(bufferevent_get_output(f->bev), e.data, strlen(e.data));
			buf_free(&e);
		} else {
			evbuffer_add(bufferevent_get_output(f->bev), f->ehlo,
			    strlen(f->ehlo));
		}
	} else if (strncasecmp(line, "HELO", 4) == 0) {
		fake_reply(f, "250 fake");
	} else if (strcasecmp(line, "STARTTLS") == 0) {
		fake_reply(f, "220 2.0.0 go ahead");
		bufferevent_flush(f->bev, EV_WRITE, BEV_FLUSH);
		fake_starttls(f);
	} else if (strncasecmp(line, "AUTH PLAIN ", 11) == 0) {
		/* \0user\0secret */
		fake_reply(f, strcmp(line + 11, "AHVzZXIAc2VjcmV0") == 0 ?
		    "235 2.7.0 ok" : "535 5.7.8 bad");
	} else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
		fake_reply(f, strstr(line, "<refused@") != NULL ?
		    "550 5.7.1 sender refused" : "250 2.1.0 ok");
	} else if (strncasecmp(line, "RCPT TO:", 8) == 0) {
		if (strstr(line, "<temp@") != NULL)
			fake_reply(f, "450 4.2.1 try later");
		else if (strstr(line, "<bad@") != NULL)
			fake_reply(f, "550 5.1.1 no such user");
		else
			fake_reply(f, "250 2.1.5 ok");
	} else if (strcasecmp(line, "DATA") == 0) {
		fake_reply(f, "354 go");
		f->in_data = true;
	} else if (strncasecmp(line, "BDAT ", 5) == 0) {
		char *end;

		f->bdat_left = strtoul(line + 5, &end, 10);
		f->bdat_last = strstr(end, "LAST") != NULL;
		if (f->bdat_left == 0)
			fake_reply(f, f->data_reply);
	} else if (strcasecmp(line, "RSET") == 0) {
		fake_reply(f, "250 2.0.0 reset");
	} else if (strcasecmp(line, "QUIT") == 0) {
		fake_reply(f, "221 2.0.0 bye");
		f->quit = true;
	} else {
		fake_reply(f, "500 5.5.1 what?");
	}
}

static void
fake_read(struct bufferevent *bev, void *arg)
{
	struct fake *f = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	f->batch++;
	for (;;) {
		char *line;
		size_t len;

		if (f->bdat_left > 0) {
			size_t n = evbuffer_get_length(in);

			if (n == 0)
				return;
			if (n > f->bdat_left)
				n = f->bdat_left;
			buf_append(&f->data, evbuffer_pullup(in, (ssize_t)n), n);
			evbuffer_drain(in, n);
			f->bdat_left -= n;
			if (f->bdat_left == 0)
				fake_reply(f, f->bdat_last ? f->data_reply : "250 2.0.0 chunk");
			continue;
		}
		line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF_STRICT);
		if (line == NULL)
			return;
		if (f->in_data) {
			if (f->close_in_data) {
				free(line);
				bufferevent_free(f->bev);
				f->bev = NULL;
				f->quit = true;
				return;
			}
			if (strcmp(line, ".") == 0) {
				f->in_data = false;
				fake_reply(f, f->data_reply);
			} else {
				buf_append_str(&f->data, line[0] == '.' ? line + 1 : line);
				buf_append_str(&f->data, "\r\n");
			}
		} else {
			fake_line(f, line);
		}
		free(line);
	}
}

struct run {
	struct event_base *base;
	struct fake fake;
	struct smtp_client *client;
	const struct smtp_client_msg *msgs[3];
	unsigned int msg_count, sent;
	struct smtp_client_result ready_res;
	bool ready_failed;
	struct smtp_client_result results[3];
	struct smtp_rcpt_result rcpts[3][8];
	unsigned int done;
};

static void
run_done(struct smtp_client *c, const struct smtp_client_result *res, void *ctx)
{
	struct run *r = ctx;
	unsigned int i = r->done++;

	r->results[i] = *res;
	for (size_t k = 0; k < res->rcpt_count && k < 8; k++)
		r->rcpts[i][k] = res->rcpts[k];
	r->results[i].rcpts = r->rcpts[i];
	if (res->reply.code == 0 && res->status == SMTP_STATUS_TEMPFAIL &&
	    strstr(res->reply.text, "connection lost") != NULL) {
		r->client = NULL;	/* freed after this callback */
		return;
	}
	if (r->sent < r->msg_count)
		smtp_client_send(c, r->msgs[r->sent++], run_done, r);
	else {
		smtp_client_quit(c);
		r->client = NULL;
	}
}

static void
run_ready(struct smtp_client *c, const struct smtp_client_result *res, void *ctx)
{
	struct run *r = ctx;

	if (res != NULL) {
		r->ready_failed = true;
		r->ready_res = *res;
		r->client = NULL;
		return;
	}
	if (r->msg_count == 0) {
		smtp_client_quit(c);
		r->client = NULL;
		return;
	}
	smtp_client_send(c, r->msgs[r->sent++], run_done, r);
}

static void
stop_check(evutil_socket_t fd, short what, void *arg)
{
	struct run *r = arg;

	if (r->fake.quit && r->client == NULL)
		event_base_loopbreak(r->base);
}

/* Runs a whole session; fills r. */
static void
run_session(struct run *r, const struct smtp_client_params *params)
{
	int sv[2];
	struct bufferevent *cb;
	struct event *tick;
	struct timeval ms = { 0, 10000 }, limit = { 10, 0 };

	r->base = event_base_new();
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	evutil_make_socket_nonblocking(sv[0]);
	evutil_make_socket_nonblocking(sv[1]);
	r->fake.base = r->base;
	buf_init(&r->fake.log, BUF_UNLIMITED);
	buf_init(&r->fake.data, BUF_UNLIMITED);
	if (r->fake.data_reply == NULL)
		r->fake.data_reply = "250 2.0.0 queued as X";
	r->fake.bev = bufferevent_socket_new(r->base, sv[1], BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(r->fake.bev, fake_read, NULL, fake_event, &r->fake);
	bufferevent_enable(r->fake.bev, EV_READ | EV_WRITE);
	fake_reply(&r->fake, r->fake.greeting != NULL ? r->fake.greeting :
	    "220 fake ESMTP");
	cb = bufferevent_socket_new(r->base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	r->client = smtp_client_new(r->base, cb, params, run_ready, r);
	tick = event_new(r->base, -1, EV_PERSIST, stop_check, r);
	event_add(tick, &ms);
	event_base_loopexit(r->base, &limit);
	event_base_dispatch(r->base);
	event_free(tick);
	if (r->client != NULL)
		smtp_client_abort(&r->client);
	if (r->fake.bev != NULL)
		bufferevent_free(r->fake.bev);
	event_base_free(r->base);
}

static void
run_free(struct run *r)
{
	buf_free(&r->fake.log);
	buf_free(&r->fake.data);
}

#define EHLO_FULL "250-fake\r\n250-PIPELINING\r\n250-SIZE 100000\r\n" \
	"250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n"

static const struct smtp_client_params plain_params = {
	.helo_name = "mx.a.test", .peer_name = "mx.b.test",
	.tls = SMTP_TLS_OPPORTUNISTIC,
};

static void
test_smtp_client_pipelined(void)
{
	static const char *const rcpts[] = {
		"ok@b.test", "temp@b.test", "bad@b.test", "ok2@b.test",
	};
	static const char body[] = "Subject: t\r\n\r\n.leading dot\r\n..two\r\nlast line";
	struct smtp_client_msg msg = {
		.mail_from = "alice@a.test", .rcpts = rcpts, .rcpt_count = 4,
		.size = 1000, .needs_8bitmime = true,
		.prefix = "DKIM-Signature: x\r\n", .data = body,
		.data_len = sizeof(body) - 1, .fd = -1,
	};
	struct run r = { .fake = { .ehlo = EHLO_FULL } };

	test_begin("smtp client: pipelined transaction, per-recipient replies");
	r.msgs[0] = &msg;
	r.msg_count = 1;
	run_session(&r, &plain_params);
	test_assert(!r.ready_failed);
	test_assert_int(r.done, 1);
	test_assert_int(r.results[0].status, SMTP_STATUS_OK);
	test_assert_int(r.rcpts[0][0].status, SMTP_STATUS_OK);
	test_assert_int(r.rcpts[0][1].status, SMTP_STATUS_TEMPFAIL);
	test_assert_str(r.rcpts[0][1].reply.enhanced, "4.2.1");
	test_assert_int(r.rcpts[0][2].status, SMTP_STATUS_PERMFAIL);
	test_assert_int(r.rcpts[0][2].reply.code, 550);
	test_assert_int(r.rcpts[0][3].status, SMTP_STATUS_OK);
	test_assert_int(r.results[0].reply.code, 250);
	test_assert(r.results[0].extensions & SMTP_EXT_PIPELINING);
	/* MAIL, the RCPTs and DATA came in one write. */
	test_assert(strstr(buf_cstr(&r.fake.log),
	    "MAIL FROM:<alice@a.test> SIZE=1000 BODY=8BITMIME\n") != NULL);
	{
		const char *log = buf_cstr(&r.fake.log);
		const char *mail = strstr(log, "MAIL FROM");
		const char *data = strstr(log, ":DATA\n");

		test_assert(mail != NULL && data != NULL);
		if (mail != NULL && data != NULL) {
			/* same batch number before both */
			const char *mb = mail - 1, *db = data;

			while (mb > log && mb[-1] != '\n')
				mb--;
			while (db > log && db[-1] != '\n')
				db--;
			test_assert(strtoul(mb, NULL, 10) == strtoul(db, NULL, 10));
		}
	}
	test_assert_str(buf_cstr(&r.fake.data),
	    "DKIM-Signature: x\r\nSubject: t\r\n\r\n.leading dot\r\n..two\r\nlast line\r\n");
	test_assert(strstr(buf_cstr(&r.fake.log), "QUIT") != NULL);
	run_free(&r);
	test_end();
}

static void
test_smtp_client_helo_lockstep(void)
{
	static const char *const rcpts[] = { "ok@b.test", "bad@b.test" };
	struct smtp_client_msg msg = {
		.mail_from = "", .rcpts = rcpts, .rcpt_count = 2, .size = 10,
		.data = "x\r\n", .data_len = 3, .fd = -1,
	};
	struct run r = { .fake = { .ehlo = NULL, .data_reply = "452 4.3.1 full" } };

	test_begin("smtp client: HELO fallback, lock-step, DATA 4xx, null sender");
	r.msgs[0] = &msg;
	r.msg_count = 1;
	run_session(&r, &plain_params);
	test_assert_int(r.done, 1);
	test_assert_int(r.results[0].status, SMTP_STATUS_TEMPFAIL);
	test_assert_int(r.rcpts[0][0].status, SMTP_STATUS_TEMPFAIL);
	test_assert_int(r.rcpts[0][0].reply.code, 452);
	test_assert_int(r.rcpts[0][1].status, SMTP_STATUS_PERMFAIL);
	test_assert(strstr(buf_cstr(&r.fake.log), "HELO mx.a.test") != NULL);
	test_assert(strstr(buf_cstr(&r.fake.log), "MAIL FROM:<>\n") != NULL);
	/* lock-step: every command in its own batch */
	test_assert(strstr(buf_cstr(&r.fake.log), "RCPT TO:<ok@b.test>\n4:RCPT") != NULL ||
	    strstr(buf_cstr(&r.fake.log), "RCPT TO:<ok@b.test>\n5:RCPT") != NULL);
	run_free(&r);
	test_end();
}

static void
test_smtp_client_local_refusals(void)
{
	static const char *const rcpts[] = { "ok@b.test" };
	struct smtp_client_msg big = {
		.mail_from = "a@a.test", .rcpts = rcpts, .rcpt_count = 1,
		.size = 200000, .data = "x\r\n", .data_len = 3, .fd = -1,
	};
	struct smtp_client_msg utf8 = big;
	struct smtp_client_msg refused = big;
	struct smtp_client_msg ok = big;
	struct run r = { .fake = { .ehlo = "250-fake\r\n250 SIZE 100000\r\n" } };

	test_begin("smtp client: SIZE, SMTPUTF8, 8BITMIME, MAIL refused, RSET before the next");
	utf8.size = 10;
	utf8.needs_smtputf8 = true;
	refused.size = 10;
	refused.mail_from = "refused@a.test";
	ok.size = 10;
	r.msgs[0] = &refused;
	r.msgs[1] = &big;
	r.msgs[2] = &ok;
	r.msg_count = 3;
	run_session(&r, &plain_params);
	test_assert_int(r.done, 3);
	test_assert_int(r.results[0].status, SMTP_STATUS_PERMFAIL);
	test_assert_int(r.rcpts[0][0].reply.code, 550);
	test_assert_str(r.rcpts[0][0].reply.enhanced, "5.7.1");
	test_assert_int(r.results[1].status, SMTP_STATUS_PERMFAIL);
	test_assert_str(r.rcpts[1][0].reply.enhanced, "5.3.4");
	test_assert_int(r.results[2].status, SMTP_STATUS_OK);
	/* The big one never reached the server; RSET came before the next. */
	test_assert(strstr(buf_cstr(&r.fake.log), "SIZE=200000") == NULL);
	test_assert(strstr(buf_cstr(&r.fake.log), ":RSET\n") != NULL);
	run_free(&r);

	{
		struct run r2 = { .fake = { .ehlo = "250-fake\r\n250 SIZE 100000\r\n" } };

		r2.msgs[0] = &utf8;
		r2.msg_count = 1;
		run_session(&r2, &plain_params);
		test_assert_int(r2.done, 1);
		test_assert_int(r2.results[0].status, SMTP_STATUS_PERMFAIL);
		test_assert_str(r2.rcpts[0][0].reply.enhanced, "5.6.7");
		test_assert(strstr(buf_cstr(&r2.fake.log), "MAIL") == NULL);
		run_free(&r2);
	}
	{
		/* 8-bit data never goes to a server without 8BITMIME; the
		 * 7-bit form (needs_8bitmime false) goes without BODY=. */
		struct run r3 = { .fake = { .ehlo = "250-fake\r\n250 SIZE 100000\r\n" } };
		struct smtp_client_msg eight = ok, seven = ok;

		eight.needs_8bitmime = true;
		r3.msgs[0] = &eight;
		r3.msgs[1] = &seven;
		r3.msg_count = 2;
		run_session(&r3, &plain_params);
		test_assert_int(r3.done, 2);
		test_assert_int(r3.results[0].status, SMTP_STATUS_PERMFAIL);
		test_assert_str(r3.rcpts[0][0].reply.enhanced, "5.6.3");
		test_assert_int(r3.results[1].status, SMTP_STATUS_OK);
		test_assert(strstr(buf_cstr(&r3.fake.log), "BODY=") == NULL);
		test_assert_int(r3.results[1].extensions & SMTP_EXT_8BITMIME, 0);
		run_free(&r3);
	}
	test_end();
}

static void
test_smtp_client_chunking(void)
{
	static const char *const rcpts[] = { "ok@b.test" };
	const char *dir = test_tmpdir();
	char *path = xasprintf("%s/msg", dir);
	struct buf body;
	struct smtp_client_msg msg = {
		.mail_from = "a@a.test", .rcpts = rcpts, .rcpt_count = 1,
		.prefix = "X-P: 1\r\n", .fd = -1,
	};
	struct run r = { .fake = { .ehlo =
	    "250-fake\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 8BITMIME\r\n" } };

	test_begin("smtp client: CHUNKING from a file, 150 KB in BDAT chunks");
	buf_init(&body, BUF_UNLIMITED);
	buf_append_str(&body, "Subject: big\r\n\r\n");
	while (body.len < 150000)
		buf_append_str(&body, ".a line of the body that is long enough\r\n");
	file_write_atomic(path, body.data, body.len, 0600);
	msg.fd = open(path, O_RDONLY);
	msg.size = body.len + 8;
	r.msgs[0] = &msg;
	r.msg_count = 1;
	run_session(&r, &plain_params);
	test_assert_int(r.done, 1);
	test_assert_int(r.results[0].status, SMTP_STATUS_OK);
	test_assert_int(r.fake.data.len, body.len + 8);
	test_assert(r.fake.data.len == body.len + 8 &&
	    memcmp(r.fake.data.data + 8, body.data, body.len) == 0);
	test_assert(strstr(buf_cstr(&r.fake.log), "BDAT 65536\n") != NULL);
	test_assert(strstr(buf_cstr(&r.fake.log), "BDAT 0 LAST\n") != NULL);
	test_assert(strstr(buf_cstr(&r.fake.log), "DATA\n") == NULL);
	close(msg.fd);
	buf_free(&body);
	free(path);
	run_free(&r);
	test_end();
}

static void
test_smtp_client_failures(void)
{
	static const char *const rcpts[] = { "ok@b.test", "bad@b.test" };
	struct smtp_client_msg msg = {
		.mail_from = "a@a.test", .rcpts = rcpts, .rcpt_count = 2,
		.size = 10, .data = "x\r\ny\r\n", .data_len = 6, .fd = -1,
	};
	struct smtp_client_params auth = plain_params;
	struct run r1 = { .fake = { .greeting = "554 5.7.1 go away" } };
	struct run r2 = { .fake = { .ehlo = EHLO_FULL, .close_in_data = true } };
	struct run r3 = { .fake = { .ehlo = "250-fake\r\n250 AUTH PLAIN\r\n" } };

	test_begin("smtp client: 554 greeting, lost in DATA, no AUTH without TLS");
	run_session(&r1, &plain_params);
	test_assert(r1.ready_failed);
	test_assert_int(r1.ready_res.status, SMTP_STATUS_PERMFAIL);
	test_assert_int(r1.ready_res.reply.code, 554);
	run_free(&r1);

	r2.msgs[0] = &msg;
	r2.msg_count = 1;
	run_session(&r2, &plain_params);
	test_assert_int(r2.done, 1);
	test_assert_int(r2.results[0].status, SMTP_STATUS_TEMPFAIL);
	test_assert_int(r2.rcpts[0][0].status, SMTP_STATUS_TEMPFAIL);
	test_assert_int(r2.rcpts[0][1].status, SMTP_STATUS_PERMFAIL);
	run_free(&r2);

	auth.auth_user = "user";
	auth.auth_password = "secret";
	run_session(&r3, &auth);
	test_assert(r3.ready_failed);
	test_assert_int(r3.ready_res.status, SMTP_STATUS_TEMPFAIL);
	test_assert(strstr(buf_cstr(&r3.fake.log), "AUTH") == NULL);
	run_free(&r3);
	test_end();
}

/* A throwaway self-signed certificate for the fake server. */
static SSL_CTX *
server_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = X509_new();

	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)"mx.b.test", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_sign(x, key, EVP_sha256());
	SSL_CTX_use_certificate(ctx, x);
	SSL_CTX_use_PrivateKey(ctx, key);
	X509_free(x);
	EVP_PKEY_free(key);
	return ctx;
}

static void
test_smtp_client_starttls_auth(void)
{
	static const char *const rcpts[] = { "ok@b.test" };
	struct smtp_client_msg msg = {
		.mail_from = "a@a.test", .rcpts = rcpts, .rcpt_count = 1,
		.size = 10, .data = "x\r\n", .data_len = 3, .fd = -1,
	};
	struct smtp_client_params params = plain_params;
	struct run r = { .fake = { .ehlo =
	    "250-fake\r\n250-STARTTLS\r\n250-PIPELINING\r\n250 AUTH LOGIN PLAIN\r\n" } };
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());

	test_begin("smtp client: STARTTLS, EHLO again, AUTH PLAIN over TLS");
	r.fake.ssl_ctx = server_ctx();
	params.ssl_ctx = cctx;
	params.auth_user = "user";
	params.auth_password = "secret";
	r.msgs[0] = &msg;
	r.msg_count = 1;
	run_session(&r, &params);
	test_assert(!r.ready_failed);
	test_assert_int(r.done, 1);
	test_assert_int(r.results[0].status, SMTP_STATUS_OK);
	test_assert(r.results[0].tls);
	test_assert(r.fake.tls);
	{
		const char *log = buf_cstr(&r.fake.log);
		const char *tls = strstr(log, "STARTTLS");

		test_assert(tls != NULL && strstr(tls, "EHLO mx.a.test") != NULL);
		test_assert(tls != NULL && strstr(tls, "AUTH PLAIN") != NULL);
	}
	SSL_CTX_free(r.fake.ssl_ctx);
	SSL_CTX_free(cctx);
	run_free(&r);
	test_end();
}

TEST(test_smtp_reply_parser);
TEST(test_smtp_reply_limits);
TEST(test_smtp_ehlo_keywords);
TEST(test_smtp_client_pipelined);
TEST(test_smtp_client_helo_lockstep);
TEST(test_smtp_client_local_refusals);
TEST(test_smtp_client_chunking);
TEST(test_smtp_client_failures);
TEST(test_smtp_client_starttls_auth);

/*
 * The whole outbound path against a real network, for the e2e bed: MX
 * routing through src/dns/, DKIM signing with a config dir's keys, and
 * this client, from host A to the SMTP server on B's MX. Runs only when
 * TEGAMI_TEST_SMTP_TO is set (tests/e2e/test_outbound.py sets it).
 */
struct live {
	struct event_base *base;
	struct dns_resolver *resolver;
	struct smtp_client *client;
	const char *rcpts[2];
	struct smtp_client_msg msg;
	char *prefix;
	char *body;
	int port;
	bool route_ok;
	bool ready;
	struct smtp_client_result result;
	struct smtp_rcpt_result rcpt_results[2];
	bool done;
	bool failed;
	char why[1200];
};

static void
live_done(struct smtp_client *c, const struct smtp_client_result *res, void *ctx)
{
	struct live *l = ctx;

	l->result = *res;
	for (size_t i = 0; i < res->rcpt_count && i < 2; i++)
		l->rcpt_results[i] = res->rcpts[i];
	l->done = true;
	smtp_client_quit(c);
	l->client = NULL;
	event_base_loopexit(l->base, NULL);
}

static void
live_ready(struct smtp_client *c, const struct smtp_client_result *res, void *ctx)
{
	struct live *l = ctx;

	if (res != NULL) {
		snprintf(l->why, sizeof(l->why), "session: %d %s", res->reply.code,
		    res->reply.text);
		l->failed = true;
		l->client = NULL;
		event_base_loopexit(l->base, NULL);
		return;
	}
	l->ready = true;
	smtp_client_send(c, &l->msg, live_done, l);
}

static void
live_route(struct mx_route *route, void *ctx)
{
	struct live *l = ctx;
	struct sockaddr_in sin;
	struct bufferevent *bev;
	struct smtp_client_params params = {
		.helo_name = "mx.a.test", .tls = SMTP_TLS_OPPORTUNISTIC,
	};

	if (route->status != MX_ROUTE_OK || route->count == 0 ||
	    route->targets[0].addr.family != AF_INET) {
		snprintf(l->why, sizeof(l->why), "route: %s", route->error);
		l->failed = true;
		mx_route_free(&route);
		event_base_loopexit(l->base, NULL);
		return;
	}
	l->route_ok = true;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)l->port);
	sin.sin_addr = route->targets[0].addr.u.v4;
	params.peer_name = route->targets[0].host;
	bev = bufferevent_socket_new(l->base, -1, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_socket_connect(bev, (struct sockaddr *)&sin, sizeof(sin));
	l->client = smtp_client_new(l->base, bev, &params, live_ready, l);
	mx_route_free(&route);
}

static void
test_smtp_client_live(void)
{
	const char *to = getenv("TEGAMI_TEST_SMTP_TO");
	const char *from = getenv("TEGAMI_TEST_DKIM_FROM");
	const char *config = getenv("TEGAMI_TEST_DKIM_CONFIG_DIR");
	const char *port = getenv("TEGAMI_TEST_SMTP_PORT");
	struct dns_config dconfig = { 0 };
	struct dkim_keyset *ks = NULL;
	struct dkim_key *keys[DKIM_MAX_KEYS_PER_MESSAGE];
	struct dkim_signer *signer;
	struct live l = { 0 };
	struct timeval limit = { 30, 0 };
	char *error = NULL;
	const char *err, *domain;
	size_t nkeys;

	if (to == NULL || from == NULL || config == NULL) {
		printf("skip smtp client live (TEGAMI_TEST_SMTP_TO not set)\n");
		return;
	}
	test_begin("smtp client live: MX route, DKIM-signed, delivered");
	l.port = port != NULL ? atoi(port) : 25;
	l.base = event_base_new();
	l.resolver = dns_resolver_create(l.base, &dconfig, &error);
	test_assert(l.resolver != NULL);
	test_assert_int(dkim_keyset_load(config, &ks, &error), 0);
	if (l.resolver == NULL || ks == NULL) {
		printf("     %s\n", error);
		free(error);
		goto out;
	}
	l.body = xasprintf("From: Alice <%s>\r\nTo: <%s>\r\n"
	    "Subject: over the bed\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
	    "Message-ID: <live@a.test>\r\n\r\nHello B.\r\n.dot line\r\n", from, to);
	nkeys = dkim_keyset_find(ks, from, keys, DKIM_MAX_KEYS_PER_MESSAGE);
	signer = dkim_signer_new(time(NULL));
	dkim_signer_update(signer, l.body, strlen(l.body));
	test_assert_int(dkim_signer_finish(signer, keys, nkeys, &l.prefix, &error), 0);
	dkim_signer_free(&signer);
	l.rcpts[0] = to;
	l.rcpts[1] = getenv("TEGAMI_TEST_SMTP_BAD_RCPT");
	l.msg.mail_from = from;
	l.msg.rcpts = l.rcpts;
	l.msg.rcpt_count = l.rcpts[1] != NULL ? 2 : 1;
	l.msg.prefix = l.prefix;
	l.msg.data = l.body;
	l.msg.data_len = strlen(l.body);
	l.msg.size = strlen(l.prefix != NULL ? l.prefix : "") + l.msg.data_len;
	l.msg.fd = -1;
	domain = strrchr(to, '@') + 1;
	test_assert_int(mx_route_lookup(l.resolver, domain, live_route, &l, &err), 0);
	event_base_loopexit(l.base, &limit);
	event_base_dispatch(l.base);
	if (l.failed)
		printf("     %s\n", l.why);
	test_assert(l.route_ok);
	test_assert(l.ready);
	test_assert(l.done);
	test_assert_int(l.result.status, SMTP_STATUS_OK);
	test_assert_int(l.rcpt_results[0].status, SMTP_STATUS_OK);
	if (l.msg.rcpt_count == 2)
		test_assert_int(l.rcpt_results[1].status, SMTP_STATUS_PERMFAIL);
	/* Let QUIT go out before the loop ends. */
	{
		struct timeval t = { 0, 200000 };

		event_base_loopexit(l.base, &t);
		event_base_dispatch(l.base);
	}
out:
	if (l.client != NULL)
		smtp_client_abort(&l.client);
	dkim_keyset_free(&ks);
	dns_resolver_destroy(&l.resolver);
	free(l.prefix);
	free(l.body);
	event_base_free(l.base);
	test_end();
}

TEST(test_smtp_client_live);
