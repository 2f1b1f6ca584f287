/*
 * config dkim: DKIM keys in docker-mailserver's OpenDKIM layout.
 *
 *   CONFIG_DIR/opendkim/keys/<domain>/<selector>.private   PEM, 0600
 *       (0640 with group DMS_VMAIL_GID when root makes it)
 *   CONFIG_DIR/opendkim/keys/<domain>/<selector>.txt       zone snippet
 *   CONFIG_DIR/opendkim/KeyTable      <sel>._domainkey.<d> <d>:<sel>:/etc/opendkim/keys/<d>/<sel>.private
 *   CONFIG_DIR/opendkim/SigningTable  *@<d> <sel>._domainkey.<d>
 *   CONFIG_DIR/opendkim/TrustedHosts  127.0.0.1, localhost (when missing)
 *
 * KeyTable names the container path /etc/opendkim/keys/..., as
 * docker-mailserver writes it; tegami reads that prefix as
 * CONFIG_DIR/opendkim/keys/. A key that exists is never replaced.
 */
#include "cli/check.h"
#include "cli/cli_int.h"
#include "lib/file.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "msgauth/dkim_key.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>

#define OPENDKIM_CONTAINER_KEYS "/etc/opendkim/keys"

/*
 * Writes a file that must not exist yet: temporary file, fsync, link() into
 * place (which, unlike rename, refuses to replace), fsync the directory.
 * 1 = written, 0 = it already existed (untouched), -1 = error.
 */
static int
write_new_file(const char *path, const char *data, size_t len, mode_t mode,
    gid_t gid, char **error_r)
{
	char *tmp = xasprintf("%s.tegami-tmp.%ld", path, (long)getpid());
	int fd, r = -1;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    mode);
	if (fd < 0 || fchmod(fd, mode) < 0 ||
	    (gid != (gid_t)-1 && fchown(fd, (uid_t)-1, gid) < 0) ||
	    write_full(fd, data, len) < 0 || fsync(fd) < 0) {
		*error_r = xasprintf("cannot write %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		free(tmp);
		return -1;
	}
	close(fd);
	if (link(tmp, path) < 0) {
		if (errno == EEXIST)
			r = 0;
		else
			*error_r = xasprintf("cannot create %s: %s", path,
			    strerror(errno));
	} else if (fsync_parent(path) < 0) {
		*error_r = xasprintf("cannot fsync the directory of %s: %s",
		    path, strerror(errno));
	} else {
		r = 1;
	}
	unlink(tmp);
	free(tmp);
	return r;
}

struct dkim_opts {
	unsigned int keysize;
	const char *selector;
	const char *domains;
	bool ed25519;
};

static int
parse_opts(struct cli *cli, int argc, char **argv, struct dkim_opts *o)
{
	o->keysize = 2048;
	o->selector = "mail";
	o->domains = NULL;
	o->ed25519 = false;
	for (int i = 1; i < argc; i += 2) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(opt, "keysize") != 0 && strcmp(opt, "selector") != 0 &&
		    strcmp(opt, "domain") != 0 && strcmp(opt, "keytype") != 0)
			return cli_error(cli, "unknown option '%s'; usage: %s "
			    "config dkim [keysize <BITS>] [selector <SELECTOR>] "
			    "[domain '<D1>,<D2>'] [keytype rsa|ed25519]", opt,
			    cli->prog), -1;
		if (val == NULL || val[0] == '\0')
			return cli_error(cli, "no value given after '%s'", opt), -1;
		if (strcmp(opt, "keysize") == 0) {
			if (strcmp(val, "1024") == 0)
				o->keysize = 1024;
			else if (strcmp(val, "2048") == 0)
				o->keysize = 2048;
			else if (strcmp(val, "3072") == 0)
				o->keysize = 3072;
			else if (strcmp(val, "4096") == 0)
				o->keysize = 4096;
			else
				return cli_error(cli, "invalid keysize '%s': use "
				    "1024, 2048, 3072 or 4096", val), -1;
		} else if (strcmp(opt, "selector") == 0) {
			if (!check_selector(val))
				return cli_error(cli, "invalid selector '%s': one "
				    "DNS label (letters, digits, hyphens)", val), -1;
			o->selector = val;
		} else if (strcmp(opt, "domain") == 0) {
			o->domains = val;
		} else if (strcasecmp(val, "rsa") == 0) {
			o->ed25519 = false;
		} else if (strcasecmp(val, "ed25519") == 0) {
			o->ed25519 = true;
		} else {
			return cli_error(cli, "invalid keytype '%s': use rsa or "
			    "ed25519", val), -1;
		}
	}
	return 0;
}

/* The checked, lower-cased, de-duplicated domains of the `domain` option. */
static char **
domains_arg(struct cli *cli, const char *arg)
{
	size_t n, w = 0;
	char **list = str_split(arg, ",", &n);

	for (size_t i = 0; i < n; i++) {
		bool dup = false;

		str_lower(list[i]);
		if (!check_domain(list[i])) {
			cli_error(cli, "'%s' is not a valid domain (e.g. "
			    "example.com)", list[i]);
			str_array_free(list);
			return NULL;
		}
		for (size_t j = 0; j < w; j++)
			dup = dup || strcmp(list[j], list[i]) == 0;
		if (dup) {
			free(list[i]);
			continue;
		}
		list[w++] = list[i];
	}
	list[w] = NULL;
	if (w == 0) {
		str_array_free(list);
		cli_error(cli, "no domain given after 'domain'");
		return NULL;
	}
	return list;
}

/* One key: made when missing, its .txt written when missing. */
static int
make_key(struct cli *cli, const char *keydir, const char *domain,
    const char *selector, enum dkim_key_type type, unsigned int bits)
{
	char *priv = xasprintf("%s/%s.private", keydir, selector);
	char *txt = xasprintf("%s/%s.txt", keydir, selector);
	char *pem = NULL, *record = NULL, *snippet = NULL, *err = NULL;
	const char *why;
	size_t len = 0;
	int w, r = -1;

	if (file_read_all(priv, 1024 * 1024, &pem, &len) == 0) {
		printf("DKIM key %s exists: kept\n", priv);
	} else if (errno != ENOENT) {
		cli_error(cli, "cannot read %s: %s", priv, strerror(errno));
		goto out;
	} else {
		if (dkim_key_generate(type, bits, &pem, &why) < 0) {
			cli_error(cli, "%s: %s", priv, why);
			goto out;
		}
		len = strlen(pem);
		/*
		 * The queue worker signs as DMS_VMAIL_UID/GID: when root makes
		 * the key, the group may read it (0640 root:<vmail gid>).
		 */
		w = geteuid() == 0 ?
		    write_new_file(priv, pem, len, 0640, (gid_t)config_num(
		    cli->set->cfg, "DMS_VMAIL_GID"), &err) :
		    write_new_file(priv, pem, len, 0600, (gid_t)-1, &err);
		if (w < 0) {
			cli_error(cli, "%s", err);
			goto out;
		}
		if (w == 0) {
			/* Made meanwhile by someone else: theirs wins. */
			str_wipe(pem, len);
			free(pem);
			pem = NULL;
			if (file_read_all(priv, 1024 * 1024, &pem, &len) < 0) {
				cli_error(cli, "cannot read %s: %s", priv,
				    strerror(errno));
				goto out;
			}
		} else {
			printf("Created DKIM %s key %s\n", type == DKIM_KEY_RSA ?
			    "RSA" : "Ed25519", priv);
		}
	}
	if (dkim_key_record(pem, len, &record, NULL, NULL, &why) < 0) {
		cli_error(cli, "%s: %s", priv, why);
		goto out;
	}
	snippet = dkim_key_zone_snippet(selector, domain, record);
	if (write_new_file(txt, snippet, strlen(snippet), 0644, (gid_t)-1,
	    &err) < 0) {
		cli_error(cli, "%s", err);
		goto out;
	}
	r = 0;
out:
	if (pem != NULL) {
		str_wipe(pem, len);
		free(pem);
	}
	free(record);
	free(snippet);
	free(err);
	free(priv);
	free(txt);
	return r;
}

static void
tables_add(struct dbfile *keytable, struct dbfile *signing,
    const char *domain, const char *selector)
{
	char *entry = xasprintf("%s._domainkey.%s", selector, domain);
	char *who = xasprintf("*@%s", domain);
	bool found = false;

	if (dbfile_find(keytable, entry, 0) < 0) {
		char *line = xasprintf("%s %s:%s:" OPENDKIM_CONTAINER_KEYS
		    "/%s/%s.private", entry, domain, selector, domain, selector);

		dbfile_append(keytable, line);
		free(line);
	}
	for (long i = dbfile_find(signing, who, 0); i >= 0 && !found;
	    i = dbfile_find(signing, who, (size_t)i + 1)) {
		const char *v = dbfile_value(signing, (size_t)i);
		size_t n = strlen(entry);

		/* Same key name, maybe followed by white space only. */
		found = strncasecmp(v, entry, n) == 0 &&
		    v[n + strspn(v + n, " \t")] == '\0';
	}
	if (!found) {
		char *line = xasprintf("%s %s", who, entry);

		dbfile_append(signing, line);
		free(line);
	}
	free(who);
	free(entry);
}

int
cmd_config_dkim(struct cli *cli, int argc, char **argv)
{
	struct dkim_opts o;
	struct dbfile *keytable = NULL, *signing = NULL, *trusted = NULL;
	char **domains = NULL, *base = NULL, *ed_selector = NULL;
	int r = CLI_FAIL;

	if (parse_opts(cli, argc, argv, &o) < 0)
		return CLI_FAIL;
	ed_selector = xasprintf("%s-ed25519", o.selector);
	if (o.ed25519 && !check_selector(ed_selector)) {
		cli_error(cli, "selector '%s' is too long for '%s'", o.selector,
		    ed_selector);
		goto out;
	}
	domains = o.domains != NULL ? domains_arg(cli, o.domains) :
	    cli_local_domains(cli);
	if (domains == NULL)
		goto out;
	if (domains[0] == NULL) {
		cli_note(cli, "no accounts or aliases yet, so no domain to make "
		    "keys for; add accounts first or name the domains: %s config "
		    "dkim domain 'example.com'", cli->prog);
		r = CLI_OK;
		goto out;
	}
	if (cli_begin_edit(cli) < 0)
		goto out;
	base = cli_path(cli, "opendkim");
	if (mkdir_p(base, 0755) < 0) {
		cli_error(cli, "cannot create %s: %s", base, strerror(errno));
		goto out;
	}
	if (cli_open(cli, "opendkim/KeyTable", DBFILE_DELIM_SPACE, MODE_PUBLIC,
	    &keytable) < 0 ||
	    cli_open(cli, "opendkim/SigningTable", DBFILE_DELIM_SPACE,
	    MODE_PUBLIC, &signing) < 0 ||
	    cli_open(cli, "opendkim/TrustedHosts", DBFILE_DELIM_SPACE,
	    MODE_PUBLIC, &trusted) < 0)
		goto out;
	for (size_t i = 0; domains[i] != NULL; i++) {
		char *keydir = xasprintf("%s/keys/%s", base, domains[i]);
		int k;

		if (mkdir_p(keydir, 0755) < 0) {
			cli_error(cli, "cannot create %s: %s", keydir,
			    strerror(errno));
			free(keydir);
			goto out;
		}
		k = make_key(cli, keydir, domains[i], o.selector, DKIM_KEY_RSA,
		    o.keysize);
		if (k == 0 && o.ed25519)
			k = make_key(cli, keydir, domains[i], ed_selector,
			    DKIM_KEY_ED25519, 0);
		free(keydir);
		if (k < 0)
			goto out;
		tables_add(keytable, signing, domains[i], o.selector);
		if (o.ed25519)
			tables_add(keytable, signing, domains[i], ed_selector);
	}
	if (dbfile_count(trusted) == 0) {
		dbfile_append(trusted, "127.0.0.1");
		dbfile_append(trusted, "localhost");
	}
	if (cli_commit(cli, keytable) < 0 || cli_commit(cli, signing) < 0 ||
	    cli_commit(cli, trusted) < 0)
		goto out;
	printf("Publish the DNS records `%s dns` prints.\n", cli->prog);
	r = CLI_OK;
out:
	dbfile_free(&keytable);
	dbfile_free(&signing);
	dbfile_free(&trusted);
	str_array_free(domains);
	free(base);
	free(ed_selector);
	return r;
}
