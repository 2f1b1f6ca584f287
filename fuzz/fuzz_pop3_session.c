/*
 * libFuzzer target: a whole POP3 server session on a bufferevent_pair, the
 * fuzz input being everything the client sends. Hooks accept any password
 * starting with 's' and serve a fake maildrop of three messages (dots at
 * line starts, CRLF and LF mixed, no final line end, a big one); the first
 * byte picks plaintext logins on/off, async answers, [IN-USE], a failing
 * commit and a short error limit. No TLS.
 */
#include "lib/log.h"
#include "pop3/server.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fctx {
	bool async, in_use, commit_fails;
	bool gone;
	struct event *answer_ev;
	struct pop3_session *s;
	int what;		/* 1 ok, 2 refuse, 3 open */
};

static struct event_base *base;
static char *big;

static const char *
message(size_t i)
{
	static const char *const m[] = {
		"Subject: a\n\n.\n..\nx\r\ny\n.end",
		"",
		NULL,
	};

	return i < 2 ? m[i] : big;
}

static void
give(struct fctx *f)
{
	static const struct pop3_msg msgs[3] = {
		{ 30, "u1" }, { 0, "u2" }, { 300000, "u3" },
	};

	switch (f->what) {
	case 1:
		pop3_session_reply(f->s, true, "%s", "");
		break;
	case 2:
		pop3_session_reply(f->s, false, "[AUTH] no");
		break;
	case 3:
		if (f->in_use)
			pop3_session_reply(f->s, false, "[IN-USE] busy");
		else
			pop3_session_open_ok(f->s, msgs, 3);
		break;
	}
}

static void
answer_cb(evutil_socket_t fd, short what, void *arg)
{
	give(arg);
}

static void
answer(struct fctx *f, struct pop3_session *s, int what)
{
	f->s = s;
	f->what = what;
	if (f->async)
		event_active(f->answer_ev, EV_TIMEOUT, 1);
	else
		give(f);
}

static void
f_connect(struct pop3_session *s, void *ctx)
{
	answer(ctx, s, 1);
}

static void
f_auth(struct pop3_session *s, const char *mech, const char *authzid,
    const char *login, char *password, void *ctx)
{
	answer(ctx, s, password[0] == 's' ? 1 : 2);
}

static void
f_open(struct pop3_session *s, const char *user, void *ctx)
{
	answer(ctx, s, 3);
}

static int
f_message_fd(struct pop3_session *s, size_t idx, void *ctx)
{
	const char *m = message(idx);
	int fd = memfd_create("m", MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	if (write(fd, m, strlen(m)) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
f_commit(struct pop3_session *s, const bool *deleted, size_t count,
    void *ctx)
{
	struct fctx *f = ctx;

	answer(f, s, f->commit_fails ? 2 : 1);
}

static void
f_disconnect(struct pop3_session *s, void *ctx)
{
	((struct fctx *)ctx)->gone = true;
}

static const struct pop3_hooks hooks = {
	.on_connect = f_connect,
	.on_auth = f_auth,
	.on_open = f_open,
	.on_message_fd = f_message_fd,
	.on_commit = f_commit,
	.on_disconnect = f_disconnect,
};

static void
run(struct bufferevent *client, struct fctx *f)
{
	for (int i = 0; i < 100000 && !f->gone; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		evbuffer_drain(bufferevent_get_input(client),
		    evbuffer_get_length(bufferevent_get_input(client)));
		if (event_base_get_num_events(base, EVENT_BASE_COUNT_ACTIVE) == 0)
			break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pop3_server_settings set;
	struct bufferevent *pair[2];
	struct pop3_session *s;
	struct fctx f;

	if (size < 1)
		return 0;
	if (base == NULL) {
		int fd = open("/dev/null", O_WRONLY);

		base = event_base_new();
		log_set_fd(fd);
		log_set_level(LOG_TRACE);
		big = malloc(300001);
		for (size_t i = 0; i < 300000; i++)
			big[i] = i % 61 == 60 ? '\n' : i % 61 == 0 ? '.' : 'b';
		big[300000] = '\0';
	}
	memset(&set, 0, sizeof(set));
	memset(&f, 0, sizeof(f));
	set.hostname = "pop.example.org";
	set.plaintext_auth = (data[0] & 1) == 0;
	f.async = (data[0] & 2) != 0;
	f.in_use = (data[0] & 4) != 0;
	f.commit_fails = (data[0] & 8) != 0;
	if (data[0] & 16)
		set.max_errors = 3;
	data++;
	size--;
	f.answer_ev = event_new(base, -1, 0, answer_cb, &f);
	if (bufferevent_pair_new(base, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS, pair) < 0)
		abort();
	bufferevent_enable(pair[1], EV_READ | EV_WRITE);
	s = pop3_session_new(base, pair[0], &set, &hooks, &f, NULL, 0);
	bufferevent_write(pair[1], data, size);
	run(pair[1], &f);
	if (!f.gone) {
		bufferevent_flush(pair[1], EV_WRITE, BEV_FINISHED);
		run(pair[1], &f);
	}
	if (!f.gone) {
		event_del(f.answer_ev);
		pop3_session_destroy(s);
	}
	bufferevent_free(pair[1]);
	event_free(f.answer_ev);
	event_base_loop(base, EVLOOP_NONBLOCK);
	return 0;
}
