/* store/quota usage figures, and all-or-nothing multi-append. */
#include "store/quota.h"
#include "lib/buf.h"
#include "lib/test.h"
#include "lib/xalloc.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void
put(const char *dir, const char *name, const char *content)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	test_assert(f != NULL);
	if (f != NULL) {
		fputs(content, f);
		fclose(f);
	}
	free(path);
}

static unsigned int
files_in(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned int n = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void
test_store_usage(void)
{
	const char *root = test_tmpdir();
	char *acct_root = xasprintf("%s/a", root), *dir;
	struct store_account *acct;
	struct store_mailbox *box;
	struct store_usage u;
	char *err = NULL;

	test_begin("store: usage from the index plus undelivered-to-index files");
	/* no Maildir yet: nothing used */
	test_assert(store_maildir_usage(acct_root, &u, &err) == 0);
	test_assert(u.bytes == 0 && u.messages == 0);
	test_assert(store_account_open(acct_root, &acct, &err) == 0);
	/* never indexed: counted from the names (W=, else S=, else stat) */
	dir = xasprintf("%s/new", acct_root);
	put(dir, "1.M1P1.h,S=10,W=12", "0123456789");
	put(dir, "2.M1P1.h", "abc");
	free(dir);
	dir = xasprintf("%s/.Sent/cur", acct_root);
	put(dir, "3.M1P1.h,S=100:2,S", "");
	free(dir);
	test_assert(store_account_usage(acct, &u, &err) == 0);
	test_assert_int(u.bytes, 12 + 3 + 100);
	test_assert_int(u.messages, 3);
	/* once INBOX is indexed its rows count (RFC822.SIZE), and a new
	   delivery into new/ is added on top until a sync takes it in */
	test_assert(store_mailbox_open(acct, "INBOX", false, &box, &err) == 0);
	dir = xasprintf("%s/new", acct_root);
	put(dir, "4.M1P1.h,S=5,W=6", "a\nb\nc");
	free(dir);
	test_assert(store_account_usage(acct, &u, &err) == 0);
	test_assert_int(u.messages, 4);
	test_assert_int(u.bytes, 12 + 3 + 100 + 6);
	/* the smtp worker's view (opening the index itself) agrees */
	{
		struct store_usage u2;

		test_assert(store_maildir_usage(acct_root, &u2, &err) == 0);
		test_assert_int(u2.bytes, u.bytes);
		test_assert_int(u2.messages, u.messages);
	}
	test_assert(store_mailbox_sync(box, NULL, &err) == 0);
	test_assert(store_account_usage(acct, &u, &err) == 0);
	test_assert_int(u.messages, 4);
	store_mailbox_close(&box);
	store_account_close(&acct);
	free(acct_root);
	test_end();
}
TEST(test_store_usage)

static void
test_store_append_many(void)
{
	const char *root = test_tmpdir();
	struct store_account *acct;
	struct store_mailbox *box;
	struct store_append m[3];
	uint32_t uids[3];
	char *err = NULL, *tmp, *cur;
	struct buf kw;
	unsigned int count;

	test_begin("store: append of several messages, all or none");
	test_assert(store_account_open(root, &acct, &err) == 0);
	test_assert(store_mailbox_open(acct, "Drafts", false, &box, &err) == 0);
	memset(m, 0, sizeof(m));
	m[0].data = "Subject: 1\r\n\r\na\r\n";
	m[0].len = strlen(m[0].data);
	m[1].data = "Subject: 2\r\n\r\nb\r\n";
	m[1].len = strlen(m[1].data);
	m[1].flags = STORE_FLAG_SEEN;
	test_assert(store_mailbox_append_many(box, m, 2, uids, &err) == 0);
	test_assert(uids[0] == 1 && uids[1] == 2);
	/* the third has 27 keywords: more than a Maildir can name, so the
	   whole call fails and leaves nothing in cur/ or tmp/ */
	buf_init(&kw, BUF_UNLIMITED);
	for (int i = 0; i < 27; i++)
		buf_printf(&kw, "%skw%d", i > 0 ? " " : "", i);
	m[2] = m[0];
	m[2].keywords = buf_cstr(&kw);
	test_assert(store_mailbox_append_many(box, m, 3, uids, &err) < 0);
	test_assert(err != NULL);
	x_free(&err);
	buf_free(&kw);
	tmp = xasprintf("%s/.Drafts/tmp", root);
	cur = xasprintf("%s/.Drafts/cur", root);
	test_assert_int(files_in(tmp), 0);
	test_assert_int(files_in(cur), 2);
	test_assert(store_mailbox_sync(box, NULL, &err) == 0);
	(void)store_mailbox_msgs(box, &count);
	test_assert_int(count, 2);
	/* and the next append goes on with UID 3 */
	test_assert(store_mailbox_append_many(box, m, 1, uids, &err) == 0);
	test_assert_int(uids[0], 3);
	free(tmp);
	free(cur);
	store_mailbox_close(&box);
	store_account_close(&acct);
	test_end();
}
TEST(test_store_append_many)
