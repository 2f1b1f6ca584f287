/* The IMAP session test harness (test_harness.h). */
#include "imap/test_harness.h"
#include "lib/test.h"
#include "lib/xalloc.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void
on_auth(struct imap_session *s, const char *user, const char *pass, void *ctx)
{
	struct harness *h = ctx;
	bool pw = strcmp(pass, "secret") == 0;

	h->auth_calls++;
	if (pw && strcmp(user, "ann@x.test") == 0 && h->other_root != NULL)
		imap_session_auth_reply(s, true, h->other_root);
	else
		imap_session_auth_reply(s, pw && strcmp(user, "joe@x.test") == 0,
		    h->root);
}

void
harness_on_disconnect(struct imap_session *s, void *ctx)
{
	struct harness *h = ctx;

	h->disconnected = true;
	h->s = NULL;
}

static uint64_t
on_quota(struct imap_session *s, void *ctx)
{
	struct harness *h = ctx;

	return h->quota;
}

static char *
on_account_maildir(struct imap_session *s, const char *user, void *ctx)
{
	struct harness *h = ctx;

	if (strcasecmp(user, "joe@x.test") == 0)
		return xstrdup(h->root);
	if (strcasecmp(user, "ann@x.test") == 0 && h->other_root != NULL)
		return xstrdup(h->other_root);
	return NULL;
}

const struct imap_hooks harness_default_hooks = {
	.on_auth = on_auth,
	.on_disconnect = harness_on_disconnect,
	.quota = on_quota,
	.account_maildir = on_account_maildir,
};

const struct imap_hooks *harness_hooks = &harness_default_hooks;

void
harness_client_read(struct bufferevent *bev, void *arg)
{
	struct harness *h = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in);
	char *tmp = xmalloc(n + 1);

	evbuffer_remove(in, tmp, n);
	buf_append(&h->in, tmp, n);
	free(tmp);
}

void
harness_start(struct harness *h, const char *root, uint64_t max_literal)
{
	harness_start_tls(h, root, max_literal, NULL);
}

void
harness_start_tls(struct harness *h, const char *root, uint64_t max_literal,
    struct ssl_ctx_st *ssl_ctx)
{
	struct imap_settings set = {
		.hostname = "mx.test",
		.secure = ssl_ctx == NULL,	/* port 143: plain until STARTTLS */
		.max_literal = max_literal,
		.idle_poll_ms = 100,
		.ssl_ctx = ssl_ctx,
		.urlauth = true,
	};

	harness_start_set(h, root, &set);
}

void
harness_start_set(struct harness *h, const char *root,
    const struct imap_settings *set)
{
	struct bufferevent *pair[2];
	struct imap_settings s = *set;

	if (s.hostname == NULL)
		s.hostname = "mx.test";
	memset(h, 0, sizeof(*h));
	h->root = root;
	buf_init(&h->in, BUF_UNLIMITED);
	h->base = event_base_new();
	bufferevent_pair_new(h->base, BEV_OPT_CLOSE_ON_FREE, pair);
	h->client = pair[1];
	bufferevent_setcb(h->client, harness_client_read, NULL, NULL, h);
	bufferevent_enable(h->client, EV_READ | EV_WRITE);
	h->s = imap_session_new(h->base, pair[0], &s, harness_hooks, h);
}

void
harness_stop(struct harness *h)
{
	if (h->s != NULL)
		imap_session_destroy(h->s);
	bufferevent_free(h->client);
	/* libevent finishes freeing bufferevents from the loop */
	event_base_loop(h->base, EVLOOP_NONBLOCK);
	event_base_free(h->base);
	buf_free(&h->in);
}

void
harness_spin(struct harness *h, unsigned int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	event_base_loopexit(h->base, &tv);
	event_base_dispatch(h->base);
}

/* Is there a line starting with want in the input? */
static bool
have_line(struct harness *h, const char *want)
{
	const char *p = buf_cstr(&h->in), *end = p + h->in.len;
	size_t wl = strlen(want);

	/* byte-wise: a literal8 may hold NULs */
	while (p != NULL && p < end) {
		if ((size_t)(end - p) >= wl && memcmp(p, want, wl) == 0)
			return true;
		p = memchr(p, '\n', (size_t)(end - p));
		if (p != NULL)
			p++;
	}
	return false;
}

char *
harness_wait_for_raw(struct harness *h, const char *until, size_t *len_r)
{
	char *all;

	for (int i = 0; i < 300 && !have_line(h, until); i++) {
		event_base_loop(h->base, EVLOOP_NONBLOCK);
		/* nothing yet: give timers (async hooks, IDLE) a moment */
		if (!have_line(h, until) && i > 20)
			harness_spin(h, 5);
	}
	all = xmalloc(h->in.len + 1);
	memcpy(all, buf_cstr(&h->in), h->in.len + 1);
	*len_r = h->in.len;
	buf_reset(&h->in);
	return all;
}

char *
harness_wait_for(struct harness *h, const char *until)
{
	size_t len;

	return harness_wait_for_raw(h, until, &len);
}

char *
harness_cmd(struct harness *h, const char *text, const char *until)
{
	bufferevent_write(h->client, text, strlen(text));
	return harness_wait_for(h, until);
}

void
harness_expect(struct harness *h, const char *text, const char *until,
    const char *const *wants)
{
	char *out = harness_cmd(h, text, until);

	for (; *wants != NULL; wants++) {
		if (strstr(out, *wants) == NULL) {
			printf("     sent %s     missing \"%s\" in:\n%s\n", text,
			    *wants, out);
			test_assert(strstr(out, *wants) != NULL);
		}
	}
	free(out);
}

void
harness_deliver(const char *root, const char *name, const char *content)
{
	char *p = xasprintf("%s/new/%s", root, name);
	FILE *f = fopen(p, "w");

	test_assert(f != NULL);
	if (f != NULL) {
		fputs(content, f);
		fclose(f);
	}
	free(p);
}
