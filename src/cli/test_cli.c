#include "cli/check.h"
#include "cli/dbfile.h"
#include "lib/file.h"
#include "lib/test.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

static void
test_check_address(void)
{
	static const struct { const char *in; bool ok; } cases[] = {
		{ "user@example.com", true },
		{ "first.last+tag@mail.example.co.uk", true },
		{ "o'brien@example.com", true },
		{ "j\xc3\xbcrgen@example.com", true },	/* UTF-8 local part */
		{ "user", false },
		{ "@example.com", false },
		{ "user@", false },
		{ "user@localhost", true },		/* the development domain */
		{ "user@intranet", false },		/* one label */
		{ ".user@example.com", false },
		{ "user.@example.com", false },
		{ "us..er@example.com", false },
		{ "us er@example.com", false },
		{ "us|er@example.com", false },		/* accounts separator */
		{ "us,er@example.com", false },		/* alias list separator */
		{ "us:er@example.com", false },		/* quotas separator */
		{ "../x@example.com", false },		/* escapes MAIL_DIR */
		{ "a/b@example.com", false },
		{ "user@-example.com", false },
		{ "user@exa_mple.com", false },
		{ "user@example.com.", false },
		{ "user@example..com", false },
		{ "\xff@example.com", false },		/* not UTF-8 */
	};
	const char *why;

	test_begin("check: addresses");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool ok = check_address(cases[i].in, &why) == 0;

		if (ok != cases[i].ok)
			printf("  address %s\n", cases[i].in);
		test_assert(ok == cases[i].ok);
	}
	char local[80], long_addr[300];
	memset(local, 'a', 65);
	local[65] = '\0';
	snprintf(long_addr, sizeof(long_addr), "%s@example.com", local);
	test_assert(check_address(long_addr, &why) < 0);
	local[64] = '\0';
	snprintf(long_addr, sizeof(long_addr), "%s@example.com", local);
	test_assert(check_address(long_addr, &why) == 0);
	test_assert(check_alias_key("@example.com", &why) == 0);
	test_assert(check_alias_key("@", &why) < 0);
	test_assert(check_alias_key("@intranet", &why) < 0);
	test_assert(check_alias_key("a@example.com", &why) == 0);
	test_end();
}
TEST(test_check_address)

static void
test_check_names(void)
{
	const char *why;

	test_begin("check: master names, selectors, ports, passwords");
	test_assert(check_master_name("admin", &why) == 0);
	test_assert(check_master_name("admin*x", &why) < 0);
	test_assert(check_master_name("a|b", &why) < 0);
	test_assert(check_master_name("a b", &why) < 0);
	test_assert(check_master_name("", &why) < 0);
	test_assert(check_selector("mail"));
	test_assert(check_selector("2024-dkim"));
	test_assert(!check_selector("mail.x"));
	test_assert(!check_selector("-x"));
	test_assert(!check_selector(""));
	unsigned int port;
	test_assert(check_port("587", &port) == 0 && port == 587);
	test_assert(check_port("0", &port) < 0);
	test_assert(check_port("65536", &port) < 0);
	test_assert(check_port("+25", &port) < 0);
	test_assert(check_port("25x", &port) < 0);
	test_assert(check_password("secret"));
	test_assert(!check_password(""));
	test_assert(!check_password("a\nb"));
	test_end();
}
TEST(test_check_names)

static void
test_check_quota(void)
{
	static const struct { const char *in; int r; unsigned long long bytes; } cases[] = {
		{ "0", 0, 0 },
		{ "5G", 0, 5ULL << 30 },
		{ "302M", 0, 302ULL << 20 },
		{ "10k", 0, 10240 },
		{ "1T", 0, 1ULL << 40 },
		{ "100B", 0, 100 },
		{ "0B", 0, 0 },
		{ "5X", -1, 0 },
		{ "5K", -1, 0 },	/* docker-mailserver's k is lower case */
		{ "5g", -1, 0 },
		{ "5", -1, 0 },
		{ "00", -1, 0 },
		{ "G", -1, 0 },
		{ "", -1, 0 },
		{ "-5G", -1, 0 },
		{ "5 G", -1, 0 },
		{ "99999999999999999999T", -1, 0 },
		{ "8388608T", -1, 0 },	/* 2^63 bytes: too large */
		{ "8388607T", 0, 8388607ULL << 40 },
	};
	unsigned long long b;

	test_begin("check: quotas as setquota's ^([0-9]+(B|k|M|G|T)|0)$");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = check_quota(cases[i].in, &b);

		if (r != cases[i].r)
			printf("  quota '%s'\n", cases[i].in);
		test_assert_int(r, cases[i].r);
		if (r == 0)
			test_assert(b == cases[i].bytes);
	}
	test_end();
}
TEST(test_check_quota)

static void
test_check_iec(void)
{
	/* The figures `numfmt --to=iec` prints for the same numbers. */
	static const struct { unsigned long long in; const char *out; } cases[] = {
		{ 0, "0" }, { 1, "1" }, { 1023, "1023" }, { 1024, "1.0K" },
		{ 1025, "1.1K" }, { 1536, "1.5K" }, { 10239, "10K" },
		{ 10240, "10K" }, { 10241, "11K" }, { 1048575, "1.0M" },
		{ 1048576, "1.0M" }, { 5368709120ULL, "5.0G" },
		{ 1073741823ULL, "1.0G" }, { 10485759, "10M" },
	};
	char buf[32];

	test_begin("check: sizes formatted as numfmt --to=iec");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		test_assert_str(check_format_iec(cases[i].in, buf, sizeof(buf)),
		    cases[i].out);
	test_end();
}
TEST(test_check_iec)

static char *
slurp(const char *path)
{
	char *data = NULL;

	if (file_read_all(path, 1 << 20, &data, NULL) < 0)
		return NULL;
	return data;
}

static void
spit(const char *path, const char *data)
{
	FILE *f = fopen(path, "w");

	fputs(data, f);
	fclose(f);
}

static void
test_dbfile_edit(void)
{
	const char *dir = test_tmpdir();
	char *path = xasprintf("%s/postfix-virtual.cf", dir), *err = NULL, *got;
	struct dbfile *f;
	char key[64];
	struct stat st;

	test_begin("dbfile: edits keep comments, CRs and unknown lines");
	spit(path, "# aliases\n\nA@Example.com x@example.com\r\n"
	    "  indented junk\nb@example.com y@example.com,z@example.com");
	chmod(path, 0604);
	test_assert(dbfile_open(path, DBFILE_DELIM_SPACE, 0644, &f, &err) == 0);
	test_assert(dbfile_exists(f));
	test_assert_int(dbfile_count(f), 5);
	test_assert(!dbfile_is_entry(f, 0) && !dbfile_is_entry(f, 1));
	test_assert(dbfile_key(f, 2, key, sizeof(key)));
	test_assert_str(key, "A@Example.com");
	test_assert_str(dbfile_value(f, 4), "y@example.com,z@example.com");
	test_assert_int(dbfile_find(f, "a@example.com", 0), 2);
	test_assert_int(dbfile_find(f, "b@example.com", 0), 4);
	test_assert_int(dbfile_find(f, "b@example.co", 0), -1);
	test_assert_int(dbfile_find(f, "indented", 0), -1);
	/* No change, no write. */
	test_assert(dbfile_commit(f, &err) == 0);
	dbfile_set(f, 4, "b@example.com y@example.com");
	dbfile_append(f, "c@example.com w@example.com");
	test_assert(dbfile_changed(f));
	test_assert(dbfile_commit(f, &err) == 0);
	dbfile_free(&f);
	got = slurp(path);
	test_assert_str(got, "# aliases\n\nA@Example.com x@example.com\r\n"
	    "  indented junk\nb@example.com y@example.com\n"
	    "c@example.com w@example.com\n");
	free(got);
	test_assert(stat(path, &st) == 0 && (st.st_mode & 07777) == 0604);

	/* Deleting the CRLF line; the rest stays byte for byte. */
	test_assert(dbfile_open(path, DBFILE_DELIM_SPACE, 0644, &f, &err) == 0);
	dbfile_delete(f, (size_t)dbfile_find(f, "a@example.com", 0));
	test_assert(dbfile_commit(f, &err) == 0);
	dbfile_free(&f);
	got = slurp(path);
	test_assert_str(got, "# aliases\n\n  indented junk\n"
	    "b@example.com y@example.com\nc@example.com w@example.com\n");
	free(got);
	free(path);
	test_end();
}
TEST(test_dbfile_edit)

static void
test_dbfile_delims(void)
{
	const char *dir = test_tmpdir();
	char *path = xasprintf("%s/new.cf", dir), *err = NULL, *got;
	struct dbfile *f;
	struct stat st;

	test_begin("dbfile: a missing file is empty and created with new_mode");
	test_assert(dbfile_open(path, DBFILE_DELIM_PIPE, 0640, &f, &err) == 0);
	test_assert(!dbfile_exists(f));
	dbfile_append(f, "u@example.com|{PLAIN}x|userdb_mail=y");
	test_assert(dbfile_commit(f, &err) == 0);
	test_assert_int(dbfile_find(f, "U@EXAMPLE.COM", 0), 0);
	test_assert_str(dbfile_value(f, 0), "{PLAIN}x|userdb_mail=y");
	dbfile_free(&f);
	test_assert(stat(path, &st) == 0 && (st.st_mode & 07777) == 0640);
	got = slurp(path);
	test_assert_str(got, "u@example.com|{PLAIN}x|userdb_mail=y\n");
	free(got);

	test_assert(dbfile_open(path, DBFILE_DELIM_COLON, 0644, &f, &err) == 0);
	test_assert_int(dbfile_find(f, "u@example.com", 0), -1);
	dbfile_free(&f);
	free(path);

	/* Unreadable path: one message naming the file. */
	path = xasprintf("%s/new.cf/below", dir);
	test_assert(dbfile_open(path, DBFILE_DELIM_COLON, 0644, &f, &err) < 0);
	test_assert(err != NULL && strstr(err, "new.cf/below") != NULL);
	free(err);
	free(path);
	test_end();
}
TEST(test_dbfile_delims)

static void
test_cli_lock(void)
{
	const char *dir = test_tmpdir();
	char *sub = xasprintf("%s/config", dir), *err = NULL;
	int fd, fd2;

	test_begin("cli_lock: exclusive, times out with a message");
	fd = cli_lock(sub, 100, &err);
	test_assert(fd >= 0);
	fd2 = cli_lock(sub, 50, &err);
	test_assert(fd2 < 0 && err != NULL && strstr(err, "lock") != NULL);
	free(err);
	err = NULL;
	close(fd);
	fd2 = cli_lock(sub, 50, &err);
	test_assert(fd2 >= 0);
	close(fd2);
	free(sub);
	test_end();
}
TEST(test_cli_lock)
