/* The DEFLATE bufferevent filter: framing, flushing, bounds, bad input. */
#include "lib/buf.h"
#include "lib/test.h"
#include "lib/xalloc.h"
#include "net/deflate.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct end {
	struct bufferevent *bev;
	struct buf got;
	bool error;
	bool drain;		/* take what arrives (else leave it queued) */
};

static void
end_read(struct bufferevent *bev, void *arg)
{
	struct end *e = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in);

	if (!e->drain)
		return;
	buf_append(&e->got, evbuffer_pullup(in, (ev_ssize_t)n), n);
	evbuffer_drain(in, n);
}

static void
end_event(struct bufferevent *bev, short what, void *arg)
{
	struct end *e = arg;

	if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF))
		e->error = true;
}

static void
loop(struct event_base *base, unsigned int ms)
{
	struct timeval tv = { 0, ms * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static void
end_init(struct end *e, struct bufferevent *bev)
{
	memset(e, 0, sizeof(*e));
	e->bev = bev;
	e->drain = true;
	buf_init(&e->got, BUF_UNLIMITED);
	bufferevent_setcb(bev, end_read, NULL, end_event, e);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* A raw-deflate compressor for the test's "client" side, by hand. */
static void
raw_deflate(const void *in, size_t len, int level, struct buf *out)
{
	z_stream z;
	unsigned char tmp[4096];

	memset(&z, 0, sizeof(z));
	deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
	z.next_in = (unsigned char *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	do {
		z.next_out = tmp;
		z.avail_out = sizeof(tmp);
		deflate(&z, Z_SYNC_FLUSH);
		buf_append(out, tmp, sizeof(tmp) - z.avail_out);
	} while (z.avail_out == 0);
	deflateEnd(&z);
}

static void
test_deflate_filter(void)
{
	struct event_base *base = event_base_new();
	struct bufferevent *pair[2];
	struct end srv, cli;
	struct buf big, comp;

	test_begin("net/deflate: both ways, every reply flushed, 1 MiB in order");
	bufferevent_pair_new(base, BEV_OPT_CLOSE_ON_FREE, pair);
	end_init(&srv, deflate_filter_new(pair[0], 0));
	end_init(&cli, deflate_filter_new(pair[1], 0));
	bufferevent_write(srv.bev, "* OK hello\r\n", 12);
	loop(base, 20);
	/* flushed: the client has the whole line without more being sent */
	test_assert_str(buf_cstr(&cli.got), "* OK hello\r\n");
	bufferevent_write(cli.bev, "a LOGIN x y\r\n", 13);
	loop(base, 20);
	test_assert_str(buf_cstr(&srv.got), "a LOGIN x y\r\n");
	buf_init(&big, BUF_UNLIMITED);
	for (int i = 0; big.len < 1024 * 1024; i++)
		buf_printf(&big, "* %d FETCH (UID %d FLAGS (\\Seen))\r\n", i, i + 1);
	buf_reset(&cli.got);
	bufferevent_write(srv.bev, big.data, big.len);
	for (int i = 0; i < 200 && cli.got.len < big.len; i++)
		loop(base, 5);
	test_assert_int(cli.got.len, big.len);
	test_assert(cli.got.len == big.len &&
	    memcmp(cli.got.data, big.data, big.len) == 0);
	test_assert(!srv.error && !cli.error);
	bufferevent_free(cli.bev);
	bufferevent_free(srv.bev);
	buf_free(&srv.got);
	buf_free(&cli.got);
	test_end();

	test_begin("net/deflate: input fed one byte at a time");
	bufferevent_pair_new(base, BEV_OPT_CLOSE_ON_FREE, pair);
	end_init(&srv, deflate_filter_new(pair[0], 0));
	end_init(&cli, pair[1]);
	buf_init(&comp, BUF_UNLIMITED);
	raw_deflate(big.data, 100000, 9, &comp);
	for (size_t i = 0; i < comp.len; i++) {
		bufferevent_write(cli.bev, comp.data + i, 1);
		if (i % 512 == 0)
			event_base_loop(base, EVLOOP_NONBLOCK);
	}
	for (int i = 0; i < 100 && srv.got.len < 100000; i++)
		loop(base, 5);
	test_assert_int(srv.got.len, 100000);
	test_assert(srv.got.len == 100000 &&
	    memcmp(srv.got.data, big.data, 100000) == 0);
	bufferevent_free(cli.bev);
	bufferevent_free(srv.bev);
	buf_free(&srv.got);
	buf_free(&cli.got);
	test_end();

	test_begin("net/deflate: a compressed bomb stays bounded, garbage is an error");
	bufferevent_pair_new(base, BEV_OPT_CLOSE_ON_FREE, pair);
	end_init(&srv, deflate_filter_new(pair[0], 0));
	srv.drain = false;	/* a reader that does not keep up */
	end_init(&cli, pair[1]);
	{
		char *zeros = xcalloc(1, 64 * 1024 * 1024);

		buf_reset(&comp);
		raw_deflate(zeros, 64 * 1024 * 1024, 9, &comp);
		free(zeros);
	}
	test_assert(comp.len < 200 * 1024);
	bufferevent_write(cli.bev, comp.data, comp.len);
	loop(base, 50);
	test_assert(evbuffer_get_length(bufferevent_get_input(srv.bev)) <=
	    DEFLATE_READ_HIGH + 16 * 1024);
	test_assert(evbuffer_get_length(bufferevent_get_input(srv.bev)) > 0);
	bufferevent_free(cli.bev);
	bufferevent_free(srv.bev);
	buf_free(&srv.got);
	buf_free(&cli.got);

	bufferevent_pair_new(base, BEV_OPT_CLOSE_ON_FREE, pair);
	end_init(&srv, deflate_filter_new(pair[0], 0));
	end_init(&cli, pair[1]);
	bufferevent_write(cli.bev, "\xff\xff\xff\xff garbage, not deflate", 24);
	loop(base, 20);
	test_assert(srv.error);
	test_assert(srv.got.len == 0);
	bufferevent_free(cli.bev);
	bufferevent_free(srv.bev);
	buf_free(&srv.got);
	buf_free(&cli.got);
	buf_free(&comp);
	buf_free(&big);
	event_base_free(base);
	test_end();
}
TEST(test_deflate_filter)
