#include "daemon/delivery.h"
#include "filter/spammark.h"
#include "lib/file.h"
#include "lib/test.h"
#include "lib/xalloc.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The one file in <maildir>/new/, read whole (malloc'd), or NULL. */
static char *
read_new(const char *maildir, size_t *len_r)
{
	char *dir = xasprintf("%s/new", maildir), *path = NULL, *data = NULL;
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			path = xasprintf("%s/%s", dir, e->d_name);
	if (d != NULL)
		closedir(d);
	if (path != NULL && file_read_all(path, 1 << 26, &data, len_r) < 0)
		data = NULL;
	free(path);
	free(dir);
	return data;
}

static struct delivery *
begin(const char *maildir, const char *incoming)
{
	const char *addrs[] = { "alice@example.org" }, *mds[] = { maildir };
	struct delivery_params p;
	char *err = NULL;
	struct delivery *dl;

	memset(&p, 0, sizeof(p));
	p.hostname = "mx.example.org";
	p.incoming_dir = incoming;
	p.sender = "joe@example.net";
	p.local_addrs = addrs;
	p.local_maildirs = mds;
	p.nlocal = 1;
	p.helo = "client.example.net";
	p.client_ip = "192.0.2.1";
	p.protocol = "ESMTP";
	dl = delivery_begin(&p, &err);
	test_assert(dl != NULL);
	return dl;
}

static void
test_delivery_trace_fields_on_top(void)
{
	const char *msg =
	    "Authentication-Results: mx.example.org; dkim=pass header.d=bank\r\n"
	    "Authentication-Results: other.example; spf=pass\r\n"
	    "X-Spam: No\r\n"
	    "Subject: hi\r\n\r\nbody\r\n";
	char *md = xasprintf("%s/md", test_tmpdir()), *got;
	struct delivery *dl = begin(md, test_tmpdir());
	struct spammark_settings ms = { true, false, "[SPAM]" };
	struct spammark_verdict v = { true, -1, "test", NULL };
	struct delivery_extra x;
	const char *err;
	size_t len;

	test_begin("delivery trace fields on top, forged ones removed");
	/* one byte at a time: CRLF split across writes */
	for (size_t i = 0; i < strlen(msg); i++)
		test_assert(delivery_write(dl, (const unsigned char *)msg + i, 1) == 0);
	memset(&x, 0, sizeof(x));
	x.fields[0] = "Received-SPF: pass";
	x.fields[1] = "Authentication-Results: mx.example.org; spf=pass";
	x.mark = &ms;
	x.verdict = &v;
	test_assert(delivery_commit(dl, &x, &err) == 0);
	delivery_free(dl);
	got = read_new(md, &len);
	test_assert(got != NULL);
	if (got != NULL) {
		const char *spf = strstr(got, "Received-SPF: pass\n");
		const char *ours = strstr(got, "Authentication-Results: mx.example.org; spf=pass\n");

		test_assert(strncmp(got, "Return-Path: <joe@example.net>\n", 31) == 0);
		test_assert(spf != NULL && ours != NULL && spf < ours);
		test_assert(strstr(got, "header.d=bank") == NULL);
		test_assert(strstr(got, "Authentication-Results: other.example; spf=pass\n") != NULL);
		test_assert(strstr(got, "X-Spam: Yes\n") != NULL);
		test_assert(strstr(got, "X-Spam: No") == NULL);
		test_assert(strstr(got, "Subject: [SPAM] hi\n") != NULL);
		test_assert(len > 6 && strcmp(got + len - 6, "\nbody\n") == 0);
	}
	free(got);
	free(md);
	test_end();
}
TEST(test_delivery_trace_fields_on_top)

static void
test_delivery_big_body_and_junk(void)
{
	char *md = xasprintf("%s/md2", test_tmpdir()), *junk, *got;
	struct delivery *dl = begin(md, test_tmpdir());
	struct delivery_extra x;
	size_t n = DELIVERY_MEM_MAX * 3 + 17, len;
	char *body = xmalloc(n);
	const char *err, *view;
	size_t vlen;

	test_begin("delivery of a body past memory, into Junk");
	memcpy(body, "Subject: big\r\n\r\n", 16);
	for (size_t i = 16; i < n; i++)
		body[i] = (i % 80 == 78) ? '\r' : (i % 80 == 79) ? '\n' : 'a' + i % 26;
	for (size_t off = 0; off < n; off += 16384)
		test_assert(delivery_write(dl, (const unsigned char *)body + off,
		    n - off < 16384 ? n - off : 16384) == 0);
	test_assert(delivery_message(dl, &view, &vlen, &err) == 0);
	test_assert(vlen == n && memcmp(view, body, n) == 0);
	memset(&x, 0, sizeof(x));
	x.folder = "Junk";
	test_assert(delivery_commit(dl, &x, &err) == 0);
	delivery_free(dl);
	junk = xasprintf("%s/.Junk", md);
	got = read_new(junk, &len);
	test_assert(got != NULL && strstr(got, "Subject: big\n\n") != NULL);
	free(got);
	test_assert(read_new(md, &len) == NULL);
	free(junk);
	free(body);
	free(md);
	test_end();
}
TEST(test_delivery_big_body_and_junk)

static void
test_delivery_abort_leaves_nothing(void)
{
	char *md = xasprintf("%s/md3", test_tmpdir());
	struct delivery *dl = begin(md, test_tmpdir());
	size_t len;
	char *big = xcalloc(1, DELIVERY_MEM_MAX + 1);

	test_begin("delivery abort leaves nothing");
	test_assert(delivery_write(dl, (const unsigned char *)big,
	    DELIVERY_MEM_MAX + 1) == 0);
	delivery_abort(dl);
	test_assert(read_new(md, &len) == NULL);
	free(big);
	free(md);
	test_end();
}
TEST(test_delivery_abort_leaves_nothing)

static void
test_delivery_adds_missing_fields(void)
{
	static const struct {
		const char *msg;
		bool add;
		bool want_date, want_id;	/* added by us */
	} cases[] = {
		{ "Subject: a\r\n\r\nbody\r\n", true, true, true },
		{ "Subject: b\r\nDate: Fri, 27 Nov 2026 12:00:00 +0000\r\n\r\nbody\r\n",
		  true, false, true },
		{ "Subject: c\r\nmessage-id: <x@y>\r\n\r\nbody\r\n", true, true, false },
		{ "Subject: d\r\nDATE: x\r\nMessage-Id: <x@y>\r\n\r\nbody\r\n", true,
		  false, false },
		{ "\r\nno header at all\r\n", true, true, true },
		{ "Subject: header only\r\n", true, true, true },
		/* not a submission: left as it came */
		{ "Subject: e\r\n\r\nbody\r\n", false, false, false },
	};

	test_begin("delivery: a submission without Message-ID or Date gets them");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *md = xasprintf("%s/md-missing-%zu", test_tmpdir(), i), *got;
		const char *addrs[] = { "alice@example.org" }, *mds[] = { md };
		struct delivery_params p;
		struct delivery *dl;
		const char *err, *msg = cases[i].msg, *body;
		char *perr = NULL, *want_id;
		size_t len;

		memset(&p, 0, sizeof(p));
		p.hostname = "mx.example.org";
		p.incoming_dir = test_tmpdir();
		p.sender = "alice@example.org";
		p.local_addrs = addrs;
		p.local_maildirs = mds;
		p.nlocal = 1;
		p.client_ip = "192.0.2.1";
		p.protocol = "ESMTPSA";
		p.add_missing_fields = cases[i].add;
		dl = delivery_begin(&p, &perr);
		test_assert(dl != NULL);
		test_assert(delivery_write(dl, (const unsigned char *)msg,
		    strlen(msg)) == 0);
		test_assert(delivery_commit(dl, NULL, &err) == 0);
		want_id = xasprintf("\nMessage-ID: <%s@mx.example.org>\n",
		    delivery_id(dl));
		delivery_free(dl);
		got = read_new(md, &len);
		test_assert(got != NULL);
		if (got == NULL)
			continue;
		/* Ours are the last fields of the header, after the
		 * message's own. */
		body = strstr(got, "\n\n");
		test_assert(body != NULL);
		test_assert((strstr(got, want_id) != NULL) == cases[i].want_id);
		if (cases[i].want_id)
			test_assert(strstr(got, want_id) + strlen(want_id) - 1 == body);
		if (cases[i].want_date) {
			const char *d = strstr(got, "\nDate: ");
			int day, year, hh, mm, ss;
			char wd[4], mon[4], zone[6];

			test_assert(d != NULL && d < body);
			test_assert(d != NULL && sscanf(d, "\nDate: %3s, %d %3s %d "
			    "%d:%d:%d %5s", wd, &day, mon, &year, &hh, &mm, &ss,
			    zone) == 8);
			test_assert(d != NULL && (zone[0] == '+' || zone[0] == '-'));
		} else {
			/* the message's own Date (or none), not ours */
			const char *d = strstr(got, "\nDate: ");

			test_assert(d == NULL || strncmp(d, "\nDate: Fri, 27", 14) == 0);
		}
		free(want_id);
		free(got);
		free(md);
	}
	test_end();
}
TEST(test_delivery_adds_missing_fields)
