/* store/pop3box: listing order, sizes, UIDLs, new/ -> cur/, lock, expunge. */
#include "store/pop3box.h"
#include "lib/file.h"
#include "lib/test.h"
#include "lib/xalloc.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
put(const char *md, const char *sub, const char *name, const char *content)
{
	char *p = xasprintf("%s/%s/%s", md, sub, name);

	test_assert(file_write_atomic(p, content, strlen(content), 0600) == 0);
	free(p);
}

static bool
exists(const char *md, const char *sub, const char *name)
{
	char *p = xasprintf("%s/%s/%s", md, sub, name);
	bool r = access(p, F_OK) == 0;

	free(p);
	return r;
}

static void
test_pop3box_uidl(void)
{
	char out[POP3BOX_UIDL_MAX + 1];
	char longname[200];

	test_begin("pop3box uidl");
	pop3box_uidl("1700000000.M1P2Q3.host,S=10,W=12:2,S", out);
	test_assert_str(out, "1700000000.M1P2Q3.host");
	pop3box_uidl("1700000000.abc:2,", out);
	test_assert_str(out, "1700000000.abc");
	pop3box_uidl("with space.host", out);
	test_assert(out[0] == 'H' && strlen(out) == 33);
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	pop3box_uidl(longname, out);
	test_assert(out[0] == 'H' && strlen(out) == 33);
	{
		char again[POP3BOX_UIDL_MAX + 1];

		pop3box_uidl(longname, again);
		test_assert_str(out, again);	/* stable */
	}
	test_end();
}
TEST(test_pop3box_uidl);

static void
test_pop3box_open_list_expunge(void)
{
	char *md = xasprintf("%s/example.org/alice", test_tmpdir());
	struct pop3box *box = NULL, *box2 = NULL;
	char *err = NULL;
	bool del[3] = { false, true, false };
	unsigned int removed = 0;
	char b[64];
	ssize_t n;
	int fd;

	test_begin("pop3box open, list, lock, expunge");
	test_assert(pop3box_open(md, &box, &err) == 1);	/* created empty */
	test_assert_int(pop3box_count(box), 0);
	pop3box_close(&box);
	put(md, "new", "1700000300.M1P1Q1.h,S=4,W=6", "a\nb\n");
	put(md, "new", "1700000100.M1P1Q1.h", "x\ny\r\nz");
	put(md, "cur", "1700000200.M1P1Q1.h,S=2,W=3:2,S", "q\n");
	put(md, "new", ".hidden", "nope");
	test_assert(pop3box_open(md, &box, &err) == 1);
	test_assert_int(pop3box_count(box), 3);
	test_assert_str(pop3box_msg(box, 0)->uidl, "1700000100.M1P1Q1.h");
	test_assert_int(pop3box_msg(box, 0)->size, 7);	/* computed */
	test_assert_str(pop3box_msg(box, 1)->uidl, "1700000200.M1P1Q1.h");
	test_assert_int(pop3box_msg(box, 1)->size, 3);	/* W= */
	test_assert_str(pop3box_msg(box, 2)->uidl, "1700000300.M1P1Q1.h");
	test_assert(exists(md, "cur", "1700000100.M1P1Q1.h:2,"));
	test_assert(!exists(md, "new", "1700000100.M1P1Q1.h"));
	/* a second session is refused while the first holds the lock */
	test_assert(pop3box_open(md, &box2, &err) == 0);
	test_assert(box2 == NULL);
	/* a renamed file (flags changed by IMAP) is still found */
	{
		char *from = xasprintf("%s/cur/1700000300.M1P1Q1.h,S=4,W=6:2,", md);
		char *to = xasprintf("%s/cur/1700000300.M1P1Q1.h,S=4,W=6:2,S", md);

		test_assert(rename(from, to) == 0);
		free(from);
		free(to);
	}
	fd = pop3box_message_fd(box, 2);
	test_assert(fd >= 0);
	n = read(fd, b, sizeof(b));
	test_assert_int(n, 4);
	close(fd);
	del[2] = true;
	test_assert(pop3box_expunge(box, del, &removed, &err) == 0);
	test_assert_int(removed, 2);
	test_assert(!exists(md, "cur", "1700000200.M1P1Q1.h,S=2,W=3:2,S"));
	test_assert(!exists(md, "cur", "1700000300.M1P1Q1.h,S=4,W=6:2,S"));
	test_assert(exists(md, "cur", "1700000100.M1P1Q1.h:2,"));
	pop3box_close(&box);
	test_assert(pop3box_open(md, &box, &err) == 1);
	test_assert_int(pop3box_count(box), 1);
	pop3box_close(&box);
	free(md);
	test_end();
}
TEST(test_pop3box_open_list_expunge);
