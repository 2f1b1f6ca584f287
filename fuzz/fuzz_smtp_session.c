/*
 * libFuzzer target: a whole SMTP server session on a bufferevent_pair, the
 * fuzz input being everything the client sends. Hooks accept everything
 * and throw the data away; the first byte picks the port kind, small
 * limits, and whether hooks answer at once or from a later event (the
 * re-entrant and the resumed paths). No TLS.
 */
#include "lib/log.h"
#include "smtp/server.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fctx {
	bool async;
	bool gone;
	struct event *answer_ev;
	struct smtp_session *s;
	int code;
	const char *enh;
};

static struct event_base *base;

static void
answer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fctx *f = arg;

	smtp_session_reply(f->s, f->code, f->enh, "ok");
}

static void
answer(struct fctx *f, struct smtp_session *s, int code, const char *enh)
{
	if (!f->async) {
		smtp_session_reply(s, code, enh, "ok");
		return;
	}
	f->s = s;
	f->code = code;
	f->enh = enh;
	event_active(f->answer_ev, EV_TIMEOUT, 1);
}

static void
f_connect(struct smtp_session *s, void *ctx)
{
	answer(ctx, s, 220, NULL);
}

static void
f_helo(struct smtp_session *s, const char *name, bool ehlo, void *ctx)
{
	answer(ctx, s, 250, NULL);
}

static void
f_auth(struct smtp_session *s, const char *mech, const char *authzid,
    const char *login, char *password, void *ctx)
{
	answer(ctx, s, password[0] == 's' ? 235 : 535, "2.7.0");
}

static void
f_mail(struct smtp_session *s, const struct address *from, void *ctx)
{
	(void)smtp_session_declared_size(s);
	answer(ctx, s, 250, "2.1.0");
}

static void
f_rcpt(struct smtp_session *s, const struct address *to, void *ctx)
{
	/* some refusals, some 421s, to reach those paths */
	if (to->local[0] == 'x')
		answer(ctx, s, 550, "5.1.1");
	else if (to->local[0] == 'q')
		answer(ctx, s, 421, "4.3.0");
	else
		answer(ctx, s, 250, "2.1.5");
}

static void
f_data_begin(struct smtp_session *s, void *ctx)
{
	answer(ctx, s, smtp_session_rcpt_count(s) > 2 ? 451 : SMTP_REPLY_DATA_GO,
	    NULL);
}

static int
f_data_chunk(struct smtp_session *s, const unsigned char *p, size_t len,
    void *ctx)
{
	return len > 0 && p[0] == '!' ? -1 : 0;
}

static void
f_data_end(struct smtp_session *s, void *ctx)
{
	answer(ctx, s, 250, "2.0.0");
}

static void
f_disconnect(struct smtp_session *s, void *ctx)
{
	((struct fctx *)ctx)->gone = true;
}

static const struct smtp_hooks hooks = {
	.on_connect = f_connect,
	.on_helo = f_helo,
	.on_auth = f_auth,
	.on_mail = f_mail,
	.on_rcpt = f_rcpt,
	.on_data_begin = f_data_begin,
	.on_data_chunk = f_data_chunk,
	.on_data_end = f_data_end,
	.on_disconnect = f_disconnect,
};

/* Runs the loop until nothing is active; drops what the client got. */
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
	struct smtp_server_settings set;
	struct bufferevent *pair[2];
	struct smtp_session *s;
	struct fctx f;

	if (size < 1)
		return 0;
	if (base == NULL) {
		int fd = open("/dev/null", O_WRONLY);

		base = event_base_new();
		log_set_fd(fd);
		log_set_level(LOG_TRACE);	/* cover the logging code too */
	}
	memset(&set, 0, sizeof(set));
	memset(&f, 0, sizeof(f));
	set.hostname = "mx.example.org";
	set.port_kind = data[0] % 3;
	set.auth_enabled = (data[0] & 4) != 0;
	f.async = (data[0] & 8) != 0;
	if (data[0] & 16) {
		set.max_message_size = 200;
		set.max_recipients = 3;
		set.cmd_line_max = 100;
		set.data_line_max = 50;
		set.max_errors = 5;
	}
	data++;
	size--;
	f.answer_ev = event_new(base, -1, 0, answer_cb, &f);
	if (bufferevent_pair_new(base, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS, pair) < 0)
		abort();
	bufferevent_enable(pair[1], EV_READ | EV_WRITE);
	s = smtp_session_new(base, pair[0], &set, &hooks, &f, NULL, 0);
	bufferevent_write(pair[1], data, size);
	run(pair[1], &f);
	/* then the client hangs up */
	if (!f.gone) {
		bufferevent_flush(pair[1], EV_WRITE, BEV_FINISHED);
		run(pair[1], &f);
	}
	if (!f.gone) {
		if (smtp_session_reply_pending(s))
			event_del(f.answer_ev);
		smtp_session_destroy(s);
	}
	bufferevent_free(pair[1]);
	event_free(f.answer_ev);
	/* let libevent finish deferred frees */
	event_base_loop(base, EVLOOP_NONBLOCK);
	return 0;
}
