#include "filter/spammark.h"
#include "lib/test.h"

#include <string.h>

static void
test_spammark(void)
{
	static const char msg[] =
	    "From: a@b.example\r\n"
	    "X-Spam: No\r\n"
	    "Subject: cheap\r\n"
	    " pills\r\n"
	    "x-spam-flag : NO\r\n"
	    "X-Spammy: kept\r\n"
	    "\r\n"
	    "Subject: in the body\r\n";
	struct spammark_settings set = { true, false, "***SPAM***" };
	struct spammark_verdict v = { true, 0.987, "bayes", NULL };
	struct spammark_delivery d;
	struct buf out;

	test_begin("spammark: X-Spam fields, subject prefix, Junk and Seen");
	buf_init(&out, 1 << 16);
	test_assert(spammark_rewrite(msg, strlen(msg), &set, &v, &out) == 0);
	test_assert_str(buf_cstr(&out),
	    "X-Spam: Yes\r\n"
	    "X-Spam-Score: 0.99 bayes\r\n"
	    "From: a@b.example\r\n"
	    "Subject: ***SPAM*** cheap\r\n"
	    " pills\r\n"
	    "X-Spammy: kept\r\n"
	    "\r\n"
	    "Subject: in the body\r\n");
	spammark_delivery(&set, &v, &d);
	test_assert(d.folder != NULL && strcmp(d.folder, "Junk") == 0 && !d.seen);

	/* ham: forged fields still go, no prefix, normal folder */
	buf_reset(&out);
	v.spam = false;
	v.score = -1;
	test_assert(spammark_rewrite(msg, strlen(msg), &set, &v, &out) == 0);
	test_assert(strncmp(buf_cstr(&out), "X-Spam: No\r\nFrom:", 17) == 0);
	test_assert(strstr(buf_cstr(&out), "x-spam-flag") == NULL);
	test_assert(strstr(buf_cstr(&out), "Subject: cheap") != NULL);
	spammark_delivery(&set, &v, &d);
	test_assert(d.folder == NULL && !d.seen);

	/* LF lines, no Subject, mark read, not moved */
	buf_reset(&out);
	set.move_to_junk = false;
	set.mark_read = true;
	v.spam = true;
	test_assert(spammark_rewrite("From: a@b\n\nbody\n", 16, &set, &v, &out) == 0);
	test_assert_str(buf_cstr(&out),
	    "X-Spam: Yes\nFrom: a@b\nSubject: ***SPAM***\n\nbody\n");
	spammark_delivery(&set, &v, &d);
	test_assert(d.folder == NULL && d.seen);
	buf_free(&out);

	buf_init(&out, 8);
	test_assert(spammark_rewrite(msg, strlen(msg), &set, &v, &out) == -1);
	buf_free(&out);
	test_end();
}
TEST(test_spammark)

/* rspamd's "rewrite subject": its whole subject, in place of the prefix */
static void
test_spammark_subject(void)
{
	static const char msg[] =
	    "From: a@b.example\n"
	    "Subject: cheap\n"
	    " pills\n"
	    "Subject: second\n"
	    "\n"
	    "body\n";
	struct spammark_settings set = { true, false, "***SPAM***" };
	struct spammark_verdict v = { true, 12.5, "rspamd",
	    "[rspamd] cheap pills\r\nBcc: x@evil.example" };
	struct buf out;

	test_begin("spammark: a scanner's subject replaces the field, one line");
	buf_init(&out, 1 << 16);
	test_assert(spammark_rewrite(msg, strlen(msg), &set, &v, &out) == 0);
	test_assert_str(buf_cstr(&out),
	    "X-Spam: Yes\n"
	    "X-Spam-Score: 12.50 rspamd\n"
	    "From: a@b.example\n"
	    "Subject: [rspamd] cheap pills  Bcc: x@evil.example\n"
	    "\n"
	    "body\n");
	/* no Subject at all: one is added; not spam: untouched */
	buf_reset(&out);
	test_assert(spammark_rewrite("From: a@b\n\nx\n", 13, &set, &v, &out) == 0);
	test_assert(strstr(buf_cstr(&out), "Subject: [rspamd] cheap pills") != NULL);
	buf_reset(&out);
	v.spam = false;
	test_assert(spammark_rewrite(msg, strlen(msg), &set, &v, &out) == 0);
	test_assert(strstr(buf_cstr(&out), "Subject: cheap\n pills\n") != NULL);
	test_assert(strstr(buf_cstr(&out), "rspamd]") == NULL);
	buf_free(&out);
	test_end();
}
TEST(test_spammark_subject)
