/*
 * Whole POP3 sessions over a bufferevent_pair: the test is the client; the
 * hooks accept the password "pw" and serve a fake maildrop from memory.
 */
#include "pop3/server.h"
#include "lib/buf.h"
#include "lib/str.h"
#include "lib/test.h"
#include "lib/xalloc.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

static const char *const box_files[] = {
	"From: a@example.org\nSubject: one\n\nhello\n.dot line\n..two\nend",
	"Subject: two\n\nl1\nl2\nl3\n",
};

struct harness {
	struct event_base *base;
	struct bufferevent *pair[2];
	struct pop3_session *s;
	struct pop3_server_settings set;
	struct pop3_hooks hooks;
	struct buf calls;
	struct buf got;		/* everything the client received */
	bool disconnected;
	bool async;		/* answer from a zero-timeout event */
	bool in_use;		/* on_open says [IN-USE] */
	struct event *answer_ev;
	int answer;		/* 1 auth ok, 2 auth fail, 3 open, 4 commit,
				   5 auth refused and the session closed */
};

/* Appends "what" or "what arg" to the call list. */
static void
record(struct harness *h, const char *what, const char *arg)
{
	if (h->calls.len > 0)
		buf_append(&h->calls, "|", 1);
	buf_append(&h->calls, what, strlen(what));
	if (arg != NULL) {
		buf_append(&h->calls, " ", 1);
		buf_append(&h->calls, arg, strlen(arg));
	}
}

static void
give_open(struct harness *h)
{
	struct pop3_msg m[2] = {
		{ 0, "uid-1" }, { 0, "uid-2" },
	};

	if (h->in_use) {
		pop3_session_reply(h->s, false, "[IN-USE] locked");
		return;
	}
	for (size_t i = 0; i < 2; i++) {
		const char *f = box_files[i];

		m[i].size = strlen(f);
		for (const char *p = f; *p != '\0'; p++)
			m[i].size += *p == '\n';
	}
	pop3_session_open_ok(h->s, m, 2);
}

static void
answer(struct harness *h)
{
	switch (h->answer) {
	case 1:
		pop3_session_reply(h->s, true, "%s", "");
		break;
	case 2:
		pop3_session_reply(h->s, false, "[AUTH] Authentication failed.");
		break;
	case 3:
		give_open(h);
		break;
	case 4:
		pop3_session_reply(h->s, true, "ok");
		break;
	case 5:
		pop3_session_refuse_close(h->s, "[AUTH] banned");
		break;
	}
}

static void
answer_cb(evutil_socket_t fd, short what, void *arg)
{
	answer(arg);
}

static void
later(struct harness *h, int what)
{
	h->answer = what;
	if (h->async)
		event_active(h->answer_ev, EV_TIMEOUT, 1);
	else
		answer(h);
}

static void
on_connect(struct pop3_session *s, void *ctx)
{
	struct harness *h = ctx;

	h->s = s;
	record(h, "connect", NULL);
	pop3_session_reply(s, true, "ok");
}

static void
on_auth(struct pop3_session *s, const char *mech, const char *authzid,
    const char *login, char *password, void *ctx)
{
	struct harness *h = ctx;

	record(h, "auth", login);
	later(h, strcmp(password, "pw") == 0 ? 1 :
	    strcmp(password, "banned") == 0 ? 5 : 2);
}

static void
on_open(struct pop3_session *s, const char *user, void *ctx)
{
	struct harness *h = ctx;

	record(h, "open", user);
	later(h, 3);
}

static int
on_message_fd(struct pop3_session *s, size_t idx, void *ctx)
{
	int fd = memfd_create("msg", MFD_CLOEXEC);

	if (fd < 0 || write(fd, box_files[idx], strlen(box_files[idx])) < 0 ||
	    lseek(fd, 0, SEEK_SET) < 0)
		abort();
	return fd;
}

static void
on_commit(struct pop3_session *s, const bool *deleted, size_t count,
    void *ctx)
{
	struct harness *h = ctx;
	char d[8] = "";

	for (size_t i = 0; i < count && i < 7; i++)
		d[i] = deleted[i] ? 'D' : '-';
	record(h, "commit", d);
	later(h, 4);
}

static void
on_disconnect(struct pop3_session *s, void *ctx)
{
	struct harness *h = ctx;

	record(h, "disconnect", NULL);
	h->disconnected = true;
}

static void
h_init(struct harness *h)
{
	memset(h, 0, sizeof(*h));
	h->base = event_base_new();
	buf_init(&h->calls, 1 << 16);
	buf_init(&h->got, 1 << 22);
	h->set.hostname = "pop.example.org";
	h->set.plaintext_auth = true;
	h->hooks.on_connect = on_connect;
	h->hooks.on_auth = on_auth;
	h->hooks.on_open = on_open;
	h->hooks.on_message_fd = on_message_fd;
	h->hooks.on_commit = on_commit;
	h->hooks.on_disconnect = on_disconnect;
	h->answer_ev = event_new(h->base, -1, 0, answer_cb, h);
}

static void
h_start(struct harness *h)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0x7f000001);
	if (bufferevent_pair_new(h->base, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS, h->pair) < 0)
		abort();
	bufferevent_enable(h->pair[1], EV_READ | EV_WRITE);
	pop3_session_new(h->base, h->pair[0], &h->set, &h->hooks, h,
	    (struct sockaddr *)&sin, sizeof(sin));
}

static void
h_free(struct harness *h)
{
	if (!h->disconnected)
		pop3_session_destroy(h->s);
	if (h->pair[1] != NULL)
		bufferevent_free(h->pair[1]);
	event_free(h->answer_ev);
	event_base_free(h->base);
	buf_free(&h->calls);
	buf_free(&h->got);
}

static double
now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return tv.tv_sec * 1000.0 + tv.tv_usec / 1000.0;
}

static void
h_pump(struct harness *h)
{
	struct evbuffer *in;
	size_t n;

	if (h->pair[1] == NULL)
		return;
	in = bufferevent_get_input(h->pair[1]);
	n = evbuffer_get_length(in);
	if (n > 0) {
		buf_append(&h->got, evbuffer_pullup(in, (ssize_t)n), n);
		evbuffer_drain(in, n);
	}
}

/* Runs the loop until the received text holds needle (or 3 s pass). */
static bool
h_wait(struct harness *h, const char *needle)
{
	double end = now_ms() + 3000;

	for (;;) {
		h_pump(h);
		if (strstr(buf_cstr(&h->got), needle) != NULL)
			return true;
		if (now_ms() > end || (h->disconnected &&
		    evbuffer_get_length(bufferevent_get_input(h->pair[1])) == 0))
			return false;
		event_base_loop(h->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		if (!h->disconnected)
			usleep(100);
	}
}

static void
h_wait_closed(struct harness *h)
{
	double end = now_ms() + 3000;

	while (!h->disconnected && now_ms() < end) {
		event_base_loop(h->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		usleep(100);
	}
	h_pump(h);
}

static void
h_send(struct harness *h, const char *s)
{
	bufferevent_write(h->pair[1], s, strlen(s));
}

static const char script[] =
	"CAPA\r\n"
	"USER alice@example.org\r\n"
	"PASS pw\r\n"
	"STAT\r\n"
	"LIST\r\n"
	"UIDL 2\r\n"
	"RETR 1\r\n"
	"TOP 2 1\r\n"
	"DELE 1\r\n"
	"RETR 1\r\n"
	"LIST\r\n"
	"QUIT\r\n";

static const char expected[] =
	"+OK pop.example.org POP3 ready\r\n"
	"+OK Capability list follows\r\n"
	"TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n"
	"USER\r\nSASL PLAIN\r\nIMPLEMENTATION tegami\r\n.\r\n"
	"+OK\r\n"
	"+OK Logged in.\r\n"
	"+OK 2 93\r\n"
	"+OK 2 messages\r\n1 65\r\n2 28\r\n.\r\n"
	"+OK 2 uid-2\r\n"
	"+OK 65 octets\r\n"
	"From: a@example.org\r\nSubject: one\r\n\r\nhello\r\n..dot line\r\n"
	"...two\r\nend\r\n.\r\n"
	"+OK\r\nSubject: two\r\n\r\nl1\r\n.\r\n"
	"+OK Marked to be deleted.\r\n"
	"-ERR Message is deleted.\r\n"
	"+OK 1 messages\r\n2 28\r\n.\r\n"
	"+OK pop.example.org POP3 signing off (1 messages deleted)\r\n";

static void
test_pop3_session_happy(void)
{
	for (int async = 0; async < 2; async++) {
		struct harness h;

		test_begin(async ? "pop3 session (async answers)" :
		    "pop3 session");
		h_init(&h);
		h.async = async;
		h_start(&h);
		h_send(&h, script);
		test_assert(h_wait(&h, "signing off"));
		h_wait_closed(&h);
		test_assert(h.disconnected);
		test_assert_str(buf_cstr(&h.got), expected);
		test_assert_str(buf_cstr(&h.calls), "connect|auth alice@example.org|"
		    "open alice@example.org|commit D-|disconnect");
		h_free(&h);
		test_end();
	}
}
TEST(test_pop3_session_happy);

static void
test_pop3_session_bytewise(void)
{
	struct harness h;

	test_begin("pop3 session fed one byte at a time");
	h_init(&h);
	h_start(&h);
	for (const char *p = script; *p != '\0'; p++) {
		char c[2] = { *p, '\0' };

		h_send(&h, c);
		for (int i = 0; i < 3; i++)
			event_base_loop(h.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	}
	test_assert(h_wait(&h, "signing off"));
	h_wait_closed(&h);
	test_assert_str(buf_cstr(&h.got), expected);
	h_free(&h);
	test_end();
}
TEST(test_pop3_session_bytewise);

static void
test_pop3_session_auth_plain(void)
{
	struct harness h;

	test_begin("pop3 AUTH PLAIN, initial response and continuation");
	h_init(&h);
	h_start(&h);
	/* "\0bob\0pw", then authzid "bob" with "\0bob\0nope" */
	h_send(&h, "AUTH PLAIN AGJvYgBub3Bl\r\nAUTH PLAIN\r\nAGJvYgBwdw==\r\n"
	    "AUTH\r\nSTAT\r\nQUIT\r\n");
	test_assert(h_wait(&h, "signing off"));
	h_wait_closed(&h);
	test_assert_str(buf_cstr(&h.got),
	    "+OK pop.example.org POP3 ready\r\n"
	    "-ERR [AUTH] Authentication failed.\r\n"
	    "+ \r\n"
	    "+OK Logged in.\r\n"
	    "-ERR Unknown command in TRANSACTION state.\r\n"
	    "+OK 2 93\r\n"
	    "+OK pop.example.org POP3 signing off (0 messages deleted)\r\n");
	test_assert_str(buf_cstr(&h.calls), "connect|auth bob|auth bob|open bob|"
	    "commit --|disconnect");
	h_free(&h);
	test_end();
}
TEST(test_pop3_session_auth_plain);

static void
test_pop3_session_plaintext_refused(void)
{
	struct harness h;

	test_begin("pop3 logins refused without TLS");
	h_init(&h);
	h.set.plaintext_auth = false;
	h_start(&h);
	h_send(&h, "CAPA\r\nUSER a\r\nAUTH PLAIN AGEAcHc=\r\nSTLS\r\nQUIT\r\n");
	test_assert(h_wait(&h, "signing off"));
	h_wait_closed(&h);
	test_assert(strstr(buf_cstr(&h.got), "USER\r\n") == NULL);
	test_assert(strstr(buf_cstr(&h.got), "SASL") == NULL);
	test_assert(strstr(buf_cstr(&h.got), "\r\n-ERR [AUTH] Plaintext "
	    "authentication disallowed") != NULL);
	test_assert(strstr(buf_cstr(&h.got), "-ERR STLS not available") != NULL);
	test_assert_str(buf_cstr(&h.calls), "connect|disconnect");
	h_free(&h);
	test_end();
}
TEST(test_pop3_session_plaintext_refused);

static void
test_pop3_session_refused_and_closed(void)
{
	struct harness h;

	test_begin("pop3 login refused for good: -ERR, then the end");
	for (int async = 0; async < 2; async++) {
		h_init(&h);
		h.async = async;
		h_start(&h);
		/* the NOOP pipelined behind PASS gets no answer */
		h_send(&h, "USER a\r\nPASS banned\r\nNOOP\r\n");
		h_wait_closed(&h);
		test_assert(h.disconnected);
		test_assert_str(buf_cstr(&h.got),
		    "+OK pop.example.org POP3 ready\r\n"
		    "+OK\r\n"
		    "-ERR [AUTH] banned\r\n");
		test_assert_str(buf_cstr(&h.calls), "connect|auth a|disconnect");
		h_free(&h);
	}
	test_end();
}
TEST(test_pop3_session_refused_and_closed);

static void
test_pop3_session_drop_commits_nothing(void)
{
	struct harness h;

	test_begin("pop3 lost connection: no commit");
	h_init(&h);
	h_start(&h);
	h_send(&h, "USER a\r\nPASS pw\r\nDELE 1\r\n");
	test_assert(h_wait(&h, "Marked"));
	bufferevent_flush(h.pair[1], EV_WRITE, BEV_FINISHED);	/* EOF */
	bufferevent_free(h.pair[1]);
	h.pair[1] = NULL;
	h_wait_closed(&h);
	test_assert(h.disconnected);
	test_assert_str(buf_cstr(&h.calls), "connect|auth a|open a|disconnect");
	h_free(&h);
	test_end();
}
TEST(test_pop3_session_drop_commits_nothing);

static void
test_pop3_session_in_use_and_errors(void)
{
	struct harness h;
	char longline[400];

	test_begin("pop3 [IN-USE], bad input, error limit");
	h_init(&h);
	h.in_use = true;
	h_start(&h);
	memset(longline, 'A', sizeof(longline));
	memcpy(longline + sizeof(longline) - 3, "\r\n", 3);
	h_send(&h, "USER a\r\nPASS pw\r\nSTAT\r\nPASS x\r\n");
	h_send(&h, longline);
	h_send(&h, "NOOP\r\nRETR\r\nuser\r\n");
	test_assert(h_wait(&h, "Syntax"));
	test_assert_str(buf_cstr(&h.got),
	    "+OK pop.example.org POP3 ready\r\n"
	    "+OK\r\n"
	    "-ERR [IN-USE] locked\r\n"
	    "-ERR Unknown command in AUTHORIZATION state.\r\n"
	    "-ERR No username given.\r\n"
	    "-ERR Line too long\r\n"
	    "-ERR Unknown command in AUTHORIZATION state.\r\n"
	    "-ERR Unknown command in AUTHORIZATION state.\r\n"
	    "-ERR Syntax: USER <name>\r\n");
	for (int i = 0; i < 10; i++)
		h_send(&h, "XYZZY\r\n");
	test_assert(h_wait(&h, "Too many errors"));
	h_wait_closed(&h);
	test_assert(h.disconnected);
	h_free(&h);
	test_end();
}
TEST(test_pop3_session_in_use_and_errors);

static void
test_pop3_session_shutdown(void)
{
	struct harness h;

	test_begin("pop3 shutdown: -ERR, no commit");
	h_init(&h);
	h_start(&h);
	h_send(&h, "USER a\r\nPASS pw\r\nDELE 2\r\n");
	test_assert(h_wait(&h, "Marked"));
	pop3_session_shutdown(h.s);
	test_assert(h_wait(&h, "-ERR [SYS/TEMP] Server shutting down\r\n"));
	h_wait_closed(&h);
	test_assert_str(buf_cstr(&h.calls), "connect|auth a|open a|disconnect");
	h_free(&h);
	test_end();
}
TEST(test_pop3_session_shutdown);

static void
test_pop3_session_timeout(void)
{
	struct harness h;

	test_begin("pop3 idle timeout: -ERR, no commit");
	h_init(&h);
	h.set.cmd_timeout_ms = 100;
	h_start(&h);
	h_send(&h, "USER a\r\nPASS pw\r\nDELE 1\r\n");
	test_assert(h_wait(&h, "Marked"));
	test_assert(h_wait(&h, "-ERR [SYS/TEMP] Disconnected for inactivity."));
	h_wait_closed(&h);
	test_assert(h.disconnected);
	test_assert_str(buf_cstr(&h.calls), "connect|auth a|open a|disconnect");
	h_free(&h);
	test_end();
}
TEST(test_pop3_session_timeout);

static void
test_pop3_session_quit_half_close(void)
{
	struct harness h;

	test_begin("pop3 QUIT then EOF still commits and answers");
	h_init(&h);
	h.async = true;
	h_start(&h);
	h_send(&h, "USER a\r\nPASS pw\r\nRETR 2\r\nDELE 2\r\nQUIT\r\n");
	bufferevent_flush(h.pair[1], EV_WRITE, BEV_FINISHED);
	test_assert(h_wait(&h, "signing off (1 messages deleted)"));
	test_assert(strstr(buf_cstr(&h.got), "l3\r\n.\r\n+OK Marked") != NULL);
	h_wait_closed(&h);
	test_assert_str(buf_cstr(&h.calls), "connect|auth a|open a|commit -D|"
	    "disconnect");
	h_free(&h);
	test_end();
}
TEST(test_pop3_session_quit_half_close);
