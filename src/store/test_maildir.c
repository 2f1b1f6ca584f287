#include "store/maildir.h"
#include "lib/file.h"
#include "lib/test.h"
#include "lib/xalloc.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

/* Names of the regular files in dir (NULL-terminated, malloc'd). */
static char **
list_dir(const char *dir, size_t *n_r)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = xcalloc(1, sizeof(char *));
	size_t n = 0;

	while (d != NULL && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		names = xreallocarray(names, n + 2, sizeof(char *));
		names[n++] = xstrdup(e->d_name);
		names[n] = NULL;
	}
	if (d != NULL)
		closedir(d);
	*n_r = n;
	return names;
}

static size_t
count_dir(const char *dir)
{
	size_t n;
	char **names = list_dir(dir, &n);

	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return n;
}

/* The one file in <maildir>/new: its path, content and inode. */
static char *
only_new_file(const char *maildir, char **content_r, ino_t *ino_r)
{
	char *dir = xasprintf("%s/new", maildir), *path = NULL;
	size_t n;
	char **names = list_dir(dir, &n);
	struct stat st;

	if (n == 1) {
		path = xasprintf("%s/%s", dir, names[0]);
		if (content_r != NULL &&
		    file_read_all(path, 1 << 26, content_r, NULL) < 0)
			*content_r = NULL;
		if (ino_r != NULL)
			*ino_r = stat(path, &st) == 0 ? st.st_ino : 0;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(dir);
	return path;
}

static void
test_maildir_three(void)
{
	const char *root = test_tmpdir();
	char *md[3], *content[3] = { 0 }, *path[3];
	const char *targets[4];
	ino_t ino[3] = { 0 };
	struct maildir_msg *m;
	char *err = NULL;
	const char *werr;
	static const char msg[] =
		"Return-Path: <a@x.org>\r\nSubject: hi\r\n\r\nline one\r\n.\r\n..dots\r\nend\r\n";
	static const char want[] =
		"Return-Path: <a@x.org>\nSubject: hi\n\nline one\n.\n..dots\nend\n";

	test_begin("maildir: one file, linked into three new/ dirs");
	for (int i = 0; i < 3; i++)
		md[i] = xasprintf("%s/mail/example.com/user%d/", root, i);
	m = maildir_msg_create(md[0], &err);
	test_assert(m != NULL);
	/* split between CR and LF, and in odd places */
	test_assert(maildir_msg_write(m, msg, 23, &werr) == 0);
	test_assert(maildir_msg_write(m, msg + 23, 1, &werr) == 0);
	test_assert(maildir_msg_write(m, msg + 24, sizeof(msg) - 1 - 24, &werr) == 0);
	test_assert_int(maildir_msg_size(m), sizeof(want) - 1);
	test_assert_int(maildir_msg_vsize(m), sizeof(msg) - 1);
	targets[0] = md[0];
	targets[1] = md[1];
	targets[2] = md[2];
	targets[3] = md[1];	/* a duplicate is delivered once */
	test_assert(maildir_msg_commit(m, targets, 4, &err) == 0);
	test_assert(maildir_msg_filename(m, 3) == NULL);
	test_assert(maildir_msg_filename(m, 0) != NULL);
	for (int i = 0; i < 3; i++) {
		char *dir = xasprintf("%snew", md[i]);

		path[i] = only_new_file(md[i], &content[i], &ino[i]);
		test_assert(path[i] != NULL);
		test_assert_str(content[i], want);
		free(dir);
		dir = xasprintf("%stmp", md[i]);
		test_assert_int(count_dir(dir), 0);
		free(dir);
		dir = xasprintf("%scur", md[i]);
		test_assert(access(dir, F_OK) == 0);
		free(dir);
	}
	test_assert(ino[0] != 0 && ino[0] == ino[1] && ino[1] == ino[2]);
	{
		int64_t s, w;
		const char *name = strrchr(path[1], '/') + 1;

		test_assert(maildir_filename_sizes(name, &s, &w) == 0);
		test_assert_int(s, sizeof(want) - 1);
		test_assert_int(w, sizeof(msg) - 1);
		test_assert(strchr(name, ':') == NULL);
		test_assert(strstr(name, ".M") != NULL && strstr(name, "P") != NULL);
	}
	test_assert(maildir_msg_write(m, "x", 1, &werr) == -1);
	maildir_msg_free(&m);
	test_assert(m == NULL);
	for (int i = 0; i < 3; i++) {
		free(md[i]);
		free(content[i]);
		free(path[i]);
	}
	test_end();
}
TEST(test_maildir_three)

static char *
deliver_bytewise(const char *md, const char *data, size_t len, bool bytewise,
    uint64_t *vsize_r)
{
	struct maildir_msg *m;
	const char *targets[1] = { md };
	char *err = NULL, *content = NULL, *path;
	const char *werr;

	m = maildir_msg_create(md, &err);
	if (m == NULL)
		return NULL;
	if (bytewise) {
		for (size_t i = 0; i < len; i++)
			maildir_msg_write(m, data + i, 1, &werr);
	} else {
		maildir_msg_write(m, data, len, &werr);
	}
	*vsize_r = maildir_msg_vsize(m);
	if (maildir_msg_commit(m, targets, 1, &err) < 0) {
		free(err);
		maildir_msg_free(&m);
		return NULL;
	}
	maildir_msg_free(&m);
	path = only_new_file(md, &content, NULL);
	if (path != NULL)
		unlink(path);
	free(path);
	return content;
}

static void
test_maildir_lf(void)
{
	const char *root = test_tmpdir();
	char *md = xasprintf("%s/md", root);
	size_t longlen = 200000;
	char *in = xmalloc(longlen + 100), *want = xmalloc(longlen + 100);
	size_t n = 0, wn = 0;
	uint64_t vsize;

	test_begin("maildir: CRLF to LF, exact, one byte at a time and whole");
	/* a 200 KB line, then a dot line, a lone CR, and a final CR */
	memset(in, 'a', longlen);
	memset(want, 'a', longlen);
	n = wn = longlen;
	memcpy(in + n, "\r\n.\r\n\r\nx\ry\r\n\r", 13);
	n += 13;
	memcpy(want + wn, "\n.\n\nx\ry\n\r", 9);
	wn += 9;
	for (int pass = 0; pass < 2; pass++) {
		char *got = deliver_bytewise(md, in, n, pass == 0, &vsize);

		test_assert(got != NULL);
		test_assert(got != NULL && strlen(got) == wn &&
		    memcmp(got, want, wn) == 0);
		test_assert_int(vsize, n);
		free(got);
	}
	test_end();

	test_begin("maildir: empty message and 8-bit bytes");
	{
		char *got = deliver_bytewise(md, "", 0, false, &vsize);

		test_assert(got != NULL && got[0] == '\0');
		free(got);
		got = deliver_bytewise(md, "\xff\x00\xc3\xa9\r\n", 6, true, &vsize);
		test_assert(got != NULL && memcmp(got, "\xff\x00\xc3\xa9\n", 5) == 0);
		test_assert_int(vsize, 6);
		free(got);
	}
	test_end();
	free(in);
	free(want);
	free(md);
}
TEST(test_maildir_lf)

static void
test_maildir_abort_and_failure(void)
{
	const char *root = test_tmpdir();
	char *a = xasprintf("%s/a", root), *b = xasprintf("%s/b", root);
	char *bad = xasprintf("%s/bad", root), *p;
	const char *targets[4];
	struct maildir_msg *m;
	char *err = NULL;
	const char *werr;
	int fd;

	test_begin("maildir: abort leaves nothing");
	m = maildir_msg_create(a, &err);
	test_assert(m != NULL);
	test_assert(maildir_msg_write(m, "x\r\n", 3, &werr) == 0);
	p = xasprintf("%s/tmp", a);
	test_assert_int(count_dir(p), 1);
	maildir_msg_abort(&m);
	test_assert(m == NULL);
	test_assert_int(count_dir(p), 0);
	free(p);
	p = xasprintf("%s/new", a);
	test_assert_int(count_dir(p), 0);
	free(p);
	test_end();

	test_begin("maildir: a failing target takes back every copy");
	/* bad/new is a file: link() fails with ENOTDIR even for root */
	test_assert(mkdir(bad, 0700) == 0);
	p = xasprintf("%s/new", bad);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	close(fd);
	free(p);
	for (int order = 0; order < 2; order++) {
		m = maildir_msg_create(a, &err);
		test_assert(m != NULL);
		test_assert(maildir_msg_write(m, "Subject: x\r\n\r\nbody\r\n", 20, &werr) == 0);
		targets[0] = a;
		targets[1] = order == 0 ? b : bad;
		targets[2] = order == 0 ? bad : b;
		err = NULL;
		test_assert(maildir_msg_commit(m, targets, 3, &err) == -1);
		test_assert(err != NULL && strstr(err, "bad/new") != NULL);
		free(err);
		maildir_msg_free(&m);
		p = xasprintf("%s/new", a);
		test_assert_int(count_dir(p), 0);
		free(p);
		p = xasprintf("%s/tmp", a);
		test_assert_int(count_dir(p), 0);
		free(p);
		p = xasprintf("%s/new", b);
		test_assert_int(count_dir(p), 0);
		free(p);
	}
	test_end();

	test_begin("maildir: create fails cleanly where the Maildir cannot be");
	p = xasprintf("%s/file", root);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	close(fd);
	free(p);
	p = xasprintf("%s/file/sub/", root);
	err = NULL;
	m = maildir_msg_create(p, &err);
	test_assert(m == NULL && err != NULL);
	free(err);
	free(p);
	test_end();
	free(a);
	free(b);
	free(bad);
}
TEST(test_maildir_abort_and_failure)

/* MARK_SPAM_AS_READ: delivered as seen, straight into cur/ with ":2,S". */
static void
test_maildir_cur_flags(void)
{
	const char *root = test_tmpdir();
	char *a = xasprintf("%s/fa", root), *b = xasprintf("%s/fb", root);
	char *bad = xasprintf("%s/fbad", root), *p, *content = NULL;
	const char *targets[3];
	struct maildir_msg *m;
	char *err = NULL;
	const char *werr;
	size_t n;
	char **names;
	int fd;

	test_begin("maildir: flags deliver into cur/ as :2,S");
	m = maildir_msg_create(a, &err);
	test_assert(m != NULL);
	test_assert(maildir_msg_write(m, "Subject: s\r\n\r\nspam\r\n", 20,
	    &werr) == 0);
	targets[0] = a;
	targets[1] = b;
	test_assert(maildir_msg_commit_flags(m, targets, 2, "S", &err) == 0);
	for (int i = 0; i < 2; i++) {
		const char *name = maildir_msg_filename(m, (size_t)i);
		size_t len = name != NULL ? strlen(name) : 0;

		test_assert(name != NULL && len > 4 &&
		    strcmp(name + len - 4, ":2,S") == 0);
		test_assert(name != NULL && strstr(name, ",S=17,W=20") != NULL);
		p = xasprintf("%s/new", targets[i]);
		test_assert_int(count_dir(p), 0);
		free(p);
		p = xasprintf("%s/cur/%s", targets[i], name != NULL ? name : "");
		test_assert(file_read_all(p, 4096, &content, NULL) == 0);
		test_assert(content != NULL &&
		    strcmp(content, "Subject: s\n\nspam\n") == 0);
		x_free(&content);
		free(p);
	}
	p = xasprintf("%s/tmp", a);
	test_assert_int(count_dir(p), 0);
	free(p);
	maildir_msg_free(&m);
	test_end();

	test_begin("maildir: flags: bad letters refused, NULL = new/");
	m = maildir_msg_create(a, &err);
	test_assert(m != NULL);
	test_assert(maildir_msg_write(m, "x\r\n", 3, &werr) == 0);
	err = NULL;
	test_assert(maildir_msg_commit_flags(m, targets, 1, "SF", &err) == -1);
	test_assert(err != NULL);
	x_free(&err);
	test_assert(maildir_msg_commit_flags(m, targets, 1, "/", &err) == -1);
	x_free(&err);
	test_assert(maildir_msg_commit_flags(m, targets, 1, NULL, &err) == 0);
	p = xasprintf("%s/new", a);
	test_assert_int(count_dir(p), 1);
	free(p);
	maildir_msg_free(&m);
	test_end();

	test_begin("maildir: flags: a failing target takes back the cur/ copies");
	test_assert(mkdir(bad, 0700) == 0);
	p = xasprintf("%s/cur", bad);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	close(fd);
	free(p);
	m = maildir_msg_create(b, &err);
	test_assert(m != NULL);
	test_assert(maildir_msg_write(m, "y\r\n", 3, &werr) == 0);
	targets[0] = b;
	targets[1] = bad;
	test_assert(maildir_msg_commit_flags(m, targets, 2, "S", &err) == -1);
	test_assert(err != NULL && strstr(err, "fbad/cur") != NULL);
	x_free(&err);
	maildir_msg_free(&m);
	p = xasprintf("%s/cur", b);
	names = list_dir(p, &n);
	test_assert_int(n, 1);		/* only the first message */
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(p);
	test_end();
	free(a);
	free(b);
	free(bad);
}
TEST(test_maildir_cur_flags)

static void
test_maildir_exdev(void)
{
	struct statfs a, b;
	const char *root = test_tmpdir();
	char *shm, *md1 = xasprintf("%s/one", root), *md2, *c1 = NULL, *c2 = NULL;
	char *p1, *p2, *err = NULL, *tmpl;
	const char *targets[2], *werr;
	struct maildir_msg *m;

	test_begin("maildir: another filesystem gets a copy (EXDEV)");
	if (statfs("/dev/shm", &a) < 0 || statfs(root, &b) < 0 ||
	    a.f_type == b.f_type) {
		printf("     skipped: no second filesystem at /dev/shm\n");
		free(md1);
		test_end();
		return;
	}
	tmpl = xstrdup("/dev/shm/tegami-test.XXXXXX");
	shm = mkdtemp(tmpl);
	test_assert(shm != NULL);
	md2 = xasprintf("%s/two", shm);
	m = maildir_msg_create(md1, &err);
	test_assert(maildir_msg_write(m, "a\r\nb\r\n", 6, &werr) == 0);
	targets[0] = md1;
	targets[1] = md2;
	test_assert(maildir_msg_commit(m, targets, 2, &err) == 0);
	if (err != NULL)
		printf("     %s\n", err);
	free(err);
	maildir_msg_free(&m);
	p1 = only_new_file(md1, &c1, NULL);
	p2 = only_new_file(md2, &c2, NULL);
	test_assert(c1 != NULL && c2 != NULL && strcmp(c1, "a\nb\n") == 0 &&
	    strcmp(c2, c1) == 0);
	{
		char *t = xasprintf("%s/tmp", md2);

		test_assert_int(count_dir(t), 0);
		free(t);
		t = xasprintf("%s/tmp", md1);
		test_assert_int(count_dir(t), 0);
		free(t);
	}
	free(c1);
	free(c2);
	free(p1);
	free(p2);
	{
		char *cmd = xasprintf("rm -rf '%s'", shm);

		test_assert(system(cmd) == 0);
		free(cmd);
	}
	free(md2);
	free(tmpl);
	free(md1);
	test_end();
}
TEST(test_maildir_exdev)

#define THREADS 6
#define PER_THREAD 40

struct thread_arg {
	const char *root;
	int id;
	int ok;
};

static void *
commit_thread(void *p)
{
	struct thread_arg *t = p;
	char *mds[2];
	const char *targets[2];
	char body[200];

	mds[0] = xasprintf("%s/shared", t->root);
	mds[1] = xasprintf("%s/own%d", t->root, t->id);
	targets[0] = mds[t->id % 2];
	targets[1] = mds[1 - t->id % 2];
	for (int i = 0; i < PER_THREAD; i++) {
		char *err = NULL;
		const char *werr;
		struct maildir_msg *m = maildir_msg_create(targets[0], &err);
		int n = snprintf(body, sizeof(body), "X-Thread: %d\r\nX-N: %d\r\n\r\nbody\r\n",
		    t->id, i);

		if (m == NULL) {
			free(err);
			continue;
		}
		if (maildir_msg_write(m, body, (size_t)n, &werr) == 0 &&
		    maildir_msg_commit(m, targets, 2, &err) == 0)
			t->ok++;
		free(err);
		maildir_msg_free(&m);
	}
	free(mds[0]);
	free(mds[1]);
	return NULL;
}

static void
test_maildir_threads(void)
{
	const char *root = test_tmpdir();
	struct thread_arg args[THREADS];
	pthread_t th[THREADS];
	char *p;
	uint64_t usage;

	test_begin("maildir: concurrent commits from several threads");
	for (int i = 0; i < THREADS; i++) {
		args[i].root = root;
		args[i].id = i;
		args[i].ok = 0;
		pthread_create(&th[i], NULL, commit_thread, &args[i]);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		test_assert_int(args[i].ok, PER_THREAD);
	}
	p = xasprintf("%s/shared/new", root);
	test_assert_int(count_dir(p), THREADS * PER_THREAD);
	free(p);
	p = xasprintf("%s/own3/new", root);
	test_assert_int(count_dir(p), PER_THREAD);
	free(p);
	p = xasprintf("%s/shared/tmp", root);
	test_assert_int(count_dir(p), 0);
	free(p);
	p = xasprintf("%s/own3", root);
	test_assert(maildir_usage(p, &usage) == 0);
	/* "X-Thread: 3\nX-N: <i>\n\nbody\n" */
	test_assert_int(usage, 10 * (12 + 7 + 1 + 5) + 30 * (12 + 8 + 1 + 5));
	free(p);
	test_end();
}
TEST(test_maildir_threads)

static void
test_maildir_usage_and_names(void)
{
	const char *root = test_tmpdir();
	char *md = xasprintf("%s/u", root), *p;
	uint64_t usage = 1;
	int64_t s, w;

	test_begin("maildir: usage sums S= over folders, stats the rest");
	test_assert(maildir_usage(md, &usage) == 0 && usage == 0);
	test_assert(maildir_create(md) == 0);
	p = xasprintf("%s/.Sent", md);
	test_assert(maildir_create(p) == 0);
	free(p);
	p = xasprintf("%s/cur/1.M1P1.h,S=100,W=110:2,S", md);
	test_assert(file_write_atomic(p, "x", 1, 0600) == 0);
	free(p);
	p = xasprintf("%s/new/2.M1P1.h,S=50,W=52", md);
	test_assert(file_write_atomic(p, "x", 1, 0600) == 0);
	free(p);
	p = xasprintf("%s/.Sent/cur/3.M1P1.h:2,S", md);
	test_assert(file_write_atomic(p, "12345", 5, 0600) == 0);
	free(p);
	p = xasprintf("%s/tmp/4.M1P1.h,S=1000", md);
	test_assert(file_write_atomic(p, "x", 1, 0600) == 0);
	free(p);
	test_assert(maildir_usage(md, &usage) == 0);
	test_assert_int(usage, 155);
	test_end();

	test_begin("maildir: file name sizes");
	test_assert(maildir_filename_sizes("1.M2P3.host,S=123,W=130:2,S", &s, &w) == 0);
	test_assert_int(s, 123);
	test_assert_int(w, 130);
	test_assert(maildir_filename_sizes("1.M2P3.host,W=130,S=9", &s, &w) == 0);
	test_assert_int(s, 9);
	test_assert(maildir_filename_sizes("1.M2P3.host", &s, &w) == -1);
	test_assert(maildir_filename_sizes("1.host,S=12x", &s, NULL) == -1);
	test_assert(maildir_filename_sizes("1.host:2,S=5", &s, NULL) == -1);
	test_assert(maildir_filename_sizes("1.host,S=,S=7", &s, NULL) == 0 && s == 7);
	test_assert(maildir_filename_sizes("1.host,S=99999999999999999999", &s, NULL) == -1);
	test_end();
	free(md);
}
TEST(test_maildir_usage_and_names)
