#include "daemon/compat.h"
#include "lib/buf.h"
#include "lib/file.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Bounds that keep the start cheap on a folder with many accounts. */
#define SCAN_MAX_ACCOUNTS 200000
#define SCAN_MAX_ENTRIES 100000
#define DETAIL_MAX_NAMES 8
#define OVERRIDE_MAX_SIZE (1024 * 1024)

enum rule_kind {
	RULE_FILE,		/* CONFIG_DIR/<name> exists */
	RULE_DIR,		/* CONFIG_DIR/<name>/ holds something */
	RULE_PATTERN,		/* <prefix>*<suffix> in CONFIG_DIR */
};

enum rule_detail {
	DETAIL_NONE,
	DETAIL_SETTINGS,	/* the names set in a main.cf / dovecot.conf file */
};

struct rule {
	const char *what;
	enum rule_kind kind;
	const char *name;	/* file or dir name; PATTERN: prefix */
	const char *suffix;	/* PATTERN */
	enum rule_detail detail;
	const char *instead;
};

/*
 * The docker-mailserver config files tegami does not read
 * (docker-mailserver.md §3.10). The ones it does read are absent:
 * postfix-accounts/virtual/regexp/aliases/relaymap/sasl-password/
 * send-access/receive-access.cf, dovecot-quotas/masters.cf, opendkim/,
 * ssl/ (SSL_TYPE custom and self-signed), whitelist_clients.local and
 * whitelist_recipients (ENABLE_POSTGREY).
 */
static const struct rule rules[] = {
	{ "postfix-main.cf", RULE_FILE, "postfix-main.cf", NULL, DETAIL_SETTINGS,
	  "Postfix settings are not read: tegami has its own keys "
	  "(message_size_limit is POSTFIX_MESSAGE_SIZE_LIMIT, relayhost "
	  "DEFAULT_RELAY_HOST; the table is in docs/migration.md)" },
	{ "postfix-master.cf", RULE_FILE, "postfix-master.cf", NULL, DETAIL_NONE,
	  "Postfix service overrides are not read: ports come from LISTEN_*, "
	  "TLS from SSL_*" },
	{ "dovecot.cf", RULE_FILE, "dovecot.cf", NULL, DETAIL_SETTINGS,
	  "Dovecot settings are not read (no plugins: FTS, mail_crypt, ... do "
	  "not apply); IMAP limits are the TEGAMI_IMAP_* keys" },
	{ "user-patches.sh", RULE_FILE, "user-patches.sh", NULL, DETAIL_NONE,
	  "not run: there is no Postfix or Dovecot to patch; what it changed "
	  "does not apply" },
	{ "before.dovecot.sieve", RULE_FILE, "before.dovecot.sieve", NULL,
	  DETAIL_NONE, "no Sieve: this global filter does not run; mail goes to "
	  "INBOX (spam to Junk with MOVE_SPAM_TO_JUNK=1)" },
	{ "after.dovecot.sieve", RULE_FILE, "after.dovecot.sieve", NULL,
	  DETAIL_NONE, "no Sieve: this global filter does not run; mail goes to "
	  "INBOX (spam to Junk with MOVE_SPAM_TO_JUNK=1)" },
	{ "<login>.dovecot.sieve", RULE_PATTERN, "", ".dovecot.sieve", DETAIL_NONE,
	  "no Sieve: these users' filters (copied to their home at account "
	  "creation) do not run; their mail goes to INBOX" },
	{ "sieve-filter", RULE_DIR, "sieve-filter", NULL, DETAIL_NONE,
	  "no Sieve: vnd.dovecot.filter programs are not run" },
	{ "sieve-pipe", RULE_DIR, "sieve-pipe", NULL, DETAIL_NONE,
	  "no Sieve: vnd.dovecot.pipe programs are not run" },
	{ "fetchmail.cf", RULE_FILE, "fetchmail.cf", NULL, DETAIL_NONE,
	  "no fetchmail: these remote mailboxes are not fetched (run fetchmail "
	  "beside tegami, delivering over SMTP)" },
	{ "getmail", RULE_DIR, "getmail", NULL, DETAIL_NONE,
	  "no getmail: these remote mailboxes are not fetched (run getmail "
	  "beside tegami, delivering over SMTP)" },
	{ "ldap-*.cf", RULE_PATTERN, "ldap-", ".cf", DETAIL_NONE,
	  "no LDAP: accounts and aliases come from postfix-accounts.cf and "
	  "postfix-virtual.cf" },
	{ "amavis.cf", RULE_FILE, "amavis.cf", NULL, DETAIL_NONE,
	  "no Amavis: tegami's filters run in-process (docs/spam.md)" },
	{ "spamassassin-rules.cf", RULE_FILE, "spamassassin-rules.cf", NULL,
	  DETAIL_NONE, "no SpamAssassin: these rules do not apply; tegami's "
	  "junk filter learns from `tegami junk train`" },
	{ "fail2ban-fail2ban.cf", RULE_FILE, "fail2ban-fail2ban.cf", NULL,
	  DETAIL_NONE, "no fail2ban: tegami bans by itself with FAIL2BAN_MAXRETRY, "
	  "FAIL2BAN_FINDTIME and FAIL2BAN_BANTIME" },
	{ "fail2ban-jail.cf", RULE_FILE, "fail2ban-jail.cf", NULL, DETAIL_NONE,
	  "no fail2ban: tegami bans by itself with FAIL2BAN_MAXRETRY, "
	  "FAIL2BAN_FINDTIME and FAIL2BAN_BANTIME" },
	{ "dhparams.pem", RULE_FILE, "dhparams.pem", NULL, DETAIL_NONE,
	  "not read: tegami's TLS uses ECDHE key exchange, no DH parameters" },
};

#define N_RULES (sizeof(rules) / sizeof(rules[0]))

struct findings {
	struct compat_finding *v;
	size_t n;
};

static void
add(struct findings *f, const char *what, char *path, unsigned int count,
    char *detail, const char *instead)
{
	f->v = xreallocarray(f->v, f->n + 1, sizeof(*f->v));
	f->v[f->n].what = what;
	f->v[f->n].path = path;
	f->v[f->n].count = count;
	f->v[f->n].detail = detail;
	f->v[f->n].instead = instead;
	f->n++;
}

static int
str_ptr_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of a directory (not . and ..), sorted; NULL if unreadable. */
static char **
list_dir(const char *path, size_t *n_r)
{
	DIR *d = opendir(path);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;

	*n_r = 0;
	if (d == NULL)
		return NULL;
	while ((de = readdir(d)) != NULL && n < SCAN_MAX_ENTRIES) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n + 2 > cap) {
			cap = cap == 0 ? 16 : cap * 2;
			names = xreallocarray(names, cap, sizeof(*names));
		}
		names[n++] = xstrdup(de->d_name);
		names[n] = NULL;
	}
	closedir(d);
	if (names == NULL)
		names = xcalloc(1, sizeof(*names));
	qsort(names, n, sizeof(*names), str_ptr_cmp);
	*n_r = n;
	return names;
}

static bool
is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static size_t
dir_entries(const char *path)
{
	size_t n;
	char **names = list_dir(path, &n);

	str_array_free(names);
	return n;
}

/*
 * The settings an override file sets: the word before '=' (Postfix
 * main.cf, Dovecot) or '{' (a Dovecot section) on each line that does
 * not start with white space or '#', at most DETAIL_MAX_NAMES of them.
 */
static char *
settings_named(const char *path)
{
	char *data, *save = NULL;
	size_t len, shown = 0;
	struct buf b;

	if (file_read_all(path, OVERRIDE_MAX_SIZE, &data, &len) < 0)
		return NULL;
	buf_init(&b, 4096);
	for (char *line = strtok_r(data, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		size_t w;

		if (line[0] == ' ' || line[0] == '\t' || line[0] == '#')
			continue;
		w = strspn(line, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789_-");
		if (w == 0 || w > 64)
			continue;
		{
			const char *p = line + w;

			while (*p == ' ' || *p == '\t')
				p++;
			if (*p != '=' && *p != '{')
				continue;
		}
		if (shown == DETAIL_MAX_NAMES) {
			buf_append_str(&b, ",...");
			break;
		}
		if (b.len > 0)
			buf_append_c(&b, ',');
		buf_append(&b, line, w);
		shown++;
	}
	free(data);
	if (b.len == 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

static void
scan_config(struct findings *f, const char *config_dir)
{
	size_t n;
	char **names = list_dir(config_dir, &n);

	if (names == NULL)
		return;
	for (size_t r = 0; r < N_RULES; r++) {
		const struct rule *ru = &rules[r];
		char *path, *first = NULL;
		unsigned int count = 0;

		switch (ru->kind) {
		case RULE_FILE:
			path = xasprintf("%s/%s", config_dir, ru->name);
			if (is_file(path))
				add(f, ru->what, path, 1, ru->detail ==
				    DETAIL_SETTINGS ? settings_named(path) : NULL,
				    ru->instead);
			else
				free(path);
			break;
		case RULE_DIR:
			path = xasprintf("%s/%s", config_dir, ru->name);
			if ((count = (unsigned int)dir_entries(path)) > 0)
				add(f, ru->what, path, count, NULL, ru->instead);
			else
				free(path);
			break;
		case RULE_PATTERN:
			for (size_t i = 0; i < n; i++) {
				const char *nm = names[i];

				if (!str_has_prefix(nm, ru->name) ||
				    !str_has_suffix(nm, ru->suffix) ||
				    strlen(nm) <= strlen(ru->name) + strlen(ru->suffix) ||
				    strcmp(nm, "before.dovecot.sieve") == 0 ||
				    strcmp(nm, "after.dovecot.sieve") == 0)
					continue;
				path = xasprintf("%s/%s", config_dir, nm);
				if (!is_file(path)) {
					free(path);
					continue;
				}
				if (first == NULL)
					first = path;
				else
					free(path);
				count++;
			}
			if (first != NULL)
				add(f, ru->what, first, count, NULL, ru->instead);
			break;
		}
	}
	str_array_free(names);
}

/* rspamd/: DKIM keys tegami does not sign with, and overrides it does not apply. */
static void
scan_rspamd(struct findings *f, const char *config_dir)
{
	char *dir = xasprintf("%s/rspamd", config_dir);
	char *dkim = xasprintf("%s/rspamd/dkim", config_dir);
	size_t n, nk;
	char **names = list_dir(dir, &n), **keys = list_dir(dkim, &nk);
	unsigned int other = 0, private_keys = 0;
	char *example = NULL;

	for (size_t i = 0; names != NULL && i < n; i++)
		if (strcmp(names[i], "dkim") != 0)
			other++;
	for (size_t i = 0; keys != NULL && i < nk; i++) {
		if (!str_has_suffix(keys[i], ".private.txt"))
			continue;
		if (example == NULL)
			example = xasprintf("%s/%s", dkim, keys[i]);
		private_keys++;
	}
	if (private_keys > 0)
		add(f, "rspamd/dkim", example, private_keys, NULL,
		    "these DKIM keys are not used: tegami signs with "
		    "opendkim/keys/<domain>/<selector>.private (copy each key "
		    "there, or run `setup config dkim`; docs/migration.md)");
	else
		free(example);
	if (other > 0)
		add(f, "rspamd", xstrdup(dir), other, NULL,
		    "rspamd's configuration overrides are not applied: tegami "
		    "does not run rspamd, it asks the one at TEGAMI_RSPAMD_ADDRESS");
	str_array_free(names);
	str_array_free(keys);
	free(dir);
	free(dkim);
}

/*
 * Per-user Sieve in the mail folder: <domain>/<user>/home/.dovecot.sieve
 * (the active script, often a symlink into sieve/) and the *.sieve files
 * of home/sieve/ (ManageSieve's scripts), in Dovecot 2.3's and 2.4's
 * layout alike.
 */
static unsigned int
scan_sieve(struct findings *f, const char *mail_dir)
{
	size_t nd;
	char **domains = list_dir(mail_dir, &nd);
	unsigned int active = 0, scripts = 0, seen = 0, dbox = 0;
	char *example = NULL, *dbox_example = NULL;

	for (size_t d = 0; domains != NULL && d < nd && seen < SCAN_MAX_ACCOUNTS; d++) {
		char *ddir = xasprintf("%s/%s", mail_dir, domains[d]);
		size_t nu;
		char **users;

		if (domains[d][0] == '.') {
			free(ddir);
			continue;
		}
		users = list_dir(ddir, &nu);
		for (size_t u = 0; users != NULL && u < nu && seen < SCAN_MAX_ACCOUNTS; u++) {
			char *home = xasprintf("%s/%s/home", ddir, users[u]);
			char *act = xasprintf("%s/.dovecot.sieve", home);
			char *sdir = xasprintf("%s/sieve", home);
			struct stat st;
			size_t ns;
			char **sv;

			seen++;
			/* DOVECOT_MAILBOX_FORMAT=sdbox|mdbox: the mail is in the
			   home (mailboxes/, storage/), which tegami cannot read */
			for (int k = 0; k < 2; k++) {
				char *box = xasprintf("%s/%s", home, k == 0 ?
				    "mailboxes" : "storage");

				if (stat(box, &st) == 0 && S_ISDIR(st.st_mode)) {
					if (dbox_example == NULL)
						dbox_example = xstrdup(box);
					dbox++;
					k = 2;
				}
				free(box);
			}
			if (lstat(act, &st) == 0 && (S_ISREG(st.st_mode) ||
			    S_ISLNK(st.st_mode))) {
				active++;
				if (example == NULL)
					example = xstrdup(act);
			}
			sv = list_dir(sdir, &ns);
			for (size_t i = 0; sv != NULL && i < ns; i++) {
				if (!str_has_suffix(sv[i], ".sieve"))
					continue;
				scripts++;
				if (example == NULL)
					example = xasprintf("%s/%s", sdir, sv[i]);
			}
			str_array_free(sv);
			free(home);
			free(act);
			free(sdir);
		}
		str_array_free(users);
		free(ddir);
	}
	str_array_free(domains);
	if (dbox > 0)
		add(f, "dbox", dbox_example, dbox, NULL, "this mail is in "
		    "Dovecot's sdbox/mdbox format, which tegami does not read: "
		    "convert it to Maildir before moving (doveadm sync -u <user> "
		    "maildir:/var/mail/<domain>/<user>, docs/migration.md)");
	if (active == 0 && scripts == 0) {
		free(example);
		return seen;
	}
	add(f, "sieve", example, active > 0 ? active : 1,
	    xasprintf("accounts_with_active_script=%u scripts=%u", active, scripts),
	    "no Sieve: these users' filters, vacation replies and redirects do "
	    "not run; their mail goes to INBOX (spam to Junk)");
	return seen;
}

struct compat_finding *
compat_scan(const char *config_dir, const char *mail_dir, const char *ssl_type,
    const char *letsencrypt_dir, size_t *count_r)
{
	struct findings f = { NULL, 0 };
	struct timespec t0, t1;
	unsigned int accounts = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);

	if (config_dir != NULL) {
		scan_config(&f, config_dir);
		scan_rspamd(&f, config_dir);
	}
	if (ssl_type != NULL && strcmp(ssl_type, "letsencrypt") == 0 &&
	    letsencrypt_dir != NULL) {
		char *acme = xasprintf("%s/acme.json", letsencrypt_dir);

		if (is_file(acme))
			add(&f, "acme.json", acme, 1, NULL, "Traefik's acme.json "
			    "is not read: give tegami certbot's live/<domain>/ "
			    "files, or the PEM files with SSL_TYPE=manual");
		else
			free(acme);
	}
	if (mail_dir != NULL)
		accounts = scan_sieve(&f, mail_dir);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_debug("event=compat_scanned accounts=%u findings=%zu ms=%.1f",
	    accounts, f.n, (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	*count_r = f.n;
	return f.v;
}

void
compat_findings_free(struct compat_finding *f, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(f[i].path);
		free(f[i].detail);
	}
	free(f);
}

void
compat_log_unused(const struct settings *s)
{
	size_t n;
	struct compat_finding *f = compat_scan(s->config_dir, s->mail_dir,
	    config_str(s->cfg, "SSL_TYPE"),
	    config_str(s->cfg, "TEGAMI_LETSENCRYPT_DIR"), &n);

	for (size_t i = 0; i < n; i++) {
		char files[32] = "";

		if (strcmp(f[i].what, "sieve") == 0) {
			log_warn("event=sieve_ignored %s example=%s instead=\"%s\"",
			    f[i].detail, f[i].path, f[i].instead);
			continue;
		}
		if (strcmp(f[i].what, "dbox") == 0) {
			log_warn("event=mail_format_unsupported accounts=%u "
			    "example=%s instead=\"%s\"", f[i].count, f[i].path,
			    f[i].instead);
			continue;
		}
		if (f[i].count > 1)
			snprintf(files, sizeof(files), " files=%u", f[i].count);
		log_warn("event=config_file_ignored file=%s%s%s%s instead=\"%s\"",
		    f[i].path, files, f[i].detail != NULL ? " settings=" : "",
		    f[i].detail != NULL ? f[i].detail : "", f[i].instead);
	}
	compat_findings_free(f, n);
}
