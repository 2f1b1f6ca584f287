/*
 * The search program and SORT on a real Maildir, through a bare session
 * struct (no connection): key parsing and evaluation, sort keys,
 * sequence-set formatting of ESEARCH.
 */
#include "imap/esearch.h"
#include "imap/search.h"
#include "imap/session-private.h"
#include "imap/sort.h"
#include "lib/test.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const corpus[] = {
	/* 1 */
	"From: Zed <z@x.test>\nTo: m@x.test\nSubject: Re: banana\n"
	"Date: Wed, 3 Jan 2024 10:00:00 +0000\nMessage-ID: <1@t>\n\nplain body\n",
	/* 2: QP Latin-1 */
	"From: b@x.test\nTo: Anna <n@x.test>\nSubject: =?iso-8859-1?q?Caf=E9?=\n"
	"Date: Wed, 3 Jan 2024 09:00:00 -0200\nContent-Type: text/plain; charset=iso-8859-1\n"
	"Content-Transfer-Encoding: quoted-printable\nReferences: <1@t>\n\n"
	"Der B=E4cker =\nbackt.\n",
	/* 3: base64 UTF-8 in a multipart */
	"From: =?utf-8?q?=C3=84rger?= <a@x.test>\nTo: o@x.test\nSubject: [list] Cherry\n"
	"Date: Mon, 1 Jan 2024 10:00:00 +0000\n"
	"Content-Type: multipart/mixed; boundary=B\n\n--B\n"
	"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
	"0J/RgNC40LLQtdGCINC80LjRgA==\n--B\nContent-Type: application/octet-stream\n\n"
	"secretword\n--B--\n",
};

struct fixture {
	struct imap_session s;
	struct store_account *acct;
};

static void
fixture_open(struct fixture *f)
{
	const char *root = test_tmpdir();
	char *err = NULL;
	unsigned int n;

	memset(f, 0, sizeof(*f));
	test_assert(store_account_open(root, &f->acct, &err) == 0);
	test_assert(store_mailbox_open(f->acct, "INBOX", false, &f->s.box, &err) == 0);
	for (size_t i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
		uint32_t uid;

		test_assert(store_mailbox_append(f->s.box, corpus[i], strlen(corpus[i]),
		    i == 1 ? STORE_FLAG_SEEN : 0, i == 2 ? "$Work" : NULL,
		    1700000000 + (time_t)(3 - i) * 86400, &uid, &err) == 0);
	}
	test_assert(store_mailbox_sync(f->s.box, NULL, &err) == 0);
	/* the view is the store handle's: all of its messages */
	(void)store_mailbox_msgs(f->s.box, &n);
	f->s.nview = n;
}

static void
fixture_close(struct fixture *f)
{
	imap_search_reset(&f->s);
	store_mailbox_close(&f->s.box);
	store_account_close(&f->acct);
}

/* Parses "keys" as the arguments of a command line. */
static struct imap_parser *
parse_args(const char *keys, const struct imap_arg **args_r, unsigned int *n_r)
{
	struct imap_parser_limits lim = { 65536, 65536, 65536, 16, 1000 };
	struct imap_parser *p = imap_parser_create(&lim);
	char *line = xasprintf("t SEARCH %s\r\n", keys);
	size_t used;

	if (imap_parser_feed(p, line, strlen(line), &used) != IMAP_PARSE_DONE) {
		free(line);
		imap_parser_free(&p);
		return NULL;
	}
	free(line);
	*args_r = imap_parser_command(p)->args.list;
	*n_r = imap_parser_command(p)->args.count;
	return p;
}

struct started {
	bool called;
	unsigned int *idx, n;
};

static void
started_done(struct imap_session *s, void *ctx, unsigned int *idx,
    unsigned int n)
{
	struct started *st = ctx;

	st->called = true;
	st->idx = idx;
	st->n = n;
}

/*
 * "1 3" for a search of keys, or "BAD"/"BADCHARSET". Every search is run
 * both ways: on the loop (imap_search_run) and as a command runs it
 * (imap_search_start: the file keys on the pool, here inline), which
 * must agree.
 */
static char *
run(struct fixture *f, const char *charset, const char *keys)
{
	const struct imap_arg *a;
	struct imap_parser *p;
	struct imap_search *prog;
	unsigned int n, nidx, *idx;
	const char *err;
	bool badcs;
	struct buf out;
	struct started st = { 0 };

	if ((p = parse_args(keys, &a, &n)) == NULL)
		return xstrdup("PARSE");
	prog = imap_search_parse(a, n, charset, &err, &badcs);
	imap_parser_free(&p);
	if (prog == NULL)
		return xstrdup(badcs ? "BADCHARSET" : "BAD");
	idx = imap_search_run(&f->s, prog, &nidx);
	imap_search_start(&f->s, prog, started_done, &st);
	test_assert(st.called);
	test_assert(st.n == nidx);
	test_assert(st.n == 0 || memcmp(st.idx, idx, nidx * sizeof(*idx)) == 0);
	free(st.idx);
	buf_init(&out, BUF_UNLIMITED);
	buf_append_str(&out, "");
	for (unsigned int i = 0; i < nidx; i++)
		buf_printf(&out, i > 0 ? " %u" : "%u", idx[i] + 1);
	free(idx);
	imap_search_free(&prog);
	return buf_steal(&out);
}

static void
test_search_keys(void)
{
	static const struct {
		const char *charset, *keys, *want;
	} cases[] = {
		{ NULL, "ALL", "1 2 3" },
		{ NULL, "SEEN", "2" },
		{ NULL, "UNSEEN KEYWORD $Work", "3" },
		{ NULL, "NOT KEYWORD $work", "1 2 3" },	/* keywords are exact */
		{ NULL, "OR SEEN 1", "1 2" },
		{ NULL, "(OR 1 2) (OR 2 3)", "2" },
		{ NULL, "2:*", "2 3" },
		{ NULL, "*:2", "2 3" },
		{ NULL, "UID 1,3", "1 3" },
		{ NULL, "SUBJECT banana", "1" },
		{ NULL, "SUBJECT \"re: BANANA\"", "1" },
		{ NULL, "SUBJECT caf\xc3\xa9", "2" },	/* RFC 2047, Latin-1 */
		{ NULL, "SUBJECT CAF\xc3\x89", "2" },		/* folded */
		{ "ISO-8859-1", "SUBJECT caf\xe9", "2" },	/* converted */
		{ NULL, "FROM \xc3\xa4rger", "3" },
		{ NULL, "FROM <a@x.test>", "3" },
		{ NULL, "TO anna", "2" },
		{ NULL, "HEADER References \"\"", "2" },
		{ NULL, "HEADER Message-ID 1@T", "1" },
		{ NULL, "BODY \"b\xc3\xa4" "cker backt\"", "2" },	/* QP, soft break */
		{ NULL, "BODY \xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", "3" },
		{ NULL, "BODY 0J", "" },			/* not the base64 */
		{ NULL, "BODY secretword", "" },		/* not a text part */
		{ NULL, "BODY octet-stream", "3" },		/* part headers are */
		{ NULL, "TEXT \"subject: [list]\"", "3" },
		{ NULL, "TEXT plain", "1 2 3" },	/* text/plain in 2 and 3 */
		{ NULL, "SENTON 3-Jan-2024", "1 2" },
		{ NULL, "SENTBEFORE 2-Jan-2024", "3" },
		{ NULL, "SINCE 1-Jan-2000 BEFORE 1-Jan-2100", "1 2 3" },
		{ NULL, "LARGER 100000", "" },
		{ NULL, "SMALLER 100000", "1 2 3" },
		{ NULL, "OLDER 1", "1 2 3" },
		{ NULL, "YOUNGER 1", "" },
		{ NULL, "MODSEQ 1", "1 2 3" },
		{ NULL, "MODSEQ \"/flags/\\\\seen\" all 1", "1 2 3" },
		{ NULL, "$", "" },		/* nothing saved */
		/* file keys beside index keys (three-valued on the loop) */
		{ NULL, "OR SEEN BODY plain", "1 2 3" },
		{ NULL, "NOT BODY plain", "2" },
		{ NULL, "UNSEEN NOT SUBJECT banana", "3" },
		{ NULL, "NOT OR SEEN SUBJECT banana", "3" },
		{ NULL, "OR (SEEN SUBJECT caf\xc3\xa9) (KEYWORD $Work"
		    " SENTBEFORE 2-Jan-2024)", "2 3" },
		/* errors */
		{ NULL, "NOSUCHKEY", "BAD" },
		{ NULL, "SUBJECT", "BAD" },
		{ NULL, "OR SEEN", "BAD" },
		{ NULL, "()", "BAD" },
		{ NULL, "LARGER -1", "BAD" },
		{ NULL, "BEFORE 32-Jan-2024", "BAD" },
		{ NULL, "BEFORE 1-Jan-2024x", "BAD" },
		{ NULL, "OLDER 0", "BAD" },
		{ NULL, "UID 1:x", "BAD" },
		{ NULL, "MODSEQ \"/flags/x\" bogus 1", "BAD" },
		{ NULL, "NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT"
		    " NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT"
		    " NOT NOT ALL", "BAD" },
		{ "X-NO-SUCH", "ALL", "BADCHARSET" },
	};
	struct fixture f;

	test_begin("imap/search: keys parsed and run on decoded messages");
	fixture_open(&f);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = run(&f, cases[i].charset, cases[i].keys);

		if (strcmp(got, cases[i].want) != 0)
			test_note_str(cases[i].keys, cases[i].want);
		test_assert_str(got, cases[i].want);
		free(got);
	}
	/* "$" once saved */
	{
		struct imap_return r = { .given = true, .save = true };
		unsigned int n;
		const struct store_msg *m = store_mailbox_msgs(f.s.box, &n);
		uint32_t uids[] = { m[2].uid, m[0].uid };
		char *got;

		imap_searchres_save(&f.s, &r, uids, 2);
		got = run(&f, NULL, "$");
		test_assert_str(got, "1 3");
		free(got);
		got = run(&f, NULL, "NOT $");
		test_assert_str(got, "2");
		free(got);
		r.min = true;	/* MIN alone saves only the first */
		imap_searchres_save(&f.s, &r, uids, 2);
		got = run(&f, NULL, "$");
		test_assert_str(got, "3");
		free(got);
	}
	fixture_close(&f);
	test_end();
}
TEST(test_search_keys);

static void
test_search_stable(void)
{
	static const struct {
		const char *keys;
		bool stable;
	} cases[] = {
		{ "SEEN", true }, { "OR SUBJECT x BODY y", true }, { "UID 1:5", true },
		{ "MODSEQ 5", true }, { "SINCE 1-Jan-2020", true },
		{ "1:5", false }, { "UID 5:*", false }, { "$", false },
		{ "NOT RECENT", false }, { "NEW", false }, { "OLD", false },
		{ "YOUNGER 60", false }, { "(SEEN (OLDER 9))", false },
	};

	test_begin("imap/search: which programs only change with the message");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct imap_arg *a;
		unsigned int n;
		struct imap_parser *p = parse_args(cases[i].keys, &a, &n);
		struct imap_search *prog;
		const char *err;
		bool badcs;

		test_assert(p != NULL);
		prog = imap_search_parse(a, n, NULL, &err, &badcs);
		test_assert(prog != NULL);
		if (prog != NULL && imap_search_is_stable(prog) != cases[i].stable)
			test_note_str(cases[i].keys, cases[i].stable ? "stable" : "volatile");
		test_assert(prog != NULL && imap_search_is_stable(prog) == cases[i].stable);
		imap_search_free(&prog);
		imap_parser_free(&p);
	}
	test_end();
}
TEST(test_search_stable);

static void
test_sort_keys(void)
{
	static const struct {
		const char *crit, *want;
	} cases[] = {
		{ "(ARRIVAL)", "3 2 1" },
		{ "(REVERSE ARRIVAL)", "1 2 3" },
		{ "(SUBJECT)", "1 2 3" },	/* BANANA CAFÉ CHERRY */
		{ "(DATE)", "3 1 2" },
		{ "(REVERSE DATE)", "2 1 3" },
		{ "(FROM)", "3 2 1" },
		{ "(TO)", "1 2 3" },
		{ "(CC)", "1 2 3" },		/* all empty: by number */
		{ "(REVERSE CC)", "1 2 3" },	/* ties never reversed */
		{ "(SIZE)", "1 2 3" },
		{ "(DISPLAYFROM)", "3 2 1" },	/* A+U+0308 RGER (Ä), B@X.TEST, ZED */
		{ "(DISPLAYTO)", "2 1 3" },	/* ANNA M@X.TEST O@X.TEST */
		{ "(REVERSE SUBJECT ARRIVAL)", "3 2 1" },
		{ "(BOGUS)", NULL }, { "(REVERSE)", NULL }, { "()", NULL },
		{ "SUBJECT", NULL }, { "(REVERSE REVERSE DATE)", NULL },
	};
	struct fixture f;

	test_begin("imap/sort: criteria and per-message keys");
	fixture_open(&f);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct imap_sort_program sp;
		const struct imap_arg *a;
		struct imap_parser *p = parse_args(cases[i].crit, &a, &(unsigned int){ 0 });
		unsigned int idx[3] = { 0, 1, 2 };
		const char *err;
		char got[32];

		test_assert(p != NULL);
		if (cases[i].want == NULL) {
			test_assert(imap_sort_parse(&a[0], &sp, &err) < 0);
			imap_parser_free(&p);
			continue;
		}
		test_assert(imap_sort_parse(&a[0], &sp, &err) == 0);
		imap_parser_free(&p);
		imap_sort_indexes(&f.s, &sp, idx, 3);
		snprintf(got, sizeof(got), "%u %u %u", idx[0] + 1, idx[1] + 1, idx[2] + 1);
		if (strcmp(got, cases[i].want) != 0)
			test_note_str(cases[i].crit, cases[i].want);
		test_assert_str(got, cases[i].want);
	}
	{
		const struct imap_msg_keys *k = imap_msg_keys_get(&f.s, 1);

		test_assert_str(k->subject, "CAFE\xcc\x81");
		test_assert_str(k->dto, "ANNA");
		test_assert_int(k->date, 1704279600);	/* 11:00 UTC */
		test_assert_int(k->nrefs, 1);
		test_assert_str(k->refs[0], "<1@t>");
		k = imap_msg_keys_get(&f.s, 0);
		test_assert_str(k->message_id, "<1@t>");
		test_assert(k->subject_reply);
	}
	/* a later session reads the keys from the index, not the files */
	imap_search_reset(&f.s);
	{
		const struct store_msg *msgs;
		unsigned int n;

		msgs = store_mailbox_msgs(f.s.box, &n);
		for (unsigned int i = 0; i < n; i++) {
			char *path = store_msg_full_path(f.s.box, &msgs[i]);

			test_assert(unlink(path) == 0);
			free(path);
		}
		test_assert_str(imap_msg_keys_get(&f.s, 1)->subject, "CAFE\xcc\x81");
		test_assert_str(imap_msg_keys_get(&f.s, 2)->dfrom, "A\xcc\x88RGER");
		test_assert_str(imap_msg_keys_get(&f.s, 0)->message_id, "<1@t>");
	}
	fixture_close(&f);
	test_end();
}
TEST(test_sort_keys);

static void
test_esearch_numset(void)
{
	static const struct {
		uint32_t nums[8];
		unsigned int n;
		const char *want;
	} cases[] = {
		{ { 1, 2, 3, 4, 5 }, 5, "1:5" },
		{ { 1, 2, 3, 5, 6 }, 5, "1:3,5:6" },
		{ { 5, 3, 4, 2, 1 }, 5, "5,3:4,2,1" },
		{ { 7 }, 1, "7" },
		{ { 0 }, 0, "" },
		{ { 4, 4 }, 2, "4,4" },
	};
	struct buf b;

	test_begin("imap/esearch: result order kept, ascending runs as ranges");
	buf_init(&b, BUF_UNLIMITED);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&b);
		buf_append_str(&b, "");
		imap_append_numset(&b, cases[i].nums, cases[i].n);
		test_assert_str(buf_cstr(&b), cases[i].want);
	}
	buf_free(&b);
	test_end();
}
TEST(test_esearch_numset);

static void
test_return_options(void)
{
	static const struct {
		const char *in;
		int ok;
		bool min, max, all, count, save, update, partial;
		uint32_t plo, phi;
	} cases[] = {
		{ "RETURN () ALL", 0, false, false, true, false, false, false, false, 0, 0 },
		{ "RETURN (MIN MAX) ALL", 0, true, true, false, false, false, false, false, 0, 0 },
		{ "RETURN (SAVE) ALL", 0, false, false, false, false, true, false, false, 0, 0 },
		{ "RETURN (UPDATE COUNT) ALL", 0, false, false, false, true, false, true, false, 0, 0 },
		{ "RETURN (PARTIAL 5:3) ALL", 0, false, false, false, false, false, false, true, 3, 5 },
		{ "RETURN (CONTEXT ALL) ALL", 0, false, false, true, false, false, false, false, 0, 0 },
		{ "RETURN (PARTIAL 1) ALL", -1, false, false, false, false, false, false, false, 0, 0 },
		{ "RETURN (PARTIAL 1:*) ALL", -1, false, false, false, false, false, false, false, 0, 0 },
		{ "RETURN (PARTIAL 0:3) ALL", -1, false, false, false, false, false, false, false, 0, 0 },
		{ "RETURN (PARTIAL 1:2 ALL) ALL", -1, false, false, false, false, false, false, false, 0, 0 },
		{ "RETURN (BOGUS) ALL", -1, false, false, false, false, false, false, false, 0, 0 },
		{ "RETURN ALL", -1, false, false, false, false, false, false, false, 0, 0 },
		{ "RETURN", -1, false, false, false, false, false, false, false, 0, 0 },
	};

	test_begin("imap/esearch: RETURN options");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct imap_arg *a;
		unsigned int n, at = 0;
		struct imap_parser *p = parse_args(cases[i].in, &a, &n);
		struct imap_return r;
		const char *err;

		test_assert(p != NULL);
		test_assert_int(imap_return_parse(a, n, &at, &r, &err), cases[i].ok);
		if (cases[i].ok == 0) {
			test_assert(r.given && at == 2);
			test_assert(r.min == cases[i].min && r.max == cases[i].max);
			test_assert(r.all == cases[i].all && r.count == cases[i].count);
			test_assert(r.save == cases[i].save && r.update == cases[i].update);
			test_assert(r.partial == cases[i].partial);
			test_assert(r.plo == cases[i].plo && r.phi == cases[i].phi);
		}
		imap_parser_free(&p);
	}
	test_end();
}
TEST(test_return_options);
