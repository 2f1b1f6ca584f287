/*
 * dns: every record the operator must publish, per domain, printed twice:
 * as zone-file lines, and as a type / host / value table for a registrar's
 * form. Nothing is guessed: an address tegami was not told is printed as a
 * placeholder with a note saying how to find it.
 */
#include "cli/check.h"
#include "cli/cli_int.h"
#include "cli/dnscheck.h"
#include "dns/dns.h"
#include "lib/file.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "msgauth/dkim_key.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLACEHOLDER_V4 "<your server's public IPv4 address>"
#define PLACEHOLDER_V6 "<your server's public IPv6 address>"

struct record {
	char *type;
	char *name;	/* absolute, without the final dot */
	char *value;	/* one unquoted string (TXT: the whole value) */
	char *note;	/* for the table; may be NULL */
	bool provider;	/* PTR: set by the VPS provider, not in the zone */
};

struct recset {
	struct record *r;
	size_t n;
};

static void
add(struct recset *s, const char *type, const char *name, const char *value,
    char *note, bool provider)
{
	struct record *r;

	s->r = xreallocarray(s->r, s->n + 1, sizeof(*s->r));
	r = &s->r[s->n++];
	r->type = xstrdup(type);
	r->name = xstrdup(name);
	r->value = xstrdup(value);
	r->note = note;
	r->provider = provider;
}

static void
recset_free(struct recset *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->r[i].type);
		free(s->r[i].name);
		free(s->r[i].value);
		free(s->r[i].note);
	}
	free(s->r);
	s->r = NULL;
	s->n = 0;
}

static char *
reverse_name(const char *ip, bool v6)
{
	struct dns_addr a;
	char name[128];

	memset(&a, 0, sizeof(a));
	a.family = v6 ? AF_INET6 : AF_INET;
	inet_pton(a.family, ip, v6 ? (void *)&a.u.v6 : (void *)&a.u.v4);
	dns_ptr_name(&a, name, sizeof(name));
	return xstrdup(name);
}

struct cli_dkim_key *
cli_dkim_keys(struct cli *cli, const char *domain, size_t *n_r)
{
	char *dir = xasprintf("%s/opendkim/keys/%s", cli->config_dir, domain);
	struct dirent **names = NULL;
	struct cli_dkim_key *keys = NULL;
	int n = scandir(dir, &names, NULL, alphasort);

	*n_r = 0;
	for (int i = 0; i < n; i++) {
		const char *fn = names[i]->d_name;
		size_t len = strlen(fn);
		char *sel, *path, *pem = NULL, *record = NULL;
		size_t pemlen = 0;
		enum dkim_key_type type;
		unsigned int bits;
		const char *why;

		if (len <= 8 || strcmp(fn + len - 8, ".private") != 0) {
			free(names[i]);
			continue;
		}
		sel = xstrndup(fn, len - 8);
		path = xasprintf("%s/%s", dir, fn);
		if (!check_selector(sel)) {
			cli_note(cli, "skipping %s: '%s' is not a valid selector",
			    path, sel);
		} else if (file_read_all(path, 1024 * 1024, &pem, &pemlen) < 0) {
			cli_note(cli, "skipping %s: %s", path, strerror(errno));
		} else if (dkim_key_record(pem, pemlen, &record, &type, &bits,
		    &why) < 0) {
			cli_note(cli, "skipping %s: %s", path, why);
		} else {
			keys = xreallocarray(keys, *n_r + 1, sizeof(*keys));
			keys[*n_r].selector = sel;
			keys[*n_r].path = path;
			keys[*n_r].record = record;
			keys[*n_r].type = type;
			keys[*n_r].bits = bits;
			(*n_r)++;
			sel = path = record = NULL;
		}
		if (pem != NULL) {
			str_wipe(pem, pemlen);
			free(pem);
		}
		free(record);
		free(path);
		free(sel);
		free(names[i]);
	}
	free(names);
	free(dir);
	return keys;
}

void
cli_dkim_keys_free(struct cli_dkim_key *keys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(keys[i].selector);
		free(keys[i].path);
		free(keys[i].record);
	}
	free(keys);
}

static void
add_dkim(struct cli *cli, struct recset *s, const char *domain, bool *any_r)
{
	size_t n;
	struct cli_dkim_key *keys = cli_dkim_keys(cli, domain, &n);

	for (size_t i = 0; i < n; i++) {
		char *name = xasprintf("%s._domainkey.%s", keys[i].selector,
		    domain);

		add(s, "TXT", name, keys[i].record, NULL, false);
		free(name);
		*any_r = true;
	}
	cli_dkim_keys_free(keys, n);
}

/* Is there an account or alias that receives postmaster@domain? */
static bool
postmaster_exists(struct cli *cli, const char *domain)
{
	struct dbfile *acc = NULL, *virt = NULL;
	char *pm = xasprintf("postmaster@%s", domain);
	char *catchall = xasprintf("@%s", domain);
	bool found = false;

	if (cli_open(cli, DB_ACCOUNTS, DBFILE_DELIM_PIPE, MODE_SECRET, &acc) == 0 &&
	    cli_open(cli, DB_VIRTUAL, DBFILE_DELIM_SPACE, MODE_PUBLIC, &virt) == 0)
		found = dbfile_find(acc, pm, 0) >= 0 ||
		    dbfile_find(virt, pm, 0) >= 0 ||
		    dbfile_find(virt, catchall, 0) >= 0;
	dbfile_free(&acc);
	dbfile_free(&virt);
	free(pm);
	free(catchall);
	return found;
}

static void
print_zone(const struct recset *s)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct record *r = &s->r[i];
		char *value;

		if (strcmp(r->type, "TXT") == 0)
			value = dnscheck_txt_quoted(r->value);
		else if (strcmp(r->type, "MX") == 0)
			value = xasprintf("%d %s.", DNSCHECK_MX_PRIORITY, r->value);
		else if (strcmp(r->type, "PTR") == 0)
			value = xasprintf("%s.", r->value);
		else
			value = xstrdup(r->value);
		printf("%s%s.\t%d\tIN\t%s\t%s\n", r->provider ? ";   " : "",
		    r->name, DNSCHECK_TTL, r->type, value);
		free(value);
	}
}

static void
print_table(const struct recset *s)
{
	size_t w = 4;

	for (size_t i = 0; i < s->n; i++)
		if (strlen(s->r[i].name) > w)
			w = strlen(s->r[i].name);
	printf("%-5s %-*s  %s\n", "TYPE", (int)w, "HOST", "VALUE");
	for (size_t i = 0; i < s->n; i++) {
		const struct record *r = &s->r[i];

		printf("%-5s %-*s  %s\n", r->type, (int)w, r->name, r->value);
		if (r->note != NULL)
			printf("      ^ %s\n", r->note);
	}
}

/* The note for a TXT value that does not fit one DNS string. */
static char *
long_txt_note(const char *value)
{
	size_t n;
	char **parts = dkim_txt_split(value, DKIM_TXT_STRING_MAX, &n);
	char *quoted, *note;

	str_array_free(parts);
	if (strlen(value) <= DKIM_TXT_STRING_MAX)
		return NULL;
	quoted = dnscheck_txt_quoted(value);
	note = xasprintf("%zu characters: longer than one DNS string (at most "
	    "255). Most forms split it by themselves; if yours refuses it, "
	    "enter these %zu quoted strings one after the other, in one "
	    "value: %s", strlen(value), n, quoted);
	free(quoted);
	return note;
}

char **
cli_record_domains(struct cli *cli, const char *only_arg, const char *cmd)
{
	char **domains;

	if (only_arg != NULL) {
		char *only = str_lower(xstrdup(only_arg));

		if (!check_domain(only)) {
			cli_error(cli, "'%s' is not a valid domain (e.g. "
			    "example.com)", only_arg);
			free(only);
			return NULL;
		}
		domains = xcalloc(2, sizeof(*domains));
		domains[0] = only;
		return domains;
	}
	if ((domains = cli_local_domains(cli)) == NULL)
		return NULL;
	if (domains[0] != NULL)
		return domains;
	str_array_free(domains);
	if (!check_domain(cli->set->domain)) {
		cli_error(cli, "no accounts or aliases yet, and the host name "
		    "'%s' names no domain: add accounts first or name the "
		    "domain: %s %s example.com", cli->set->hostname, cli->prog,
		    cmd);
		return NULL;
	}
	cli_note(cli, "no accounts or aliases yet: %s %s, the host name's "
	    "domain", strcmp(cmd, "check") == 0 ? "checking" :
	    "showing the records for", cli->set->domain);
	domains = xcalloc(2, sizeof(*domains));
	domains[0] = xstrdup(cli->set->domain);
	return domains;
}

int
cmd_dns(struct cli *cli, int argc, char **argv)
{
	const char *v4 = config_str(cli->set->cfg, "TEGAMI_PUBLIC_IPV4");
	const char *v6 = config_str(cli->set->cfg, "TEGAMI_PUBLIC_IPV6");
	const char *host = cli->set->hostname;
	bool strict = false;
	char **domains = NULL, *rev;
	const char *only_arg = NULL;
	unsigned char ipbuf[16];
	struct recset hostrec = { 0 };
	int r = CLI_FAIL;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--check") == 0)
			return cmd_check(cli, argc, argv);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--strict") == 0)
			strict = true;
		else if (only_arg == NULL && argv[i][0] != '-')
			only_arg = argv[i];
		else {
			cli_error(cli, "unexpected argument '%s'; usage: %s dns "
			    "[--strict] [--check [--quiet]] [<DOMAIN>]", argv[i],
			    cli->prog);
			goto out;
		}
	}
	if (*v4 != '\0' && inet_pton(AF_INET, v4, ipbuf) != 1) {
		cli_error(cli, "TEGAMI_PUBLIC_IPV4 '%s' is not an IPv4 address "
		    "(e.g. 203.0.113.5)", v4);
		goto out;
	}
	if (*v6 != '\0' && inet_pton(AF_INET6, v6, ipbuf) != 1) {
		cli_error(cli, "TEGAMI_PUBLIC_IPV6 '%s' is not an IPv6 address "
		    "(e.g. 2001:db8::5)", v6);
		goto out;
	}
	if ((domains = cli_record_domains(cli, only_arg, "dns")) == NULL)
		goto out;

	printf("; DNS records to publish for tegami, mail host %s\n", host);
	if (!check_domain(host))
		printf("; WARNING: the host name '%s' is not a public DNS name. "
		    "Set OVERRIDE_HOSTNAME=mail.example.com (a name in one of "
		    "your domains) and run this again.\n", host);

	/* The mail host: A, AAAA, and the PTR the provider must set. */
	add(&hostrec, "A", host, *v4 != '\0' ? v4 : PLACEHOLDER_V4,
	    *v4 != '\0' ? NULL : xstrdup("tegami does not know the public IPv4 "
	    "address: run `curl -4 ifconfig.me` on the server or look in your "
	    "provider's panel, then set TEGAMI_PUBLIC_IPV4 and run this again"),
	    false);
	add(&hostrec, "AAAA", host, *v6 != '\0' ? v6 : PLACEHOLDER_V6,
	    *v6 != '\0' ? NULL : xstrdup("only if the server has a public IPv6 "
	    "address (`curl -6 ifconfig.me` on the server, or your provider's "
	    "panel; then set TEGAMI_PUBLIC_IPV6); leave this record out "
	    "otherwise"), false);
	if (*v4 != '\0') {
		rev = reverse_name(v4, false);
		add(&hostrec, "PTR", rev, host, xasprintf("not in your zone: your "
		    "VPS provider sets it (\"reverse DNS\" / \"PTR\" in its panel): "
		    "%s -> %s", v4, host), true);
		free(rev);
	} else {
		add(&hostrec, "PTR", "<reversed IPv4>.in-addr.arpa", host,
		    xasprintf("not in your zone: ask your VPS provider (\"reverse "
		    "DNS\" in its panel) to point the server's IPv4 address at %s",
		    host), true);
	}
	if (*v6 != '\0') {
		rev = reverse_name(v6, true);
		add(&hostrec, "PTR", rev, host, xasprintf("not in your zone: your "
		    "VPS provider sets it (\"reverse DNS\" in its panel): %s -> %s",
		    v6, host), true);
		free(rev);
	}

	for (int pass = 0; pass < 2; pass++) {
		if (pass == 0)
			printf("\n;; ==== As zone-file lines ====\n");
		else
			printf("\n;; ==== As a table for a registrar's form: TYPE, "
			    "HOST, VALUE ====\n"
			    ";; HOST is the full name; many forms want it without "
			    "the domain (\"mail._domainkey\" for "
			    "mail._domainkey.example.com, \"@\" for example.com "
			    "itself). VALUE is entered as it is, without quotes.\n");
		printf("\n; -- the mail host %s (in the zone of its domain)\n",
		    host);
		if (pass == 0) {
			print_zone(&hostrec);
			for (size_t i = 0; i < hostrec.n; i++)
				if (hostrec.r[i].note != NULL)
					printf("; %s %s: %s\n", hostrec.r[i].type,
					    hostrec.r[i].name, hostrec.r[i].note);
		} else {
			print_table(&hostrec);
		}
		for (size_t d = 0; domains[d] != NULL; d++) {
			const char *dom = domains[d];
			struct recset rs = { 0 };
			bool dkim = false;
			char *name, *val;

			add(&rs, "MX", dom, host, xasprintf("priority %d (the "
			    "form's priority or preference field)",
			    DNSCHECK_MX_PRIORITY), false);
			add(&rs, "TXT", dom, dnscheck_expected_spf(strict),
			    xstrdup(strict ?
			    "SPF: only the MX hosts send for this domain; other "
			    "senders fail" : "SPF: the MX hosts send for this "
			    "domain; others soft-fail (`tegami dns --strict`: "
			    "-all, hard fail)"), false);
			add_dkim(cli, &rs, dom, &dkim);
			for (size_t i = 0; i < rs.n; i++)
				if (strcmp(rs.r[i].type, "TXT") == 0 &&
				    strstr(rs.r[i].name, "._domainkey.") != NULL)
					rs.r[i].note = long_txt_note(rs.r[i].value);
			name = xasprintf("_dmarc.%s", dom);
			val = dnscheck_expected_dmarc(dom);
			add(&rs, "TXT", name, val, postmaster_exists(cli, dom) ?
			    xasprintf("DMARC: mail that fails SPF and DKIM "
			    "alignment goes to spam; daily reports to "
			    "postmaster@%s", dom) :
			    xasprintf("DMARC reports go to postmaster@%s, which "
			    "does not exist yet: %s alias add postmaster@%s "
			    "<you@%s>", dom, cli->prog, dom, dom), false);
			free(name);
			free(val);

			printf("\n; -- %s\n", dom);
			if (pass == 0) {
				print_zone(&rs);
				if (!dkim)
					printf("; no DKIM key for %s yet: run `%s "
					    "config dkim` first, then this again\n",
					    dom, cli->prog);
			} else {
				print_table(&rs);
				if (!dkim)
					printf("(no DKIM key for %s yet: run `%s "
					    "config dkim` first, then this again)\n",
					    dom, cli->prog);
			}
			recset_free(&rs);
		}
	}
	r = CLI_OK;
out:
	recset_free(&hostrec);
	str_array_free(domains);
	return r;
}
