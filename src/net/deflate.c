/* Raw DEFLATE bufferevent filter (deflate.h). */
#include "net/deflate.h"

#include "lib/xalloc.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define CHUNK (16 * 1024)

struct deflate_ctx {
	z_stream in, out;
	bool in_ok, out_ok;
	bool in_ended;		/* the peer ended its stream: nothing more */
	bool failed;		/* corrupt input seen: error reported */
	struct bufferevent *bev;	/* the filter */
};

/*
 * libevent ignores what an input filter returns, so a corrupt stream is
 * reported as an error event by hand (deferred: the owner may free the
 * filter from it) and everything after it is thrown away.
 */
static enum bufferevent_filter_result
in_failed(struct deflate_ctx *c, struct evbuffer *src)
{
	evbuffer_drain(src, evbuffer_get_length(src));
	if (!c->failed && c->bev != NULL)
		bufferevent_trigger_event(c->bev, BEV_EVENT_ERROR | BEV_EVENT_READING,
		    BEV_TRIG_DEFER_CALLBACKS);
	c->failed = true;
	return BEV_ERROR;
}

static void
ctx_free(void *arg)
{
	struct deflate_ctx *c = arg;

	if (c->in_ok)
		inflateEnd(&c->in);
	if (c->out_ok)
		deflateEnd(&c->out);
	free(c);
}

/* Runs the compressor over what is in c->out, appending all it gives to dst. */
static int
deflate_into(struct deflate_ctx *c, struct evbuffer *dst, int flush)
{
	for (;;) {
		struct evbuffer_iovec v;
		int r;

		if (evbuffer_reserve_space(dst, CHUNK, &v, 1) < 1)
			return -1;
		c->out.next_out = v.iov_base;
		c->out.avail_out = (uInt)v.iov_len;
		r = deflate(&c->out, flush);
		if (r == Z_STREAM_ERROR)
			return -1;
		v.iov_len -= c->out.avail_out;
		evbuffer_commit_space(dst, &v, 1);
		/* done when the input is taken and the flush has fit */
		if (c->out.avail_out != 0 && c->out.avail_in == 0)
			return 0;
		if (r == Z_BUF_ERROR && c->out.avail_in == 0)
			return 0;
	}
}

static enum bufferevent_filter_result
out_filter(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
    enum bufferevent_flush_mode mode, void *arg)
{
	struct deflate_ctx *c = arg;
	size_t before = evbuffer_get_length(dst);

	while (evbuffer_get_length(src) > 0 &&
	    (limit < 0 || evbuffer_get_length(dst) - before < (size_t)limit)) {
		struct evbuffer_iovec v;
		size_t take;

		if (evbuffer_peek(src, CHUNK, NULL, &v, 1) < 1)
			break;
		take = v.iov_len < CHUNK ? v.iov_len : CHUNK;
		c->out.next_in = v.iov_base;
		c->out.avail_in = (uInt)take;
		if (deflate_into(c, dst, Z_NO_FLUSH) < 0)
			return BEV_ERROR;
		evbuffer_drain(src, take - c->out.avail_in);
		c->out.avail_in = 0;
	}
	/* all the plain data is in: push it out to the peer */
	if (evbuffer_get_length(src) == 0 || mode != BEV_NORMAL) {
		c->out.next_in = NULL;
		c->out.avail_in = 0;
		if (deflate_into(c, dst, mode == BEV_FINISHED ? Z_FINISH :
		    Z_SYNC_FLUSH) < 0)
			return BEV_ERROR;
	}
	return BEV_OK;
}

static enum bufferevent_filter_result
in_filter(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
    enum bufferevent_flush_mode mode, void *arg)
{
	struct deflate_ctx *c = arg;
	size_t produced = 0;

	if (c->failed || c->in_ended)
		return in_failed(c, src);
	if (evbuffer_get_length(src) == 0)
		return BEV_NEED_MORE;
	while (evbuffer_get_length(src) > 0 &&
	    (limit < 0 || produced < (size_t)limit)) {
		struct evbuffer_iovec in, out;
		size_t room = CHUNK;
		int r;

		if (evbuffer_peek(src, -1, NULL, &in, 1) < 1)
			break;
		if (limit >= 0 && (size_t)limit - produced < room)
			room = (size_t)limit - produced;
		if (evbuffer_reserve_space(dst, room, &out, 1) < 1)
			return in_failed(c, src);
		if (out.iov_len > room)
			out.iov_len = room;
		c->in.next_in = in.iov_base;
		c->in.avail_in = (uInt)in.iov_len;
		c->in.next_out = out.iov_base;
		c->in.avail_out = (uInt)out.iov_len;
		r = inflate(&c->in, Z_SYNC_FLUSH);
		out.iov_len -= c->in.avail_out;
		produced += out.iov_len;
		evbuffer_commit_space(dst, &out, 1);
		evbuffer_drain(src, in.iov_len - c->in.avail_in);
		if (r == Z_STREAM_END) {
			c->in_ended = true;
			break;
		}
		if (r == Z_BUF_ERROR)
			break;		/* needs more input */
		if (r != Z_OK)
			return in_failed(c, src);	/* corrupt: Z_DATA_ERROR & co */
	}
	return produced > 0 ? BEV_OK : BEV_NEED_MORE;
}

struct bufferevent *
deflate_filter_new(struct bufferevent *underlying, int options)
{
	struct deflate_ctx *c = xcalloc(1, sizeof(*c));
	struct bufferevent *bev;

	/* negative window bits: raw DEFLATE, no zlib header (RFC 4978 4) */
	if (deflateInit2(&c->out, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
	    -DEFLATE_WINDOW_BITS, DEFLATE_MEM_LEVEL, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(c);
		return NULL;
	}
	c->out_ok = true;
	if (inflateInit2(&c->in, -MAX_WBITS) != Z_OK) {
		ctx_free(c);
		return NULL;
	}
	c->in_ok = true;
	/*
	 * Deferred callbacks: libevent 2.1 calls our read callback before it
	 * arms the one that resumes inflating once the reader has drained
	 * below the high-water mark; a reader that drains at once would
	 * leave the rest stuck in the underlying buffer.
	 */
	bev = bufferevent_filter_new(underlying, in_filter, out_filter,
	    options | BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS, ctx_free, c);
	if (bev == NULL) {
		ctx_free(c);
		return NULL;
	}
	c->bev = bev;
	bufferevent_setwatermark(underlying, EV_WRITE, 0, DEFLATE_UNDER_HIGH);
	bufferevent_setwatermark(bev, EV_READ, 0, DEFLATE_READ_HIGH);
	return bev;
}
