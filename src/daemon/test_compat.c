#include "daemon/compat.h"
#include "lib/file.h"
#include "lib/test.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

static void
put(const char *dir, const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	char *slash = strrchr(path, '/');

	*slash = '\0';
	if (mkdir_p(path, 0755) < 0)
		abort();
	*slash = '/';
	if (file_write_atomic(path, text, strlen(text), 0644) < 0)
		abort();
	free(path);
}

static const struct compat_finding *
find(const struct compat_finding *f, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(f[i].what, what) == 0)
			return &f[i];
	return NULL;
}

static void
test_compat_scan(void)
{
	char *cfg = xasprintf("%s/config", test_tmpdir());
	char *mail = xasprintf("%s/mail", test_tmpdir());
	char *le = xasprintf("%s/letsencrypt", test_tmpdir());
	char *link;
	struct compat_finding *f;
	const struct compat_finding *x;
	size_t n;

	test_begin("compat: what a docker-mailserver folder holds that is not read");
	/* read by tegami: never reported */
	put(cfg, "postfix-accounts.cf", "a@example.com|{PLAIN}x\n");
	put(cfg, "postfix-virtual.cf", "b@example.com a@example.com\n");
	put(cfg, "postfix-aliases.cf", "devnull: /dev/null\n");
	put(cfg, "opendkim/KeyTable", "x\n");
	put(cfg, "ssl/mail.example.com-full.pem", "x\n");
	put(cfg, "whitelist_clients.local", "x\n");
	/* not read */
	put(cfg, "postfix-main.cf", "# tuning\nmessage_size_limit = 20000000\n"
	    "smtpd_tls_loglevel=1\n  continued line\nbounce_queue_lifetime = 1d\n");
	put(cfg, "dovecot.cf", "mail_plugins = $mail_plugins fts\nplugin {\n"
	    "  fts = xapian\n}\n");
	put(cfg, "postfix-master.cf", "submission/inet/smtpd_reject_unlisted_recipient=no\n");
	put(cfg, "user-patches.sh", "#!/bin/bash\n");
	put(cfg, "before.dovecot.sieve", "require \"fileinto\";\n");
	put(cfg, "a@example.com.dovecot.sieve", "keep;\n");
	put(cfg, "b@example.com.dovecot.sieve", "keep;\n");
	put(cfg, "fetchmail.cf", "poll imap.example.org\n");
	put(cfg, "ldap-users.cf", "x\n");
	put(cfg, "ldap-groups.cf", "x\n");
	put(cfg, "fail2ban-jail.cf", "[dovecot]\n");
	put(cfg, "dhparams.pem", "x\n");
	put(cfg, "rspamd/dkim/rsa-2048-mail-example.com.private.txt", "x\n");
	put(cfg, "rspamd/dkim/rsa-2048-mail-example.com.public.txt", "x\n");
	put(cfg, "rspamd/override.d/dkim_signing.conf", "x\n");
	put(cfg, "rspamd/custom-commands.conf", "x\n");
	/* an empty sieve-pipe/ is nothing */
	{
		char *d = xasprintf("%s/sieve-pipe", cfg);

		test_assert(mkdir_p(d, 0755) == 0);
		free(d);
	}
	/* Sieve in the mail folder, Dovecot's home inside the Maildir */
	put(mail, "example.com/a/home/sieve/main.sieve", "keep;\n");
	put(mail, "example.com/a/home/sieve/vacation.sieve", "vacation \"x\";\n");
	put(mail, "example.com/b/home/.dovecot.sieve", "keep;\n");
	put(mail, "example.com/c/cur/1.eml", "x\n");
	put(mail, "example.org/d/home/sieve/notes.txt", "x\n");
	put(mail, "example.org/e/home/mailboxes/INBOX/dbox-Mails/u.1", "x\n");
	link = xasprintf("%s/example.com/a/home/.dovecot.sieve", mail);
	test_assert(symlink("sieve/main.sieve", link) == 0);
	put(le, "acme.json", "{}\n");

	f = compat_scan(cfg, mail, "letsencrypt", le, &n);
	static const struct { const char *what; unsigned int count; } want[] = {
		{ "postfix-main.cf", 1 }, { "postfix-master.cf", 1 },
		{ "dovecot.cf", 1 }, { "user-patches.sh", 1 },
		{ "before.dovecot.sieve", 1 }, { "<login>.dovecot.sieve", 2 },
		{ "fetchmail.cf", 1 }, { "ldap-*.cf", 2 },
		{ "fail2ban-jail.cf", 1 }, { "dhparams.pem", 1 },
		{ "rspamd/dkim", 1 }, { "rspamd", 2 }, { "acme.json", 1 },
		{ "dbox", 1 }, { "sieve", 2 },
	};
	test_assert_int(n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < n && i < sizeof(want) / sizeof(want[0]); i++) {
		test_assert_str(f[i].what, want[i].what);
		test_assert_int(f[i].count, want[i].count);
		test_assert(f[i].instead != NULL && f[i].path != NULL);
	}
	x = find(f, n, "postfix-main.cf");
	test_assert(x != NULL && x->detail != NULL);
	if (x != NULL)
		test_assert_str(x->detail, "message_size_limit,smtpd_tls_loglevel,"
		    "bounce_queue_lifetime");
	x = find(f, n, "dovecot.cf");
	if (x != NULL)
		test_assert_str(x->detail, "mail_plugins,plugin");
	x = find(f, n, "sieve");
	if (x != NULL)
		test_assert_str(x->detail, "accounts_with_active_script=2 scripts=2");
	x = find(f, n, "<login>.dovecot.sieve");
	if (x != NULL)
		test_assert(strstr(x->path, "a@example.com.dovecot.sieve") != NULL);
	compat_findings_free(f, n);

	/* acme.json only matters for SSL_TYPE=letsencrypt; missing dirs find nothing */
	f = compat_scan(cfg, "/nonexistent", "manual", le, &n);
	test_assert(find(f, n, "acme.json") == NULL && find(f, n, "sieve") == NULL);
	compat_findings_free(f, n);
	f = compat_scan("/nonexistent", "/nonexistent", NULL, NULL, &n);
	test_assert_int(n, 0);
	compat_findings_free(f, n);
	test_end();
	free(link);
	free(cfg);
	free(mail);
	free(le);
}
TEST(test_compat_scan)
