/*
 * Fuzz a whole IMAP session: the input is what a client sends, in pieces,
 * over a bufferevent_pair, to an engine on a real Maildir (made once in a
 * temporary directory, with a few messages). Logins succeed for any user
 * whose password is "pw", so the fuzzer reaches the selected state. QUOTA
 * (a 100 kB limit) and COMPRESS are on; URLAUTH URLs may name the account
 * "other@x.test", which is the same Maildir.
 */
#include "imap/session.h"
#include "lib/log.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char root[64];
static bool gone;

static void
on_auth(struct imap_session *s, const char *user, const char *pass, void *ctx)
{
	imap_session_auth_reply(s, strcmp(pass, "pw") == 0, root);
}

static void
on_disconnect(struct imap_session *s, void *ctx)
{
	gone = true;
}

static uint64_t
on_quota(struct imap_session *s, void *ctx)
{
	return 100000;
}

static char *
on_account_maildir(struct imap_session *s, const char *user, void *ctx)
{
	return strcmp(user, "other@x.test") == 0 ? strdup(root) : NULL;
}

/* junk training's hook: every path handed over must be a string */
static void
on_filed(struct imap_session *s, const char *from, const char *to,
    const char *const *paths, unsigned int n, const char *data, size_t len,
    void *ctx)
{
	size_t sum = strlen(to) + (from != NULL ? strlen(from) : 0) + len;

	for (unsigned int i = 0; paths != NULL && i < n; i++)
		sum += strlen(paths[i]);
	if (sum == 0)
		__builtin_trap();
}

static const struct imap_hooks hooks = {
	.on_auth = on_auth,
	.on_disconnect = on_disconnect,
	.quota = on_quota,
	.account_maildir = on_account_maildir,
	.on_filed = on_filed,
};

static void
put(const char *sub, const char *name, const char *content)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", root, sub, name);
	f = fopen(path, "w");
	if (f != NULL) {
		fputs(content, f);
		fclose(f);
	}
}

static void
setup(void)
{
	char path[128];

	snprintf(root, sizeof(root), "/tmp/fuzz-imap.XXXXXX");
	if (mkdtemp(root) == NULL)
		abort();
	for (const char *const *d = (const char *const[]){ "cur", "new", "tmp", NULL }; *d; d++) {
		snprintf(path, sizeof(path), "%s/%s", root, *d);
		mkdir(path, 0700);
	}
	put("new", "1700000001.M1P1Q1.f", "Subject: a\n\nbody\n");
	put("new", "1700000002.M1P1Q1.f",
	    "Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\n"
	    "Content-Type: message/rfc822\n\nSubject: in\n\ntwo\n--b--\n");
	/* for SEARCH on decoded text, SORT and THREAD */
	put("new", "1700000003.M1P1Q1.f",
	    "From: =?iso-8859-1?q?J=F6rg?= <j@x>\nTo: g: a@b, c@d;\n"
	    "Subject: Re: [l] =?utf-8?b?Y2Fmw6k=?= (fwd)\nMessage-ID: <1@x>\n"
	    "References: <0@x> <1@x>\nDate: Tue, 1 Jul 2003 10:52:37 +0200\n"
	    "Content-Type: text/plain; charset=koi8-r\n"
	    "Content-Transfer-Encoding: quoted-printable\n\n=F0=D2=C9 =\nx\n");
	put("new", "1700000004.M1P1Q1.f",
	    "Subject: [fwd: a]\nIn-Reply-To: <1@x>\nMessage-ID: <2@x>\n"
	    "Content-Type: multipart/alternative; boundary=q\n\n--q\n"
	    "Content-Type: text/plain; charset=utf-8\n"
	    "Content-Transfer-Encoding: base64\n\nw6TDtsO8\n--q--\n");
	log_set_level(LOG_ERROR);
}

static void
drain(struct bufferevent *bev, void *arg)
{
	evbuffer_drain(bufferevent_get_input(bev), (size_t)-1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	struct event_base *base;
	struct bufferevent *pair[2];
	struct imap_session *s;
	struct imap_settings set = {
		.hostname = "fuzz", .secure = true, .max_line = 4096,
		.max_literal = 65536, .idle_poll_ms = 1, .quota = true,
		.compress = true, .urlauth = true,
	};
	size_t pos = 0;

	if (!ready) {
		setup();
		ready = true;
	}
	base = event_base_new();
	bufferevent_pair_new(base, BEV_OPT_CLOSE_ON_FREE, pair);
	bufferevent_setcb(pair[1], drain, NULL, NULL, NULL);
	bufferevent_enable(pair[1], EV_READ | EV_WRITE);
	gone = false;
	s = imap_session_new(base, pair[0], &set, &hooks, NULL);
	while (pos < size && !gone) {
		size_t n = size - pos < 64 ? size - pos : 64;

		bufferevent_write(pair[1], data + pos, n);
		pos += n;
		for (int i = 0; i < 4 && !gone; i++)
			event_base_loop(base, EVLOOP_NONBLOCK);
	}
	if (!gone)
		imap_session_destroy(s);
	bufferevent_free(pair[1]);
	/* libevent finishes freeing bufferevents from the loop */
	event_base_loop(base, EVLOOP_NONBLOCK);
	event_base_free(base);
	return 0;
}
