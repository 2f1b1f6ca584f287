/*
 * Whole-session fuzzer for the SMTP client: the input is everything the
 * "server" says (after one mode byte), written into a socketpair and
 * followed by EOF; the client runs a session with two messages of three
 * recipients each over it. Any reply sequence must end in callbacks, never
 * in a crash, a leak or a hang.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "lib/log.h"
#include "smtp/client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct state {
	const struct smtp_client_msg *msgs[2];
	unsigned int sent;
};

static void
done_cb(struct smtp_client *c, const struct smtp_client_result *res, void *ctx)
{
	struct state *st = ctx;

	if (res->rcpt_count != 3)
		abort();
	if (res->reply.code == 0 && strstr(res->reply.text, "connection lost") != NULL)
		return;	/* freed after this */
	if (st->sent < 2)
		smtp_client_send(c, st->msgs[st->sent++], done_cb, st);
	else
		smtp_client_quit(c);
}

static void
ready_cb(struct smtp_client *c, const struct smtp_client_result *res, void *ctx)
{
	struct state *st = ctx;

	if (res != NULL)
		return;
	smtp_client_send(c, st->msgs[st->sent++], done_cb, st);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct event_base *base;
	static const char *const rcpts[] = { "a@b.test", "b@b.test", "c@b.test" };
	struct smtp_client_msg m1 = {
		.mail_from = "x@a.test", .rcpts = rcpts, .rcpt_count = 3,
		.size = 40, .prefix = "X: 1\r\n", .data = ".a\r\nb\r\n",
		.data_len = 7, .fd = -1,
	};
	struct smtp_client_msg m2 = m1;
	struct smtp_client_params params = {
		.helo_name = "mx.a.test", .peer_name = "mx.b.test",
		.tls = SMTP_TLS_OPPORTUNISTIC, .timeout_secs = 5,
	};
	struct state st = { { &m1, &m2 }, 0 };
	struct bufferevent *bev;
	int sv[2];

	if (base == NULL) {
		base = event_base_new();
		log_set_level(LOG_ERROR);
	}
	/* Stay below the socket buffer: the write must not block. */
	if (size < 1 || size > 32768)
		return 0;
	m2.needs_smtputf8 = (data[0] & 1) != 0;
	m2.needs_8bitmime = (data[0] & 2) != 0;
	if (data[0] & 4) {
		params.auth_user = "u";
		params.auth_password = "p";
	}
	data++;
	size--;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	if (size > 0 && write(sv[1], data, size) != (ssize_t)size)
		abort();
	shutdown(sv[1], SHUT_WR);
	evutil_make_socket_nonblocking(sv[0]);
	bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
	(void)smtp_client_new(base, bev, &params, ready_cb, &st);
	event_base_dispatch(base);
	close(sv[1]);
	return 0;
}
