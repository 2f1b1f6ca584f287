/*
 * The IMAP extensions of the mailbox side, driven through a whole session
 * (test_harness.h): LIST-EXTENDED, LIST-STATUS, STATUS=SIZE and the
 * RFC 9051 STATUS items, CREATE-SPECIAL-USE.
 */
#include "imap/test_harness.h"
#include "lib/test.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Logs joe in on a fresh harness. */
static void
login(struct harness *h, const char *root)
{
	harness_start(h, root, 100000);
	free(wait_for(h, "* OK"));
	EXPECT(h, "L LOGIN joe@x.test secret\r\n", "L ", "L OK");
}

/* out holds no line starting with line (whole line up to CRLF). */
static bool
no_line(const char *out, const char *line)
{
	size_t len = strlen(line);

	for (const char *p = out; (p = strstr(p, line)) != NULL; p++) {
		if ((p == out || p[-1] == '\n') && p[len] == '\r')
			return false;
	}
	return true;
}

static void
test_imap_list_extended(void)
{
	struct harness h;
	const char *root = test_tmpdir();
	char *out;

	test_begin("imap LIST-EXTENDED: selection and return options");
	login(&h, root);
	EXPECT(&h, "a CAPABILITY\r\n", "a ", " LIST-EXTENDED LIST-STATUS",
	    " STATUS=SIZE", " CREATE-SPECIAL-USE");
	free(cmd(&h, "b1 CREATE m.t1\r\nb0 CREATE m.t2\r\nb2 CREATE m.t2.t1\r\nb3 CREATE m.t3\r\n"
	    "b4 CREATE m.t6\r\nb5 SUBSCRIBE m.t1\r\nb6 SUBSCRIBE m.t2.t1\r\n"
	    "b7 SUBSCRIBE m.t6\r\nb8 DELETE m.t6\r\n", "b8 "));
	/* several patterns; no attributes unless asked for */
	out = cmd(&h, "c LIST \"\" (m.*2 m.t3)\r\n", "c ");
	test_assert(strstr(out, "* LIST () \".\" \"m.t2\"\r\n") != NULL);
	test_assert(strstr(out, "* LIST () \".\" \"m.t3\"\r\n") != NULL);
	test_assert(strstr(out, "\"m.t1\"") == NULL);
	test_assert(strstr(out, "c OK") != NULL);
	free(out);
	/* SUBSCRIBED: subscribed names, a deleted one \NonExistent */
	out = cmd(&h, "d LIST (SUBSCRIBED) \"\" m.*\r\n", "d ");
	test_assert(strstr(out, "* LIST (\\Subscribed) \".\" \"m.t1\"\r\n") != NULL);
	test_assert(strstr(out, "* LIST (\\Subscribed) \".\" \"m.t2.t1\"\r\n") != NULL);
	test_assert(strstr(out, "* LIST (\\NonExistent \\Subscribed) \".\" \"m.t6\"\r\n") != NULL);
	test_assert(strstr(out, "\"m.t3\"") == NULL);
	free(out);
	/* RECURSIVEMATCH: a parent with a subscribed child gets CHILDINFO */
	EXPECT(&h, "e LIST (SUBSCRIBED RECURSIVEMATCH) \"\" m.t2% RETURN (CHILDREN)\r\n",
	    "e ", "* LIST (\\HasChildren) \".\" \"m.t2\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n",
	    "e OK");
	/* ... but not when that child is listed by a pattern itself */
	out = cmd(&h, "f LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (m.t2 m.t2.t1)\r\n", "f ");
	test_assert(strstr(out, "\"m.t2\"") == NULL);
	test_assert(strstr(out, "* LIST (\\Subscribed) \".\" \"m.t2.t1\"\r\n") != NULL);
	free(out);
	/* RETURN (CHILDREN SUBSCRIBED) on a plain selection */
	out = cmd(&h, "g LIST \"\" m.% RETURN (CHILDREN SUBSCRIBED)\r\n", "g ");
	test_assert(strstr(out, "* LIST (\\HasNoChildren \\Subscribed) \".\" \"m.t1\"\r\n") != NULL);
	test_assert(strstr(out, "* LIST (\\HasChildren) \".\" \"m.t2\"\r\n") != NULL);
	test_assert(strstr(out, "* LIST (\\HasNoChildren) \".\" \"m.t3\"\r\n") != NULL);
	test_assert(no_line(out, "* LIST (\\NonExistent) \".\" \"m.t6\""));
	free(out);
	/* bad option combinations */
	EXPECT(&h, "h1 LIST (imaptest) \"\" \"\"\r\n", "h1 ", "h1 BAD");
	EXPECT(&h, "h2 LIST (RECURSIVEMATCH) \"\" \"\"\r\n", "h2 ", "h2 BAD");
	EXPECT(&h, "h3 LIST (RECURSIVEMATCH REMOTE) \"\" \"\"\r\n", "h3 ", "h3 BAD");
	EXPECT(&h, "h4 LIST \"\" \"\" RETURN (imaptest)\r\n", "h4 ", "h4 BAD");
	EXPECT(&h, "h5 LIST \"\" % RETURN (STATUS (BOGUS))\r\n", "h5 ", "h5 BAD");
	EXPECT(&h, "h6 LIST (REMOTE) \"\" %\r\n", "h6 ", "* LIST () \".\" \"INBOX\"", "h6 OK");
	EXPECT(&h, "h7 LIST () \"\" (\"\")\r\n", "h7 ", "* LIST (\\Noselect) \".\" \"\"", "h7 OK");
	/* SPECIAL-USE selection and return */
	out = cmd(&h, "i LIST (SPECIAL-USE) \"\" *\r\n", "i ");
	test_assert(strstr(out, "* LIST (\\Sent) \".\" \"Sent\"\r\n") != NULL);
	test_assert(strstr(out, "* LIST (\\Junk) \".\" \"Junk\"\r\n") != NULL);
	test_assert(strstr(out, "\"INBOX\"") == NULL && strstr(out, "\"m.t1\"") == NULL);
	free(out);
	EXPECT(&h, "j LIST \"\" Trash RETURN (SPECIAL-USE)\r\n", "j ",
	    "* LIST (\\Trash) \".\" \"Trash\"\r\n");
	/* a level with no folder of its own: listed for a trailing '%' */
	EXPECT(&h, "j2 CREATE v.w\r\n", "j2 ", "j2 OK");
	EXPECT(&h, "j3 LIST \"\" %\r\n", "j3 ", "* LIST (\\Noselect \\HasChildren) \".\" \"v\"\r\n");
	EXPECT(&h, "j4 LIST \"\" % RETURN (CHILDREN)\r\n", "j4 ",
	    "* LIST (\\NonExistent \\HasChildren) \".\" \"v\"\r\n");
	out = cmd(&h, "j5 LIST \"\" v*\r\n", "j5 ");
	test_assert(strstr(out, "\"v\"\r\n") == NULL && strstr(out, "\"v.w\"") != NULL);
	free(out);
	test_end();

	test_begin("imap LIST-STATUS and STATUS SIZE, DELETED, APPENDLIMIT");
	EXPECT(&h, "k APPEND m.t1 (\\Deleted) {12+}\r\nSubject: x\r\n\r\n", "k ", "k OK");
	EXPECT(&h, "k2 APPEND m.t1 {14+}\r\nSubject: yy\r\n\r\n", "k2 ", "k2 OK");
	EXPECT(&h, "l STATUS m.t1 (MESSAGES SIZE DELETED DELETED-STORAGE APPENDLIMIT)\r\n",
	    "l ", "* STATUS \"m.t1\" (MESSAGES 2 SIZE 26 DELETED 1 DELETED-STORAGE 1"
	    " APPENDLIMIT 100000)\r\n", "l OK");
	out = cmd(&h, "m LIST \"\" m.% RETURN (STATUS (MESSAGES UNSEEN))\r\n", "m ");
	test_assert(strstr(out, "* LIST () \".\" \"m.t1\"\r\n"
	    "* STATUS \"m.t1\" (MESSAGES 2 UNSEEN 2)\r\n") != NULL);
	test_assert(strstr(out, "* STATUS \"m.t3\" (MESSAGES 0 UNSEEN 0)\r\n") != NULL);
	test_assert(strstr(out, "m OK") != NULL);
	free(out);
	EXPECT(&h, "n STATUS INBOX (BOGUS)\r\n", "n ", "n BAD");
	test_end();

	test_begin("imap CREATE-SPECIAL-USE");
	EXPECT(&h, "o CREATE Old (USE (\\Archive))\r\n", "o ", "o OK");
	EXPECT(&h, "o2 LIST \"\" Old RETURN (SPECIAL-USE)\r\n", "o2 ",
	    "* LIST (\\Archive) \".\" \"Old\"\r\n");
	/* the attribute travels with a RENAME */
	EXPECT(&h, "o3 RENAME Old Older\r\n", "o3 ", "o3 OK");
	EXPECT(&h, "o4 LIST \"\" Older\r\n", "o4 ",
	    "* LIST (\\HasNoChildren \\Archive) \".\" \"Older\"\r\n");
	EXPECT(&h, "p CREATE Everything (USE (\\All))\r\n", "p ", "p NO [USEATTR]");
	EXPECT(&h, "p2 CREATE Bogus (USE (\\Bogus))\r\n", "p2 ", "p2 NO [USEATTR]");
	EXPECT(&h, "p3 LIST \"\" Everything\r\n", "p3 ", "p3 OK List completed.");
	out = cmd(&h, "p4 LIST \"\" Everything\r\n", "p4 ");
	test_assert(strstr(out, "\"Everything\"") == NULL);
	free(out);
	EXPECT(&h, "p5 CREATE X (FOO (\\Archive))\r\n", "p5 ", "p5 BAD");
	harness_stop(&h);
	test_end();
}
TEST(test_imap_list_extended)
