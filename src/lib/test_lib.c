#include "lib/buf.h"
#include "lib/config.h"
#include "lib/file.h"
#include "lib/str.h"
#include "lib/test.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

static void
test_buf_limits(void)
{
	struct buf b;

	test_begin("buf: append stops at max and leaves the buffer whole");
	buf_init(&b, 8);
	test_assert(buf_append(&b, "abcd", 4) == 0);
	test_assert(buf_append(&b, "efghi", 5) == -1);
	test_assert_str(buf_cstr(&b), "abcd");
	test_assert(buf_printf(&b, "%d", 1234) == 0);
	test_assert_str(buf_cstr(&b), "abcd1234");
	test_assert(buf_append_c(&b, 'x') == -1);
	buf_consume(&b, 2);
	test_assert_str(buf_cstr(&b), "cd1234");
	buf_free(&b);
	test_end();

	test_begin("buf: printf past the spare room, and failing whole; decimal");
	buf_init(&b, 300);
	test_assert(buf_printf(&b, "%s", "x") == 0);
	/* longer than the first try's room: formatted again */
	test_assert(buf_printf(&b, "%0200d", 7) == 0);
	test_assert(b.len == 201 && b.data[200] == '7' && b.data[201] == '\0');
	test_assert(buf_printf(&b, "%0200d", 7) == -1);
	test_assert(b.len == 201 && b.data[201] == '\0');
	buf_reset(&b);
	test_assert(buf_append_uint(&b, 0) == 0);
	test_assert(buf_append_c(&b, ' ') == 0);
	test_assert(buf_append_uint(&b, 18446744073709551615ULL) == 0);
	test_assert_str(buf_cstr(&b), "0 18446744073709551615");
	buf_free(&b);
	test_end();
}
TEST(test_buf_limits)

static void
test_bufreader(void)
{
	struct bufreader r;
	const char *line;
	size_t len;
	bool bare;
	uint16_t v16;
	uint8_t v8;

	test_begin("bufreader: lines and bounds");
	bufreader_init(&r, "ab\r\ncd\nef", 9);
	test_assert(bufreader_get_line(&r, &line, &len, &bare) == 1);
	test_assert(len == 2 && memcmp(line, "ab", 2) == 0 && !bare);
	test_assert(bufreader_get_line(&r, &line, &len, &bare) == 1);
	test_assert(len == 2 && memcmp(line, "cd", 2) == 0 && bare);
	test_assert(bufreader_get_line(&r, &line, &len, &bare) == 0);
	test_assert(bufreader_get_u16be(&r, &v16) == 0 && v16 == 0x6566);
	test_assert(bufreader_get_u8(&r, &v8) == -1 && r.error);
	test_end();
}
TEST(test_bufreader)

static void
test_str_split(void)
{
	size_t n;
	char **a = str_split(" a@x.org, b@y.org ,,c ", ",", &n);

	test_begin("str_split: trims and drops empty fields");
	test_assert_int(n, 3);
	test_assert_str(a[0], "a@x.org");
	test_assert_str(a[1], "b@y.org");
	test_assert_str(a[2], "c");
	test_assert(a[3] == NULL);
	str_array_free(a);
	test_end();
}
TEST(test_str_split)

static void
test_str_utf8(void)
{
	test_begin("str_is_utf8");
	test_assert(str_is_utf8("h\xc3\xa9llo", 6));
	test_assert(str_is_utf8("\xe2\x82\xac", 3));
	test_assert(!str_is_utf8("\xc3", 1));
	test_assert(!str_is_utf8("\xc0\xaf", 2));		/* overlong */
	test_assert(!str_is_utf8("\xed\xa0\x80", 3));		/* surrogate */
	test_assert(!str_is_utf8("\xf4\x90\x80\x80", 4));	/* > U+10FFFF */
	test_end();
}
TEST(test_str_utf8)

static const struct config_def defs[] = {
	{ "NAME", CONFIG_STR, "def", 0, 0, NULL, NULL },
	{ "SIZE", CONFIG_NUM, "100", 10, 1000, NULL, "bytes" },
	{ "ON", CONFIG_BOOL, "0", 0, 0, NULL, NULL },
	{ "MODE", CONFIG_ENUM, "", 0, 0, "|a|b", NULL },
	{ "OLD", CONFIG_UNSUPPORTED, NULL, 0, 0, NULL, "does X instead" },
	{ NULL, 0, NULL, 0, 0, NULL, NULL }
};

static void
count_ignored(const char *name, const char *source, const char *instead,
    void *ctx)
{
	(*(int *)ctx)++;
}

static void
test_config_load(void)
{
	const char *dir = test_tmpdir();
	char *file = xasprintf("%s/mailserver.env", dir);
	char *secret = xasprintf("%s/secret", dir);
	char *envsecret = xasprintf("NAME__FILE=%s", secret);
	char *env[] = { "SIZE=500", envsecret, NULL };
	char *err = NULL;
	struct config *cfg;
	int ignored = 0;
	FILE *fp;

	test_begin("config: file, environment, __FILE and defaults");
	fp = fopen(file, "w");
	fputs("# comment\n\nSIZE=20\nexport ON=\"1\"\nMODE=B\nOLD=1\nWHAT=2\n", fp);
	fclose(fp);
	fp = fopen(secret, "w");
	fputs("from-secret\n", fp);
	fclose(fp);
	cfg = config_load(defs, file, true, env, &err);
	test_assert(cfg != NULL);
	if (cfg != NULL) {
		test_assert_int(config_num(cfg, "SIZE"), 500);
		test_assert_str(config_source(cfg, "SIZE"), "environment");
		test_assert(config_bool(cfg, "ON"));
		test_assert_str(config_str(cfg, "MODE"), "b");
		test_assert_str(config_str(cfg, "NAME"), "from-secret");
		config_foreach_ignored(cfg, count_ignored, &ignored);
		test_assert_int(ignored, 2);
		config_free(&cfg);
	}
	test_end();

	test_begin("config: a bad value names the key, the source and the fix");
	fp = fopen(file, "w");
	fputs("SIZE=5X\n", fp);
	fclose(fp);
	cfg = config_load(defs, file, true, NULL, &err);
	test_assert(cfg == NULL);
	test_assert(err != NULL && strstr(err, "SIZE=5X") != NULL &&
	    strstr(err, "mailserver.env:1") != NULL &&
	    strstr(err, "from 10 to 1000") != NULL);
	free(err);
	err = NULL;
	fp = fopen(file, "w");
	fputs("SIZE=5000\n", fp);
	fclose(fp);
	cfg = config_load(defs, file, true, NULL, &err);
	test_assert(cfg == NULL && err != NULL);
	free(err);
	err = NULL;
	fp = fopen(file, "w");
	fputs("ON=maybe\n", fp);
	fclose(fp);
	cfg = config_load(defs, file, true, NULL, &err);
	test_assert(cfg == NULL && err != NULL && strstr(err, "ON=1") != NULL);
	free(err);
	err = NULL;
	cfg = config_load(defs, "/nonexistent/x.env", true, NULL, &err);
	test_assert(cfg == NULL && err != NULL);
	free(err);
	test_end();
	free(file);
	free(secret);
	free(envsecret);
}
TEST(test_config_load)

/* docker-mailserver's reading of values: empty = default, sizes, reports */
static const struct config_def dms_defs[] = {
	{ "UID", CONFIG_NUM, "5000", 1, 100000, NULL, NULL },
	{ "LIMIT", CONFIG_SIZE, "1024", 1024, 1ULL << 40, NULL, NULL },
	{ "IMAP", CONFIG_BOOL, "1", 0, 0, NULL, NULL },
	{ "POP3", CONFIG_BOOL, "0", 0, 0, NULL, NULL },
	{ "LEVEL", CONFIG_ENUM, "modern", 0, 0, "modern|intermediate", NULL },
	{ "PROV", CONFIG_ENUM, "FILE", 0, 0, "FILE", "no LDAP here" },
	{ "LISTEN", CONFIG_STR, "0.0.0.0:25", 0, 0, NULL, NULL },
	{ "FETCH", CONFIG_UNSUPPORTED, NULL, 0, 0, "0|no", "no fetchmail" },
	{ "POLL", CONFIG_UNSUPPORTED, "FETCH", 0, 0, NULL, "no fetchmail" },
	{ "LDAP_HOST", CONFIG_UNSUPPORTED, "PROV=LDAP", 0, 0, NULL, "no LDAP" },
	{ "BANTYPE", CONFIG_UNSUPPORTED, "IMAP", 0, 0, NULL, "no nftables" },
	{ NULL, 0, NULL, 0, 0, NULL, NULL }
};

struct ignored_names {
	char list[256];
};

static void
collect_ignored(const char *name, const char *source, const char *instead,
    void *ctx)
{
	struct ignored_names *n = ctx;

	if (n->list[0] != '\0')
		strncat(n->list, " ", sizeof(n->list) - strlen(n->list) - 1);
	strncat(n->list, name, sizeof(n->list) - strlen(n->list) - 1);
}

static struct config *
dms_load(const char *text, char **err_r)
{
	char *file = xasprintf("%s/dms.env", test_tmpdir());
	FILE *fp = fopen(file, "w");
	struct config *cfg;

	fputs(text, fp);
	fclose(fp);
	*err_r = NULL;
	cfg = config_load(dms_defs, file, true, NULL, err_r);
	free(file);
	return cfg;
}

static void
test_config_dms_values(void)
{
	struct ignored_names got;
	struct config *cfg;
	char *err;

	test_begin("config: an empty number, switch or choice is its default");
	cfg = dms_load("UID=\nLIMIT=\nIMAP=\nPOP3=\nLEVEL=\nPROV=\nLISTEN=\n", &err);
	test_assert(cfg != NULL);
	if (cfg != NULL) {
		test_assert_int(config_num(cfg, "UID"), 5000);
		test_assert_int(config_num(cfg, "LIMIT"), 1024);
		test_assert(config_bool(cfg, "IMAP"));
		test_assert(!config_bool(cfg, "POP3"));
		test_assert_str(config_str(cfg, "LEVEL"), "modern");
		test_assert_str(config_str(cfg, "PROV"), "FILE");
		/* an empty text value stays empty: LISTEN_*= turns a port off */
		test_assert_str(config_str(cfg, "LISTEN"), "");
		test_assert(config_is_set(cfg, "UID"));
		config_free(&cfg);
	}
	free(err);
	test_end();

	test_begin("config: sizes with k, M and G (ClamAV's 25M)");
	cfg = dms_load("LIMIT=25M\n", &err);
	test_assert(cfg != NULL && config_num(cfg, "LIMIT") == 25ULL << 20);
	config_free(&cfg);
	cfg = dms_load("LIMIT=2g\n", &err);
	test_assert(cfg != NULL && config_num(cfg, "LIMIT") == 2ULL << 30);
	config_free(&cfg);
	cfg = dms_load("LIMIT=4096\n", &err);
	test_assert(cfg != NULL && config_num(cfg, "LIMIT") == 4096);
	config_free(&cfg);
	static const char *const bad[] = {
		"LIMIT=25X\n", "LIMIT=M\n", "LIMIT=-1M\n", "LIMIT=512\n",
		"LIMIT=99999999999999999999G\n", "LIMIT=17179869184G\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg = dms_load(bad[i], &err);
		test_assert(cfg == NULL && err != NULL &&
		    strstr(err, "LIMIT=") != NULL);
		config_free(&cfg);
		free(err);
	}
	test_end();

	test_begin("config: a refused choice says why (the key's help)");
	cfg = dms_load("PROV=LDAP\n", &err);
	test_assert(cfg == NULL && err != NULL &&
	    strstr(err, "PROV=LDAP") != NULL && strstr(err, "no LDAP here") != NULL);
	free(err);
	test_end();

	test_begin("config: unsupported keys: quiet values and conditions");
	static const struct { const char *text, *want; } cases[] = {
		{ "FETCH=0\nPOLL=300\n", "" },
		{ "FETCH=NO\n", "" },
		{ "FETCH=1\nPOLL=300\n", "FETCH POLL" },
		{ "FETCH=\nPOLL=300\n", "" },
		{ "LDAP_HOST=ldap://x\n", "" },
		{ "PROV=FILE\nLDAP_HOST=ldap://x\n", "" },
		/* the condition's switch at its default (on) */
		{ "BANTYPE=drop\n", "BANTYPE" },
		{ "IMAP=0\nBANTYPE=drop\n", "" },
		{ "IMAP=\nBANTYPE=drop\nWHAT=1\n", "BANTYPE WHAT" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cfg = dms_load(cases[i].text, &err);
		test_assert(cfg != NULL);
		if (cfg == NULL) {
			free(err);
			continue;
		}
		memset(&got, 0, sizeof(got));
		config_foreach_ignored(cfg, collect_ignored, &got);
		test_assert_str(got.list, cases[i].want);
		/* an unsupported key's value is what was given, never its condition */
		test_assert_str(config_str(cfg, "LDAP_HOST"),
		    strstr(cases[i].text, "LDAP_HOST") != NULL ? "ldap://x" : "");
		config_free(&cfg);
	}
	test_end();
}
TEST(test_config_dms_values)

static void
test_file_atomic(void)
{
	const char *dir = test_tmpdir();
	char *path = xasprintf("%s/a/b/file", dir);
	char *sub = xasprintf("%s/a/b", dir);
	char *data = NULL;
	size_t len;

	test_begin("file: mkdir_p, atomic write, bounded read");
	test_assert(mkdir_p(sub, 0700) == 0);
	test_assert(mkdir_p(sub, 0700) == 0);
	test_assert(file_write_atomic(path, "hello\n", 6, 0600) == 0);
	test_assert(file_read_all(path, 100, &data, &len) == 0);
	test_assert(len == 6 && strcmp(data, "hello\n") == 0);
	free(data);
	test_assert(file_read_all(path, 3, &data, &len) == -1);
	test_end();
	free(path);
	free(sub);
}
TEST(test_file_atomic)

static bool
fd_noatime(int fd)
{
	return (test_fd_flags(fd) & O_NOATIME) != 0;
}

/* atime set back an hour before mtime: what relatime updates on a read. */
static void
age_atime(const char *path)
{
	struct timespec ts[2];

	clock_gettime(CLOCK_REALTIME, &ts[1]);
	ts[0] = ts[1];
	ts[0].tv_sec -= 3600;
	test_assert(utimensat(AT_FDCWD, path, ts, 0) == 0);
}

static time_t
atime_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_atim.tv_sec : -1;
}

static void
test_file_noatime(void)
{
	const char *dir = test_tmpdir();
	char *path = xasprintf("%s/msg", dir);
	char *data = NULL, buf[16];
	size_t len;
	time_t before;
	DIR *d;
	int fd, status;
	pid_t pid;

	test_begin("file: reads open O_NOATIME, not on another owner's file");
	test_assert(file_write_atomic(path, "hello\n", 6, 0600) == 0);
	fd = file_open_read(path);
	test_assert(fd >= 0 && fd_noatime(fd));
	close(fd);
	d = file_opendir(dir);
	test_assert(d != NULL && fd_noatime(dirfd(d)));
	closedir(d);
	fd = file_open_dir(dir);
	test_assert(fd >= 0 && fd_noatime(fd));
	close(fd);
	test_assert(file_open_dir(path) == -1 && errno == ENOTDIR);

	/* where the file system keeps atime (relatime), a plain read moves
	   it and ours does not */
	age_atime(path);
	before = atime_of(path);
	fd = open(path, O_RDONLY);
	test_assert(fd >= 0 && read(fd, buf, sizeof(buf)) == 6);
	close(fd);
	if (atime_of(path) == before)
		printf("     (%s keeps no atime: the flag is what counts)\n",
		    dir);
	age_atime(path);
	before = atime_of(path);
	test_assert(file_read_all(path, 100, &data, &len) == 0 && len == 6);
	free(data);
	test_assert(file_read_head(path, 3, &data, &len) == 0 && len == 3);
	free(data);
	test_assert_int(atime_of(path), before);

	/* a file of another owner: O_NOATIME is EPERM, the plain open works */
	pid = fork();
	test_assert(pid >= 0);
	if (pid == 0) {
		int ok;

		if (geteuid() == 0 && setresuid(65534, 65534, 65534) < 0)
			_exit(2);
		fd = open("/etc/passwd", O_RDONLY | O_NOATIME);
		if (fd >= 0 || errno != EPERM)
			_exit(3);	/* no other owner to try it on */
		fd = file_open_read("/etc/passwd");
		ok = fd >= 0 && !fd_noatime(fd) && read(fd, buf, 1) == 1;
		_exit(ok ? 0 : 1);
	}
	test_assert(waitpid(pid, &status, 0) == pid);
	test_assert(WIFEXITED(status));
	test_assert_int(WEXITSTATUS(status), 0);
	test_end();
	free(path);
}
TEST(test_file_noatime)
