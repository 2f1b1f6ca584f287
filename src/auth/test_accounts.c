#include "auth/accounts.h"
#include "lib/file.h"
#include "lib/log.h"
#include "lib/test.h"
#include "lib/xalloc.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

static void
write_file(const char *dir, const char *name, const char *content)
{
	char *path = xasprintf("%s/%s", dir, name);

	if (file_write_atomic(path, content, strlen(content), 0600) < 0)
		abort();
	free(path);
}

static const char accounts_cf[] =
	"# docker-mailserver accounts\n"
	"a@example.com|{PLAIN}pa\n"
	"B@Example.COM|{PLAIN}pb\r\n"
	"c@example.com|{PLAIN}pc|userdb_mail=maildir:~/x\n"
	"   \n"
	"  # indented comment\n"
	"d@other.org|{PLAIN}pd\n"
	"catchall@example.com|{PLAIN}pcatch\n"
	"bad line without bar\n"
	"../x@example.com|{PLAIN}x\n"
	"e@example.com|\n"
	"a@example.com|{PLAIN}duplicate\n"
	"weird@example.com|{NOSUCH}abc\n";

static const char virtual_cf[] =
	"alias1@example.com a@example.com\n"
	"multi@example.com a@example.com, b@example.com,c@example.com\n"
	"nested@example.com multi@example.com,d@other.org\n"
	"loop1@example.com loop2@example.com\n"
	"loop2@example.com loop1@example.com\n"
	"c@example.com c@example.com,friend@gmail.com\n"
	"remote@example.com Someone@Gmail.com\n"
	"@example.com catchall@example.com\n"
	"ghost@other.org nobody@other.org\n"
	"half@other.org nobody@other.org,d@other.org\n"
	"postmaster a@example.com\n"
	"a+special@example.com b@example.com\n"
	"@alias.net @example.com\n"
	"onlykey@example.com\n"
	"bad\"key@example.com a@example.com\n"
	"chain0@example.com chain1@example.com\n"
	"chain1@example.com chain2@example.com\n"
	"chain2@example.com chain3@example.com\n"
	"chain3@example.com chain4@example.com\n"
	"chain4@example.com chain5@example.com\n"
	"chain5@example.com chain6@example.com\n"
	"chain6@example.com chain7@example.com\n"
	"chain7@example.com chain8@example.com\n"
	"chain8@example.com chain9@example.com\n"
	"chain9@example.com chain10@example.com\n"
	"chain10@example.com chain11@example.com\n"
	"chain11@example.com chain12@example.com\n"
	"chain12@example.com chain13@example.com\n"
	"chain13@example.com chain14@example.com\n"
	"chain14@example.com chain15@example.com\n"
	"chain15@example.com chain16@example.com\n"
	"chain16@example.com chain17@example.com\n"
	"chain17@example.com chain18@example.com\n"
	"chain18@example.com chain19@example.com\n"
	"chain19@example.com chain20@example.com\n"
	"chain20@example.com chain21@example.com\n"
	"chain21@example.com a@example.com\n"
	"short0@example.com short1@example.com\n"
	"short1@example.com short2@example.com\n"
	"short2@example.com b@example.com\n"
	"UPPER@Example.COM A@EXAMPLE.com\n";

static const char regexp_cf[] =
	"/^test[0-9]+@example\\.com$/ d@other.org\n"
	"/^user-(\\w+)@other\\.org$/ ${1}@example.com\n"
	"/([unclosed/ x@example.com\n"
	"if /foo/\n";

static const char quotas_cf[] =
	"a@example.com:5G\n"
	"B@example.com:0\n"
	"c@example.com:100M\n"
	"catchall@example.com:512k\n"
	"d@other.org:12x\n";

static const char masters_cf[] = "Admin|{PLAIN}masterpw\n";
static const char send_cf[] = "b@example.com REJECT\n";
static const char receive_cf[] = "c@example.com\t\tREJECT\n@alias.net REJECT\nd@other.org OK\n";

static const char *const extra_domains[] = { "Mail.Test", NULL };

static struct accounts *
load_fixture(char **dir_r)
{
	char *dir = xstrdup(test_tmpdir());
	struct accounts_settings set = {
		.config_dir = dir, .mail_dir = "/var/mail",
		.extra_domains = extra_domains,
	};
	struct accounts *acc;
	char *error = NULL;

	write_file(dir, "postfix-accounts.cf", accounts_cf);
	write_file(dir, "postfix-virtual.cf", virtual_cf);
	write_file(dir, "postfix-regexp.cf", regexp_cf);
	write_file(dir, "dovecot-quotas.cf", quotas_cf);
	write_file(dir, "dovecot-masters.cf", masters_cf);
	write_file(dir, "postfix-send-access.cf", send_cf);
	write_file(dir, "postfix-receive-access.cf", receive_cf);
	acc = accounts_load(&set, &error);
	if (acc == NULL) {
		printf("load failed: %s\n", error);
		abort();
	}
	*dir_r = dir;
	return acc;
}

struct resolve_case {
	const char *rcpt;
	int ret;
	/* expected targets, "L:addr" local, "R:addr" remote, in order */
	const char *targets[6];
};

static const struct resolve_case resolve_cases[] = {
	{ "a@example.com", 1, { "L:a@example.com" } },
	{ "A@EXAMPLE.com", 1, { "L:a@example.com" } },
	{ "b@example.com", 1, { "L:b@example.com" } },
	{ "alias1@example.com", 1, { "L:a@example.com" } },
	{ "multi@example.com", 1, { "L:a@example.com", "L:b@example.com",
	    "L:c@example.com", "R:friend@gmail.com" } },
	{ "nested@example.com", 1, { "L:a@example.com", "L:b@example.com",
	    "L:c@example.com", "R:friend@gmail.com", "L:d@other.org" } },
	/* a self-alias keeps a copy and forwards one */
	{ "c@example.com", 1, { "L:c@example.com", "R:friend@gmail.com" } },
	{ "loop1@example.com", 0, { NULL } },
	{ "a+tag@example.com", 1, { "L:a@example.com" } },
	{ "A+Tag+More@Example.com", 1, { "L:a@example.com" } },
	{ "a+special@example.com", 1, { "L:b@example.com" } },
	{ "alias1+x@example.com", 1, { "L:a@example.com" } },
	{ "+x@example.com", 1, { "L:catchall@example.com" } },
	/* the catch-all only for what is nothing else */
	{ "unknown@example.com", 1, { "L:catchall@example.com" } },
	{ "catchall@example.com", 1, { "L:catchall@example.com" } },
	{ "remote@example.com", 1, { "R:someone@gmail.com" } },
	{ "x@gmail.com", 1, { "R:x@gmail.com" } },
	{ "nobody@other.org", 0, { NULL } },
	{ "ghost@other.org", 0, { NULL } },
	{ "half@other.org", 1, { "L:d@other.org" } },
	{ "test12@example.com", 1, { "L:d@other.org" } },
	{ "TEST7@example.com", 1, { "L:d@other.org" } },
	{ "user-a@other.org", 1, { "L:a@example.com" } },
	{ "user-zz@other.org", 1, { "L:catchall@example.com" } },
	{ "postmaster@other.org", 1, { "L:a@example.com" } },
	{ "postmaster@mail.test", 1, { "L:a@example.com" } },
	{ "a@alias.net", 1, { "L:a@example.com" } },
	{ "short0@example.com", 1, { "L:b@example.com" } },
	{ "chain0@example.com", -1, { NULL } },
	{ "chain5@example.com", 1, { "L:a@example.com" } },
	{ "Upper@example.com", 1, { "L:a@example.com" } },
	{ "noat", 0, { NULL } },
	{ "@example.com", 0, { NULL } },
	{ "a@", 0, { NULL } },
	/* bad lines were skipped */
	{ "x@mail.test", 0, { NULL } },
	{ "e@other.org", 0, { NULL } },
};

static void
test_accounts_resolve(void)
{
	char *dir;
	struct accounts *acc = load_fixture(&dir);

	test_begin("accounts: resolution table");
	for (size_t i = 0; i < sizeof(resolve_cases) / sizeof(resolve_cases[0]); i++) {
		const struct resolve_case *c = &resolve_cases[i];
		struct accounts_resolution res;
		const char *err = NULL;
		int r = accounts_resolve(acc, c->rcpt, &res, &err);
		size_t n = 0;

		if (r != c->ret)
			printf("     case %s: got %d want %d\n", c->rcpt, r, c->ret);
		test_assert_int(r, c->ret);
		while (n < 6 && c->targets[n] != NULL)
			n++;
		if (r == 1) {
			test_assert_int(res.count, n);
			for (size_t k = 0; k < n && k < res.count; k++) {
				char *got = xasprintf("%c:%s",
				    res.targets[k].kind == ACCOUNTS_TARGET_LOCAL ?
				    'L' : 'R', res.targets[k].address);

				if (strcmp(got, c->targets[k]) != 0)
					printf("     case %s #%zu\n", c->rcpt, k);
				test_assert_str(got, c->targets[k]);
				free(got);
			}
		}
		if (r == -1)
			test_assert(err != NULL);
		accounts_resolution_free(&res);
	}
	test_end();

	test_begin("accounts: maildir paths, domains, counts");
	{
		struct accounts_resolution res;
		const char *err;

		test_assert(accounts_resolve(acc, "b+x@example.com", &res, &err) == 1);
		test_assert_str(res.targets[0].maildir, "/var/mail/example.com/b/");
		accounts_resolution_free(&res);
		test_assert(accounts_resolve(acc, "ghost@other.org", &res, &err) == 0);
		test_assert_int(res.dropped, 1);
		accounts_resolution_free(&res);
	}
	test_assert(accounts_is_local_domain(acc, "EXAMPLE.com"));
	test_assert(accounts_is_local_domain(acc, "other.org"));
	test_assert(accounts_is_local_domain(acc, "alias.net"));
	test_assert(accounts_is_local_domain(acc, "mail.test"));
	test_assert(!accounts_is_local_domain(acc, "gmail.com"));
	test_assert(!accounts_is_local_domain(acc, "example"));
	test_assert(accounts_exists(acc, "C@example.com"));
	test_assert(!accounts_exists(acc, "e@example.com"));
	test_assert_int(accounts_count(acc), 6);
	test_end();

	accounts_unref(acc);
	free(dir);
}
TEST(test_accounts_resolve)

/* postfix-aliases.cf: local aliases at the host's own names */
static const char local_aliases_cf[] =
	"# local aliases, aliases(5)\n"
	"devnull: /dev/null\n"
	"Abuse: a@example.com,\n"
	"  b@example.com\r\n"
	"\tfriend@gmail.com\n"
	"webmaster: abuse\n"
	"ops: root, \"c@example.com\"\n"
	"cron: |/usr/bin/logger, /var/log/cron.mail, :include:/etc/x, a@example.com\n"
	"self: self\n"
	"root: d@other.org\n"
	"noop: |/bin/true\n"
	"no colon here\n"
	"  orphan@example.com\n"
	"bad@name: a@example.com\n";

static const struct resolve_case local_cases[] = {
	/* root is POSTMASTER_ADDRESS, which the file cannot override */
	{ "root@mail.example.com", 1, { "L:a@example.com" } },
	{ "ROOT@localhost", 1, { "L:a@example.com" } },
	{ "root@localhost.example.com", 1, { "L:a@example.com" } },
	{ "root+cron@mail.example.com", 1, { "L:a@example.com" } },
	{ "devnull@mail.example.com", 1, { "D:devnull@mail.example.com" } },
	/* continuation lines, CRLF, remote targets */
	{ "abuse@mail.example.com", 1, { "L:a@example.com", "L:b@example.com",
	    "R:friend@gmail.com" } },
	/* a bare name is a local alias again */
	{ "webmaster@localhost", 1, { "L:a@example.com", "L:b@example.com",
	    "R:friend@gmail.com" } },
	/* c@example.com's virtual self-alias forwards a copy */
	{ "ops@mail.example.com", 1, { "L:a@example.com", "L:c@example.com",
	    "R:friend@gmail.com" } },
	/* pipes, files and :include: are skipped */
	{ "cron@mail.example.com", 1, { "L:a@example.com" } },
	{ "noop@mail.example.com", 0, { NULL } },
	/* a name that points at itself has no Unix mailbox here */
	{ "self@mail.example.com", 0, { NULL } },
	/* local aliases are not virtual: the mail domains do not take them */
	{ "root@example.com", 1, { "L:catchall@example.com" } },
	{ "abuse@other.org", 0, { NULL } },
	{ "nobody@mail.example.com", 0, { NULL } },
	/* virtual aliases and accounts still come first */
	{ "postmaster@mail.example.com", 1, { "L:a@example.com" } },
	{ "orphan@example.com", 1, { "L:catchall@example.com" } },
};

static void
test_accounts_local_aliases(void)
{
	char *dir = xstrdup(test_tmpdir()), *error = NULL;
	struct accounts_settings set = {
		.config_dir = dir, .mail_dir = "/var/mail",
		.hostname = "Mail.Example.com", .postmaster = "A@example.com",
	};
	struct accounts *acc;

	test_begin("accounts: postfix-aliases.cf, root and the host's names");
	write_file(dir, "postfix-accounts.cf", accounts_cf);
	write_file(dir, "postfix-virtual.cf", virtual_cf);
	write_file(dir, "postfix-aliases.cf", local_aliases_cf);
	acc = accounts_load(&set, &error);
	test_assert(acc != NULL);
	for (size_t i = 0; acc != NULL && i < sizeof(local_cases) / sizeof(local_cases[0]); i++) {
		const struct resolve_case *c = &local_cases[i];
		struct accounts_resolution res;
		const char *err = NULL;
		int r = accounts_resolve(acc, c->rcpt, &res, &err);
		size_t n = 0;

		if (r != c->ret)
			printf("     case %s: got %d want %d\n", c->rcpt, r, c->ret);
		test_assert_int(r, c->ret);
		while (n < 6 && c->targets[n] != NULL)
			n++;
		if (r == 1) {
			if (res.count != n)
				printf("     case %s: %zu targets\n", c->rcpt, res.count);
			test_assert_int(res.count, n);
			for (size_t k = 0; k < n && k < res.count; k++) {
				enum accounts_target_kind kd = res.targets[k].kind;
				char *got = xasprintf("%c:%s",
				    kd == ACCOUNTS_TARGET_LOCAL ? 'L' :
				    kd == ACCOUNTS_TARGET_REMOTE ? 'R' : 'D',
				    res.targets[k].address);

				if (strcmp(got, c->targets[k]) != 0)
					printf("     case %s #%zu\n", c->rcpt, k);
				test_assert_str(got, c->targets[k]);
				free(got);
			}
		}
		accounts_resolution_free(&res);
	}
	if (acc != NULL) {
		test_assert(accounts_is_local_domain(acc, "localhost"));
		test_assert(accounts_is_local_domain(acc, "localhost.example.com"));
		test_assert(accounts_is_local_domain(acc, "MAIL.example.com"));
	}
	accounts_unref(acc);
	/* without a host name (the CLI, IMAP) the file is not read */
	set.hostname = NULL;
	acc = accounts_load(&set, &error);
	test_assert(acc != NULL && !accounts_is_local_domain(acc, "localhost"));
	accounts_unref(acc);
	test_end();
	free(dir);
}
TEST(test_accounts_local_aliases)

static void
test_accounts_auth(void)
{
	char *dir;
	struct accounts *acc = load_fixture(&dir);
	struct accounts_login l;
	const char *err;

	test_begin("accounts: authenticate, master users");
	test_assert(accounts_authenticate(acc, "a@example.com", "pa", &l, &err) == 1);
	test_assert_str(l.user, "a@example.com");
	test_assert(l.master == NULL);
	accounts_login_free(&l);
	test_assert(accounts_authenticate(acc, "A@Example.Com", "pa", &l, &err) == 1);
	accounts_login_free(&l);
	test_assert(accounts_authenticate(acc, "a@example.com", "PA", &l, &err) == 0);
	test_assert(l.user == NULL);
	test_assert(accounts_authenticate(acc, "nobody@example.com", "secret", &l, &err) == 0);
	test_assert(accounts_authenticate(acc, "alias1@example.com", "pa", &l, &err) == 0);
	test_assert(accounts_authenticate(acc, "weird@example.com", "x", &l, &err) == -1);
	test_assert(accounts_authenticate(acc, "b@example.com*admin", "masterpw", &l, &err) == 1);
	test_assert_str(l.user, "b@example.com");
	test_assert_str(l.master, "admin");
	accounts_login_free(&l);
	test_assert(accounts_authenticate(acc, "b@example.com*ADMIN", "pb", &l, &err) == 0);
	test_assert(accounts_authenticate(acc, "nobody@example.com*admin", "masterpw", &l, &err) == 0);
	test_assert(accounts_authenticate(acc, "b@example.com*nomaster", "pb", &l, &err) == 0);
	test_assert(accounts_authenticate(acc, "", "", &l, &err) == 0);
	test_end();

	test_begin("accounts: sender_allowed (SPOOF_PROTECTION)");
	test_assert(accounts_sender_allowed(acc, "a@example.com", "a@example.com"));
	test_assert(accounts_sender_allowed(acc, "a@example.com", "A@Example.com"));
	test_assert(accounts_sender_allowed(acc, "a@example.com", "a+news@example.com"));
	test_assert(accounts_sender_allowed(acc, "a@example.com", "alias1@example.com"));
	test_assert(accounts_sender_allowed(acc, "a@example.com", "multi@example.com"));
	test_assert(accounts_sender_allowed(acc, "a@example.com", "nested@example.com"));
	test_assert(accounts_sender_allowed(acc, "d@other.org", "test1@example.com"));
	test_assert(accounts_sender_allowed(acc, "a@example.com", "postmaster@other.org"));
	test_assert(accounts_sender_allowed(acc, "a@example.com", ""));
	test_assert(!accounts_sender_allowed(acc, "a@example.com", "b@example.com"));
	test_assert(!accounts_sender_allowed(acc, "a@example.com", "x@gmail.com"));
	test_assert(!accounts_sender_allowed(acc, "b@example.com", "a+special2@example.com"));
	test_assert(accounts_sender_allowed(acc, "b@example.com", "a+special@example.com"));
	/* the catch-all owner gets what is nothing else, not the accounts */
	test_assert(accounts_sender_allowed(acc, "catchall@example.com", "random@example.com"));
	test_assert(!accounts_sender_allowed(acc, "catchall@example.com", "a@example.com"));
	test_end();

	test_begin("accounts: quotas and restrictions");
	test_assert(accounts_quota(acc, "a@example.com") == 5ULL << 30);
	test_assert(accounts_quota(acc, "A+x@example.com") == 5ULL << 30);
	test_assert(accounts_quota(acc, "b@example.com") == 0);
	test_assert(accounts_quota(acc, "c@example.com") == 100ULL << 20);
	test_assert(accounts_quota(acc, "catchall@example.com") == 512ULL << 10);
	test_assert(accounts_quota(acc, "d@other.org") == 0);
	test_assert(accounts_quota(acc, "nobody@example.com") == 0);
	test_assert(accounts_send_restricted(acc, "B@example.com"));
	test_assert(!accounts_send_restricted(acc, "a@example.com"));
	test_assert(accounts_receive_restricted(acc, "c@example.com"));
	test_assert(accounts_receive_restricted(acc, "anyone@alias.net"));
	test_assert(!accounts_receive_restricted(acc, "d@other.org"));
	test_assert(!accounts_receive_restricted(acc, "a@example.com"));
	test_end();

	accounts_unref(acc);
	free(dir);
}
TEST(test_accounts_auth)

static void
test_accounts_malformed_logged(void)
{
	char *dir, *logpath = xasprintf("%s/log", test_tmpdir());
	int fd = open(logpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
	struct accounts *acc;
	char *log = NULL;

	test_begin("accounts: malformed lines logged with file:line, passwords never");
	log_set_fd(fd);
	log_set_level(LOG_INFO);
	acc = load_fixture(&dir);
	log_set_level(LOG_ERROR);
	log_set_fd(-1);
	close(fd);
	test_assert(file_read_all(logpath, 1 << 20, &log, NULL) == 0);
	test_assert(strstr(log, "postfix-accounts.cf line=9 ") != NULL);
	test_assert(strstr(log, "postfix-accounts.cf line=10 ") != NULL);
	test_assert(strstr(log, "postfix-accounts.cf line=11 ") != NULL);
	test_assert(strstr(log, "postfix-accounts.cf line=12 ") != NULL);
	test_assert(strstr(log, "postfix-virtual.cf line=14 ") != NULL);
	test_assert(strstr(log, "postfix-virtual.cf line=15 ") != NULL);
	test_assert(strstr(log, "event=accounts_bad_regex") != NULL &&
	    strstr(log, "postfix-regexp.cf line=3 ") != NULL);
	test_assert(strstr(log, "postfix-regexp.cf line=4 ") != NULL);
	test_assert(strstr(log, "dovecot-quotas.cf line=5 ") != NULL);
	/* userdb fields: their names, never their values */
	test_assert(strstr(log, "event=accounts_extra_ignored file=") != NULL &&
	    strstr(log, "line=4 account=c@example.com fields=userdb_mail ") != NULL);
	test_assert(strstr(log, "maildir:~/x") == NULL);
	test_assert(strstr(log, "masterpw") == NULL);
	test_assert(strstr(log, "duplicate") != NULL);
	free(log);
	accounts_unref(acc);
	free(dir);
	free(logpath);
	test_end();
}
TEST(test_accounts_malformed_logged)

static void
test_accounts_hostile_lines(void)
{
	char *dir = xstrdup(test_tmpdir());
	struct accounts_settings set = { .config_dir = dir, .mail_dir = "/m" };
	static const char junk[] =
		"|||\n@|x\nx@|x\n@@@|x\na@b@c|{PLAIN}x\nfoo@bar/../..|{PLAIN}x\n"
		"foo@.|{PLAIN}x\nfoo@..|{PLAIN}x\n..@x.org|{PLAIN}x\n"
		"ok@x.org|{PLAIN}p\0hidden@x.org|{PLAIN}q\n"
		"\r\n\r\n#\n|\n   |   \nok2@x.org|{PLAIN}p";
	struct accounts *acc;
	struct accounts_resolution res;
	char *error = NULL, *path = xasprintf("%s/postfix-accounts.cf", dir);
	const char *err;
	int fd;

	test_begin("accounts: hostile lines are skipped, the rest loads");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	test_assert(write(fd, junk, sizeof(junk) - 1) == (ssize_t)(sizeof(junk) - 1));
	close(fd);
	write_file(dir, "postfix-virtual.cf",
	    "/x ,,,\n,,, ,,,\n@ @\n@@ @@\nx@x.org ,,,\nq@x.org @\n"
	    "@x.org @y\n");
	write_file(dir, "postfix-regexp.cf", "/\n//\n/a/\n/a/ \n/(/ x@y.z\n/a/ $9$$${9}@x.org\n");
	write_file(dir, "dovecot-quotas.cf", ":\nok@x.org:99999999999999999999G\nok@x.org:-1\n");
	acc = accounts_load(&set, &error);
	test_assert(acc != NULL);
	test_assert_int(accounts_count(acc), 1);
	test_assert(accounts_exists(acc, "ok2@x.org"));
	test_assert(accounts_quota(acc, "ok2@x.org") == 0);
	/* "@x.org @y": the local part moves to a domain that is not ours */
	test_assert(accounts_resolve(acc, "zzz@x.org", &res, &err) == 1);
	test_assert(res.count == 1 && res.targets[0].kind == ACCOUNTS_TARGET_REMOTE);
	test_assert_str(res.targets[0].address, "zzz@y");
	accounts_resolution_free(&res);
	test_assert(accounts_resolve(acc, "ok2@x.org", &res, &err) == 1);
	test_assert_str(res.targets[0].maildir, "/m/x.org/ok2/");
	accounts_resolution_free(&res);
	accounts_unref(acc);
	test_end();

	test_begin("accounts: an unreadable file fails the load, missing files do not");
	unlink(path);
	test_assert(mkdir(path, 0700) == 0);	/* EISDIR on read */
	acc = accounts_load(&set, &error);
	test_assert(acc == NULL && error != NULL && strstr(error, "postfix-accounts.cf") != NULL);
	free(error);
	rmdir(path);
	set.config_dir = "/nonexistent/dir";
	acc = accounts_load(&set, &error);
	test_assert(acc != NULL && accounts_count(acc) == 0);
	accounts_unref(acc);
	test_end();
	free(path);
	free(dir);
}
TEST(test_accounts_hostile_lines)

static void
test_accounts_reload(void)
{
	char *dir = xstrdup(test_tmpdir());
	struct accounts_settings set = { .config_dir = dir, .mail_dir = "/m" };
	struct accounts_watch *w;
	struct accounts *old, *cur;
	char *error = NULL;

	test_begin("accounts: watch reloads on change and keeps old snapshots alive");
	w = accounts_watch_create(&set, &error);
	test_assert(w != NULL);
	cur = accounts_watch_get(w);
	test_assert_int(accounts_count(cur), 0);
	accounts_unref(cur);
	test_assert_int(accounts_watch_refresh(w, false), 0);

	write_file(dir, "postfix-accounts.cf", "new@example.com|{PLAIN}pw\n");
	old = accounts_watch_get(w);
	test_assert_int(accounts_watch_refresh(w, false), 1);
	test_assert_int(accounts_watch_refresh(w, false), 0);
	cur = accounts_watch_get(w);
	test_assert(accounts_exists(cur, "new@example.com"));
	test_assert(!accounts_exists(old, "new@example.com"));
	accounts_unref(cur);

	write_file(dir, "postfix-virtual.cf", "al@example.com new@example.com\n");
	test_assert_int(accounts_watch_refresh(w, false), 1);
	cur = accounts_watch_get(w);
	test_assert(accounts_sender_allowed(cur, "new@example.com", "al@example.com"));
	accounts_unref(cur);

	/* same size, new content: a new inode from the atomic write */
	write_file(dir, "postfix-accounts.cf", "neu@example.com|{PLAIN}pw\n");
	test_assert_int(accounts_watch_refresh(w, false), 1);
	cur = accounts_watch_get(w);
	test_assert(accounts_exists(cur, "neu@example.com"));
	test_assert(!accounts_exists(cur, "new@example.com"));
	accounts_unref(cur);

	/* a bad line is logged when its file is loaded, not at every reload */
	{
		char *logpath = xasprintf("%s/reload.log", dir), *log = NULL;
		int fd;

		write_file(dir, "postfix-accounts.cf", "neu@example.com|{PLAIN}pw\nbroken\n");
		fd = open(logpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
		log_set_fd(fd);
		log_set_level(LOG_INFO);
		test_assert_int(accounts_watch_refresh(w, false), 1);
		write_file(dir, "postfix-virtual.cf", "al2@example.com neu@example.com\n");
		test_assert_int(accounts_watch_refresh(w, false), 1);
		log_set_level(LOG_ERROR);
		log_set_fd(-1);
		close(fd);
		test_assert(file_read_all(logpath, 1 << 20, &log, NULL) == 0);
		{
			const char *first = strstr(log, "postfix-accounts.cf line=2 ");

			test_assert(first != NULL);
			test_assert(first != NULL &&
			    strstr(first + 1, "postfix-accounts.cf line=2 ") == NULL);
		}
		free(log);
		free(logpath);
	}
	test_assert_int(accounts_watch_refresh(w, true), 1);
	/* removing a file counts as a change */
	{
		char *p = xasprintf("%s/postfix-virtual.cf", dir);

		unlink(p);
		free(p);
	}
	test_assert_int(accounts_watch_refresh(w, false), 1);
	accounts_unref(old);
	accounts_watch_free(&w);
	test_assert(w == NULL);
	test_end();
	free(dir);
}
TEST(test_accounts_reload)

struct thread_arg {
	struct accounts *acc;
	int ok;
};

static void *
resolve_thread(void *p)
{
	struct thread_arg *t = p;

	for (int i = 0; i < 2000; i++) {
		struct accounts *a = accounts_ref(t->acc);
		struct accounts_resolution res;
		const char *err;

		if (accounts_resolve(a, i % 2 ? "test5@example.com" : "nested@example.com",
		    &res, &err) == 1)
			t->ok++;
		accounts_resolution_free(&res);
		accounts_unref(a);
	}
	return NULL;
}

static void
test_accounts_threads(void)
{
	char *dir;
	struct accounts *acc = load_fixture(&dir);
	struct thread_arg args[4];
	pthread_t th[4];

	test_begin("accounts: one snapshot shared by threads");
	for (int i = 0; i < 4; i++) {
		args[i].acc = acc;
		args[i].ok = 0;
		pthread_create(&th[i], NULL, resolve_thread, &args[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		test_assert_int(args[i].ok, 2000);
	}
	accounts_unref(acc);
	free(dir);
	test_end();
}
TEST(test_accounts_threads)
