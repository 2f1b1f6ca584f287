/*
 * The IMAP engine's hooks for the spam defences: on_filed (junk
 * training) after COPY, MOVE and APPEND, a BYE greeting and the refusing
 * auth answer (bans). A session over a bufferevent_pair on a real Maildir;
 * apart from test_session.c so the two grow independently.
 */
#include "imap/session.h"
#include "imap/test_harness.h"
#include "lib/buf.h"
#include "lib/test.h"
#include "lib/xalloc.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

struct filed {
	char from[32], to[32];
	unsigned int n;
	bool paths_readable;	/* every path could be opened in the hook */
	size_t len;		/* APPEND */
};

struct hh {
	struct event_base *base;
	struct bufferevent *client;
	struct imap_session *s;
	const char *root;
	struct buf in;
	bool disconnected;
	bool refuse;		/* answer on_auth with imap_session_auth_refuse_bye */
	struct filed calls[8];
	unsigned int ncalls;
};

static void
hh_auth(struct imap_session *s, const char *user, const char *pass, void *ctx)
{
	struct hh *h = ctx;

	if (h->refuse)
		imap_session_auth_refuse_bye(s, "[UNAVAILABLE] banned");
	else
		imap_session_auth_reply(s, true, h->root);
}

static void
hh_disconnect(struct imap_session *s, void *ctx)
{
	struct hh *h = ctx;

	h->disconnected = true;
	h->s = NULL;
}

static void
hh_filed(struct imap_session *s, const char *from, const char *to,
    const char *const *paths, unsigned int n, const char *data, size_t len,
    void *ctx)
{
	struct hh *h = ctx;
	struct filed *f;

	if (h->ncalls >= 8)
		return;
	f = &h->calls[h->ncalls++];
	snprintf(f->from, sizeof(f->from), "%s", from != NULL ? from : "-");
	snprintf(f->to, sizeof(f->to), "%s", to);
	f->n = n;
	f->len = data != NULL ? len : 0;
	f->paths_readable = paths != NULL;
	for (unsigned int i = 0; paths != NULL && i < n; i++)
		f->paths_readable &= access(paths[i], R_OK) == 0;
}

static const struct imap_hooks hh_hooks = {
	.on_auth = hh_auth,
	.on_disconnect = hh_disconnect,
	.on_filed = hh_filed,
};

static void
hh_read(struct bufferevent *bev, void *arg)
{
	struct hh *h = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in);
	char *tmp = xmalloc(n + 1);

	evbuffer_remove(in, tmp, n);
	buf_append(&h->in, tmp, n);
	free(tmp);
}

static void
hh_start(struct hh *h, const char *root, const char *bye)
{
	struct bufferevent *pair[2];
	struct imap_settings set = {
		.hostname = "mx.test", .secure = true, .greeting_bye = bye,
	};

	memset(h, 0, sizeof(*h));
	h->root = root;
	buf_init(&h->in, BUF_UNLIMITED);
	h->base = event_base_new();
	bufferevent_pair_new(h->base, BEV_OPT_CLOSE_ON_FREE, pair);
	h->client = pair[1];
	bufferevent_setcb(h->client, hh_read, NULL, NULL, h);
	bufferevent_enable(h->client, EV_READ | EV_WRITE);
	h->s = imap_session_new(h->base, pair[0], &set, &hh_hooks, h);
}

static void
hh_stop(struct hh *h)
{
	if (h->s != NULL)
		imap_session_destroy(h->s);
	bufferevent_free(h->client);
	event_base_loop(h->base, EVLOOP_NONBLOCK);
	event_base_free(h->base);
	buf_free(&h->in);
}

/* Runs the loop until the output holds `until` (or a while passed). */
static char *
hh_wait(struct hh *h, const char *until)
{
	for (int i = 0; i < 200 && strstr(buf_cstr(&h->in), until) == NULL; i++) {
		struct timeval tv = { 0, 2000 };

		event_base_loopexit(h->base, &tv);
		event_base_dispatch(h->base);
	}
	{
		char *all = xstrdup(buf_cstr(&h->in));

		buf_reset(&h->in);
		return all;
	}
}

static char *
hh_cmd(struct hh *h, const char *text, const char *until)
{
	bufferevent_write(h->client, text, strlen(text));
	return hh_wait(h, until);
}

static void
test_imap_hook_filed(void)
{
	struct hh h;
	char *root = xasprintf("%s/hooks", test_tmpdir()), *out, *p;

	test_begin("imap hooks: on_filed after COPY, MOVE and APPEND");
	test_assert(mkdir(root, 0700) == 0);
	for (const char *sub = "cur"; sub != NULL;
	    sub = strcmp(sub, "cur") == 0 ? "new" : strcmp(sub, "new") == 0 ?
	    "tmp" : NULL) {
		p = xasprintf("%s/%s", root, sub);
		test_assert(mkdir(p, 0700) == 0);
		free(p);
	}
	harness_deliver(root, "1700000001.M1P1Q1.h", "Subject: one\n\nbuy now\n");
	harness_deliver(root, "1700000002.M1P1Q2.h", "Subject: two\n\nbuy more\n");
	harness_deliver(root, "1700000003.M1P1Q3.h", "Subject: three\n\nhello\n");
	hh_start(&h, root, NULL);
	free(hh_wait(&h, "* OK"));
	free(hh_cmd(&h, "a LOGIN u p\r\n", "a OK"));
	free(hh_cmd(&h, "b CREATE Junk\r\n", "b "));
	out = hh_cmd(&h, "c SELECT INBOX\r\n", "c OK");
	test_assert(strstr(out, "* 3 EXISTS") != NULL);
	free(out);
	free(hh_cmd(&h, "d MOVE 1:2 Junk\r\n", "d OK"));
	free(hh_cmd(&h, "e COPY 1 Nowhere\r\n", "e NO"));	/* no hook */
	free(hh_cmd(&h, "g COPY 1 Trash\r\n", "g OK"));
	free(hh_cmd(&h, "h APPEND Junk {14+}\r\nSubject: x\r\n\r\n\r\n", "h OK"));
	test_assert_int(h.ncalls, 3);
	test_assert_str(h.calls[0].from, "INBOX");
	test_assert_str(h.calls[0].to, "Junk");
	test_assert_int(h.calls[0].n, 2);
	test_assert(h.calls[0].paths_readable);
	test_assert_str(h.calls[1].to, "Trash");
	test_assert_int(h.calls[1].n, 1);
	test_assert_str(h.calls[2].from, "-");
	test_assert_str(h.calls[2].to, "Junk");
	test_assert_int(h.calls[2].len, 14);
	/* COPY into the selected folder itself: the copies grow the message
	   array the view shares, which must not leave the hook's paths
	   pointing into the old one (a use-after-free the fuzzer found) */
	for (int i = 0; i < 5; i++) {
		char line[64];

		snprintf(line, sizeof(line), "i%d COPY 1:* INBOX\r\n", i);
		free(hh_cmd(&h, line, "OK"));
		free(hh_cmd(&h, "n NOOP\r\n", "n OK"));
	}
	test_assert_int(h.ncalls, 8);
	test_assert_str(h.calls[7].to, "INBOX");
	test_assert_int(h.calls[7].n, 16);
	test_assert(h.calls[7].paths_readable);
	hh_stop(&h);
	free(root);
	test_end();
}
TEST(test_imap_hook_filed)

static void
test_imap_hook_bye(void)
{
	struct hh h;
	char *out;

	test_begin("imap hooks: a BYE greeting closes the connection");
	hh_start(&h, test_tmpdir(), "[UNAVAILABLE] go away");
	out = hh_wait(&h, "\r\n");
	test_assert(strncmp(out, "* BYE [UNAVAILABLE] go away\r\n", 29) == 0);
	test_assert(strstr(out, "* OK") == NULL);
	free(out);
	free(hh_wait(&h, "never"));
	test_assert(h.disconnected);
	hh_stop(&h);
	test_end();

	test_begin("imap hooks: a refused login gets NO, then BYE, then the end");
	hh_start(&h, test_tmpdir(), NULL);
	h.refuse = true;
	free(hh_wait(&h, "* OK"));
	out = hh_cmd(&h, "a LOGIN u p\r\nb NOOP\r\n", "* BYE");
	test_assert(strstr(out, "a NO [AUTHENTICATIONFAILED]") != NULL);
	test_assert(strstr(out, "* BYE [UNAVAILABLE] banned\r\n") != NULL);
	test_assert(strstr(out, "a NO") < strstr(out, "* BYE"));
	free(out);
	out = hh_wait(&h, "never");
	test_assert(strstr(out, "b OK") == NULL);	/* nothing more read */
	free(out);
	test_assert(h.disconnected);
	hh_stop(&h);
	test_end();
}
TEST(test_imap_hook_bye)
