/*
 * dnscheck: the DNS half of `tegami check` (see dnscheck.h). Every verdict
 * names what was looked at; every non-OK verdict carries what is
 * published, what should be, and the record (or the step) that fixes it.
 */
#include "cli/dnscheck.h"
#include "dns/dns.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "msgauth/dkim_key.h"
#include "msgauth/dkim_verify.h"
#include "msgauth/dmarc.h"
#include "msgauth/spf.h"

#include <ctype.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/*
 * Addresses no one sends from, outside every range a real record lists
 * (reserved 240/4, RFC 1112; the discard prefix, RFC 6666): what a
 * forger gets.
 */
#define FOREIGN_V4 "240.0.0.1"
#define FOREIGN_V6 "100::1"
/* MX targets looked at (each costs two lookups). */
#define MX_CHECK_MAX 10

#define TEMPFAIL_TEXT "could not look it up (DNS temporary failure: the " \
	"resolver timed out or answered SERVFAIL)"
#define TEMPFAIL_FIX "check the resolver (TEGAMI_DNS_SERVERS or " \
	"/etc/resolv.conf) and run this again"

struct detail {
	const char *label;
	char *text;
};

struct dnscheck_item {
	enum dnscheck_level level;
	size_t section;		/* index + 1 into the report's sections; 0: none */
	char *title;
	char *text;
	struct detail *details;
	size_t ndetails;
};

struct dnscheck_report {
	char **sections;
	size_t nsections;
	struct dnscheck_item **items;
	size_t count;
};

/* ------------------------------------------------------------------ */
/* The report.                                                         */

struct dnscheck_report *
dnscheck_report_new(void)
{
	return xcalloc(1, sizeof(struct dnscheck_report));
}

void
dnscheck_report_free(struct dnscheck_report **repp)
{
	struct dnscheck_report *rep = *repp;

	if (rep == NULL)
		return;
	for (size_t i = 0; i < rep->count; i++) {
		struct dnscheck_item *it = rep->items[i];

		for (size_t k = 0; k < it->ndetails; k++)
			free(it->details[k].text);
		free(it->details);
		free(it->title);
		free(it->text);
		free(it);
	}
	for (size_t i = 0; i < rep->nsections; i++)
		free(rep->sections[i]);
	free(rep->sections);
	free(rep->items);
	free(rep);
	*repp = NULL;
}

static char *vformat(const char *fmt, va_list ap)
	__attribute__((format(printf, 1, 0)));

static char *
vformat(const char *fmt, va_list ap)
{
	va_list copy;
	int n;
	char *s;

	va_copy(copy, ap);
	n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n < 0)
		return xstrdup("");
	s = xmalloc((size_t)n + 1);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

void
dnscheck_section(struct dnscheck_report *rep, const char *fmt, ...)
{
	va_list ap;

	rep->sections = xreallocarray(rep->sections, rep->nsections + 1,
	    sizeof(*rep->sections));
	va_start(ap, fmt);
	rep->sections[rep->nsections++] = vformat(fmt, ap);
	va_end(ap);
}

struct dnscheck_item *
dnscheck_add(struct dnscheck_report *rep, enum dnscheck_level level,
    const char *title, const char *fmt, ...)
{
	struct dnscheck_item *it = xcalloc(1, sizeof(*it));
	va_list ap;

	it->level = level;
	it->section = rep->nsections;
	it->title = xstrdup(title);
	va_start(ap, fmt);
	it->text = vformat(fmt, ap);
	va_end(ap);
	rep->items = xreallocarray(rep->items, rep->count + 1,
	    sizeof(*rep->items));
	rep->items[rep->count++] = it;
	return it;
}

static void add_detail(struct dnscheck_item *it, const char *label,
    const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

static void
add_detail(struct dnscheck_item *it, const char *label, const char *fmt,
    va_list ap)
{
	it->details = xreallocarray(it->details, it->ndetails + 1,
	    sizeof(*it->details));
	it->details[it->ndetails].label = label;
	it->details[it->ndetails].text = vformat(fmt, ap);
	it->ndetails++;
}

void
dnscheck_published(struct dnscheck_item *it, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_detail(it, "published:", fmt, ap);
	va_end(ap);
}

void
dnscheck_expected(struct dnscheck_item *it, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_detail(it, "should be:", fmt, ap);
	va_end(ap);
}

void
dnscheck_fix(struct dnscheck_item *it, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_detail(it, "fix:", fmt, ap);
	va_end(ap);
}

void
dnscheck_detail(struct dnscheck_item *it, const char *label, const char *fmt,
    ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_detail(it, label, fmt, ap);
	va_end(ap);
}

static const char *
level_name(enum dnscheck_level l)
{
	switch (l) {
	case DNSCHECK_OK: return "OK";
	case DNSCHECK_WARN: return "WARN";
	case DNSCHECK_FAIL: return "FAIL";
	}
	return "FAIL";
}

void
dnscheck_counts(const struct dnscheck_report *rep, unsigned int *ok_r,
    unsigned int *warn_r, unsigned int *fail_r)
{
	unsigned int n[3] = { 0, 0, 0 };

	for (size_t i = 0; i < rep->count; i++)
		n[rep->items[i]->level]++;
	*ok_r = n[DNSCHECK_OK];
	*warn_r = n[DNSCHECK_WARN];
	*fail_r = n[DNSCHECK_FAIL];
}

void
dnscheck_print(const struct dnscheck_report *rep, FILE *out, bool quiet)
{
	size_t section = 0;
	unsigned int ok, warn, fail;

	for (size_t i = 0; i < rep->count; i++) {
		const struct dnscheck_item *it = rep->items[i];

		if (quiet && it->level == DNSCHECK_OK)
			continue;
		if (!quiet && it->section != section) {
			/* Headings of empty sections are skipped with them. */
			section = it->section;
			if (section > 0)
				fprintf(out, "\n%s\n", rep->sections[section - 1]);
		}
		fprintf(out, "%-4s %s: %s\n", level_name(it->level), it->title,
		    it->text);
		for (size_t k = 0; k < it->ndetails; k++)
			fprintf(out, "     %-10s %s\n", it->details[k].label,
			    it->details[k].text);
	}
	if (quiet)
		return;
	dnscheck_counts(rep, &ok, &warn, &fail);
	fprintf(out, "\nsummary: %u OK, %u WARN, %u FAIL\n", ok, warn, fail);
}

/* ------------------------------------------------------------------ */
/* Pure helpers.                                                       */

const char *
dnscheck_expected_spf(bool strict)
{
	return strict ? "v=spf1 mx -all" : "v=spf1 mx ~all";
}

char *
dnscheck_expected_dmarc(const char *domain)
{
	return xasprintf("v=DMARC1; p=quarantine; adkim=r; aspf=r; "
	    "rua=mailto:postmaster@%s", domain);
}

char *
dnscheck_txt_quoted(const char *value)
{
	size_t n;
	char **parts = dkim_txt_split(value, DKIM_TXT_STRING_MAX, &n);
	char *out = xstrdup(""), *next;

	for (size_t i = 0; i < n; i++) {
		char *q = xmalloc(2 * strlen(parts[i]) + 1), *p = q;

		for (const char *c = parts[i]; *c != '\0'; c++) {
			if (*c == '"' || *c == '\\')
				*p++ = '\\';
			*p++ = *c;
		}
		*p = '\0';
		next = xasprintf("%s%s\"%s\"", out, i == 0 ? "" : " ", q);
		free(out);
		free(q);
		out = next;
	}
	str_array_free(parts);
	return out;
}

bool
dnscheck_name_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

size_t
dnscheck_spf_records(const struct msgauth_dns_txt *txt, size_t *idx_r,
    size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < txt->count; i++) {
		if (!spf_record_is_spf1(txt->txt[i], txt->len[i]))
			continue;
		if (n < max)
			idx_r[n] = i;
		n++;
	}
	return n;
}

/* "v" *WSP "=" *WSP "DMARC1" then WSP, ';' or the end (RFC 7489 §6.4). */
static bool
is_dmarc1(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i >= len || s[i++] != 'v')
		return false;
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i >= len || s[i++] != '=')
		return false;
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (len - i < 6 || memcmp(s + i, "DMARC1", 6) != 0)
		return false;
	i += 6;
	return i == len || s[i] == ' ' || s[i] == '\t' || s[i] == ';';
}

size_t
dnscheck_dmarc_records(const struct msgauth_dns_txt *txt, size_t *idx_r,
    size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < txt->count; i++) {
		if (!is_dmarc1(txt->txt[i], txt->len[i]))
			continue;
		if (n < max)
			idx_r[n] = i;
		n++;
	}
	return n;
}

char *
dnscheck_spf_with(const char *record, size_t len, const char *terms)
{
	/* The caller checked spf_record_is_spf1: "v=spf1" then SP or end. */
	const char *rest = record + 6;
	size_t restlen = len >= 6 ? len - 6 : 0;

	while (restlen > 0 && *rest == ' ') {
		rest++;
		restlen--;
	}
	if (restlen == 0)
		return xasprintf("v=spf1 %s", terms);
	return xasprintf("v=spf1 %s %.*s", terms, (int)restlen, rest);
}

enum dnscheck_key_match
dnscheck_dkim_compare(const char *expected, const char *published, size_t len,
    const char **why_r)
{
	struct dkim_key_record want, got;
	enum dnscheck_key_match m;
	const char *why;

	*why_r = NULL;
	if (dkim_key_record_parse(published, len, &got, why_r) < 0)
		return DNSCHECK_KEY_INVALID;
	if (dkim_key_record_parse(expected, strlen(expected), &want, &why) < 0) {
		/* Ours comes from dkim_key_record(): it always parses. */
		dkim_key_record_free(&got);
		*why_r = why;
		return DNSCHECK_KEY_INVALID;
	}
	if (got.revoked)
		m = DNSCHECK_KEY_REVOKED;
	else if (got.key_type != want.key_type)
		m = DNSCHECK_KEY_OTHER_TYPE;
	else if (got.p_len == want.p_len &&
	    memcmp(got.p, want.p, got.p_len) == 0)
		m = DNSCHECK_KEY_SAME;
	else
		m = DNSCHECK_KEY_OTHER;
	dkim_key_record_free(&got);
	dkim_key_record_free(&want);
	return m;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

char **
dnscheck_mailto_addresses(const char *uris)
{
	char **parts = str_split(uris, ",", NULL), **out = NULL;
	size_t n = 0;

	for (size_t i = 0; parts[i] != NULL; i++) {
		char *u = str_trim(parts[i]), *bang, *addr, *w;

		if (strncasecmp(u, "mailto:", 7) != 0)
			continue;
		u += 7;
		/* "!10m" is a size limit (RFC 7489 §6.2), not the address. */
		if ((bang = strchr(u, '!')) != NULL)
			*bang = '\0';
		addr = w = xstrdup(u);
		for (const char *r = u; *r != '\0'; r++) {
			int hi, lo;

			if (*r == '%' && (hi = hexval(r[1])) >= 0 &&
			    (lo = hexval(r[2])) >= 0) {
				*w++ = (char)(hi * 16 + lo);
				r += 2;
			} else {
				*w++ = *r;
			}
		}
		*w = '\0';
		if (addr[0] == '\0' || strchr(addr, '@') == NULL) {
			free(addr);
			continue;
		}
		out = xreallocarray(out, n + 2, sizeof(*out));
		out[n++] = str_lower(addr);
		out[n] = NULL;
	}
	str_array_free(parts);
	return out;
}

/* ------------------------------------------------------------------ */
/* Formatting.                                                         */

static void
ip_text(const struct msgauth_ip *ip, char *out, size_t outsize)
{
	msgauth_ip_format(ip, out, outsize);
}

/* "a, b and c" of the addresses. malloc'd. */
static char *
addrs_text(const struct msgauth_dns_addrs *a)
{
	char *out = xstrdup(""), *next, t[64];

	for (size_t i = 0; i < a->count; i++) {
		ip_text(&a->ip[i], t, sizeof(t));
		next = xasprintf("%s%s%s", out, i == 0 ? "" : i + 1 == a->count ?
		    " and " : ", ", t);
		free(out);
		out = next;
	}
	return out;
}

static bool
addrs_have(const struct msgauth_dns_addrs *a, const struct msgauth_ip *ip)
{
	for (size_t i = 0; i < a->count; i++)
		if (msgauth_ip_equal(&a->ip[i], ip))
			return true;
	return false;
}

/* The reverse name of an address, as the PTR is published. */
static void
reverse_name(const struct msgauth_ip *ip, char *out, size_t outsize)
{
	struct dns_addr a;

	memset(&a, 0, sizeof(a));
	a.family = ip->family == 4 ? AF_INET : AF_INET6;
	memcpy(ip->family == 4 ? (void *)&a.u.v4 : (void *)&a.u.v6, ip->addr,
	    ip->family == 4 ? 4 : 16);
	dns_ptr_name(&a, out, outsize);
}

static void
add_cert_name(struct dnscheck_host *host, const char *name)
{
	size_t n = 0;

	for (; host->cert_names != NULL && host->cert_names[n] != NULL; n++)
		if (dnscheck_name_eq(host->cert_names[n], name))
			return;
	host->cert_names = xreallocarray(host->cert_names, n + 2,
	    sizeof(*host->cert_names));
	host->cert_names[n] = str_lower(xstrdup(name));
	host->cert_names[n + 1] = NULL;
}

void
dnscheck_host_free(struct dnscheck_host *host)
{
	str_array_free(host->cert_names);
	host->cert_names = NULL;
}

static bool
is_ours(const struct dnscheck_host *host, const struct msgauth_ip *ip)
{
	for (size_t i = 0; i < host->nip; i++)
		if (msgauth_ip_equal(&host->ip[i], ip))
			return true;
	return false;
}

/*
 * Sorts record indexes by text: a name's records come in any order from
 * DNS, and the same zone should give the same report every time.
 */
static void
sort_idx(const struct msgauth_dns_txt *txt, size_t *idx, size_t n)
{
	for (size_t i = 1; i < n; i++)
		for (size_t k = i; k > 0 &&
		    strcmp(txt->txt[idx[k - 1]], txt->txt[idx[k]]) > 0; k--) {
			size_t t = idx[k];

			idx[k] = idx[k - 1];
			idx[k - 1] = t;
		}
}

/* ------------------------------------------------------------------ */
/* 1. A / AAAA of the host name.                                       */

static void
check_family(struct dnscheck_report *rep, const struct dnscheck_host *host,
    int family, enum msgauth_dns_rc rc, const struct msgauth_dns_addrs *a)
{
	const char *type = family == 4 ? "A" : "AAAA";
	const char *key = family == 4 ? "TEGAMI_PUBLIC_IPV4" :
	    "TEGAMI_PUBLIC_IPV6";
	const struct msgauth_ip *conf = family == 4 ? &host->conf_v4 :
	    &host->conf_v6;
	char title[MSGAUTH_DNS_NAME_MAX + 8], want[64], t[64], *list;
	struct dnscheck_item *it;

	snprintf(title, sizeof(title), "%s %s", type, host->name);
	if (rc == MSGAUTH_DNS_TEMPFAIL) {
		it = dnscheck_add(rep, DNSCHECK_FAIL, title, TEMPFAIL_TEXT);
		dnscheck_fix(it, TEMPFAIL_FIX);
		return;
	}
	list = addrs_text(a);
	if (conf->family != 0) {
		ip_text(conf, want, sizeof(want));
		if (addrs_have(a, conf) && a->count == 1) {
			dnscheck_add(rep, DNSCHECK_OK, title, "%s, as %s says",
			    list, key);
		} else if (addrs_have(a, conf)) {
			it = dnscheck_add(rep, DNSCHECK_WARN, title, "%s: this "
			    "server (%s) and other addresses; mail sent to the "
			    "others does not reach it", list, want);
			for (size_t i = 0; i < a->count; i++) {
				ip_text(&a->ip[i], t, sizeof(t));
				dnscheck_published(it, "%s. %s %s", host->name,
				    type, t);
			}
			dnscheck_expected(it, "%s. %s %s (only)", host->name,
			    type, want);
			dnscheck_fix(it, "delete the %s records of %s other "
			    "than %s", type, host->name, want);
		} else if (a->count > 0) {
			it = dnscheck_add(rep, DNSCHECK_FAIL, title, "%s, not "
			    "this server's %s (%s): mail for your domains goes "
			    "elsewhere", list, want, key);
			for (size_t i = 0; i < a->count; i++) {
				ip_text(&a->ip[i], t, sizeof(t));
				dnscheck_published(it, "%s. %s %s", host->name,
				    type, t);
			}
			dnscheck_expected(it, "%s. %s %s", host->name, type, want);
			dnscheck_fix(it, "publish %s. %d IN %s %s instead", host->name,
			    DNSCHECK_TTL, type, want);
		} else {
			it = dnscheck_add(rep, DNSCHECK_FAIL, title, "no %s "
			    "record%s: other servers cannot find this one by its "
			    "name", type, rc == MSGAUTH_DNS_NXDOMAIN ?
			    " (the name does not exist)" : "");
			dnscheck_published(it, "nothing");
			dnscheck_expected(it, "%s. %s %s", host->name, type, want);
			dnscheck_fix(it, "publish %s. %d IN %s %s", host->name,
			    DNSCHECK_TTL, type, want);
		}
	} else if (a->count > 0) {
		it = dnscheck_add(rep, DNSCHECK_WARN, title, "%s; tegami does "
		    "not know this server's public IPv%d address, so it cannot "
		    "tell whether that is this server", list, family);
		dnscheck_fix(it, "set %s to the server's public address (`curl "
		    "-%d ifconfig.me` on the server, or your provider's panel) "
		    "and run this again", key, family);
	} else if (family == 4) {
		it = dnscheck_add(rep, DNSCHECK_FAIL, title, "no A record, and "
		    "tegami does not know this server's public IPv4 address");
		dnscheck_published(it, "nothing");
		dnscheck_expected(it, "%s. A <the server's public IPv4 address>",
		    host->name);
		dnscheck_fix(it, "set TEGAMI_PUBLIC_IPV4 (`curl -4 ifconfig.me` "
		    "on the server), publish %s. %d IN A <that address>, and run "
		    "this again", host->name, DNSCHECK_TTL);
	} else {
		dnscheck_add(rep, DNSCHECK_OK, title, "none, and "
		    "TEGAMI_PUBLIC_IPV6 is not set (no IPv6)");
	}
	free(list);
}

void
dnscheck_host(struct dnscheck_report *rep, const struct msgauth_dns *dns,
    struct dnscheck_host *host)
{
	enum msgauth_dns_rc rc4, rc6;

	memset(&host->a, 0, sizeof(host->a));
	memset(&host->aaaa, 0, sizeof(host->aaaa));
	host->nip = 0;
	dnscheck_section(rep, "Mail host %s", host->name);
	rc4 = dns->a(dns->ctx, host->name, &host->a);
	rc6 = dns->aaaa(dns->ctx, host->name, &host->aaaa);
	check_family(rep, host, 4, rc4, &host->a);
	check_family(rep, host, 6, rc6, &host->aaaa);

	/* The server's addresses: configured, else the published ones. */
	host->v4_guessed = host->v6_guessed = false;
	for (int fam = 4; fam <= 6; fam += 2) {
		const struct msgauth_ip *conf = fam == 4 ? &host->conf_v4 :
		    &host->conf_v6;
		const struct msgauth_dns_addrs *pub = fam == 4 ? &host->a :
		    &host->aaaa;

		if (conf->family != 0) {
			host->ip[host->nip++] = *conf;
			continue;
		}
		for (size_t i = 0; i < pub->count &&
		    host->nip < DNSCHECK_MAX_IPS / 2 * (fam == 4 ? 1 : 2); i++) {
			host->ip[host->nip++] = pub->ip[i];
			if (fam == 4)
				host->v4_guessed = true;
			else
				host->v6_guessed = true;
		}
	}
	add_cert_name(host, host->name);
}

static const char *
guess_note(const struct dnscheck_host *host, const struct msgauth_ip *ip)
{
	if (ip->family == 4 && host->v4_guessed)
		return " (an address of the host name's A record: "
		    "TEGAMI_PUBLIC_IPV4 is not set)";
	if (ip->family == 6 && host->v6_guessed)
		return " (an address of the host name's AAAA record: "
		    "TEGAMI_PUBLIC_IPV6 is not set)";
	return "";
}

/* ------------------------------------------------------------------ */
/* 2. PTR.                                                             */

void
dnscheck_ptr(struct dnscheck_report *rep, const struct msgauth_dns *dns,
    const struct dnscheck_host *host)
{
	struct msgauth_dns_names *names = xcalloc(1, sizeof(*names));

	for (size_t i = 0; i < host->nip; i++) {
		const struct msgauth_ip *ip = &host->ip[i];
		const struct msgauth_dns_addrs *fwd = ip->family == 4 ?
		    &host->a : &host->aaaa;
		char t[64], rev[128], title[96];
		struct dnscheck_item *it;
		enum msgauth_dns_rc rc;
		bool named = false;

		ip_text(ip, t, sizeof(t));
		reverse_name(ip, rev, sizeof(rev));
		snprintf(title, sizeof(title), "PTR %s", t);
		memset(names, 0, sizeof(*names));
		rc = ip->family == 4 || ip->family == 6 ?
		    dns->ptr(dns->ctx, ip, names) : MSGAUTH_DNS_NXDOMAIN;
		if (rc == MSGAUTH_DNS_TEMPFAIL) {
			it = dnscheck_add(rep, DNSCHECK_FAIL, title,
			    TEMPFAIL_TEXT);
			dnscheck_fix(it, TEMPFAIL_FIX);
			continue;
		}
		if (rc != MSGAUTH_DNS_FOUND || names->count == 0) {
			it = dnscheck_add(rep, DNSCHECK_FAIL, title, "no PTR "
			    "record%s: Gmail, Outlook and many others refuse or "
			    "junk mail from an address without reverse DNS",
			    guess_note(host, ip));
			dnscheck_published(it, "nothing at %s", rev);
			dnscheck_expected(it, "%s. PTR %s.", rev, host->name);
			dnscheck_fix(it, "ask your VPS provider to set the reverse "
			    "DNS (PTR) of %s to %s (most have it in their control "
			    "panel)", t, host->name);
			continue;
		}
		for (size_t k = 0; k < names->count; k++)
			named = named || dnscheck_name_eq(names->name[k],
			    host->name);
		if (named && addrs_have(fwd, ip) && names->count == 1) {
			dnscheck_add(rep, DNSCHECK_OK, title, "%s, which resolves "
			    "back to %s%s", host->name, t, guess_note(host, ip));
		} else if (named && addrs_have(fwd, ip)) {
			it = dnscheck_add(rep, DNSCHECK_WARN, title, "%zu names, "
			    "%s among them: receivers may take any of them",
			    names->count, host->name);
			for (size_t k = 0; k < names->count; k++)
				dnscheck_published(it, "%s. PTR %s.", rev,
				    names->name[k]);
			dnscheck_expected(it, "%s. PTR %s. (only)", rev,
			    host->name);
			dnscheck_fix(it, "ask your VPS provider to leave only the "
			    "PTR naming %s", host->name);
		} else if (named) {
			char *list = addrs_text(fwd);

			it = dnscheck_add(rep, DNSCHECK_FAIL, title, "%s, but %s "
			    "does not resolve back to %s (forward-confirmed "
			    "reverse DNS fails)", host->name, host->name, t);
			dnscheck_published(it, "%s. PTR %s.", rev, host->name);
			dnscheck_published(it, "%s. %s %s", host->name,
			    ip->family == 4 ? "A" : "AAAA", fwd->count > 0 ?
			    list : "(none)");
			dnscheck_expected(it, "%s. %s %s", host->name,
			    ip->family == 4 ? "A" : "AAAA", t);
			dnscheck_fix(it, "publish %s. %d IN %s %s", host->name,
			    DNSCHECK_TTL, ip->family == 4 ? "A" : "AAAA", t);
			free(list);
		} else {
			it = dnscheck_add(rep, DNSCHECK_FAIL, title, "%s, not the "
			    "host name %s that tegami greets other servers "
			    "with%s", names->name[0], host->name,
			    guess_note(host, ip));
			for (size_t k = 0; k < names->count; k++)
				dnscheck_published(it, "%s. PTR %s.", rev,
				    names->name[k]);
			dnscheck_expected(it, "%s. PTR %s.", rev, host->name);
			dnscheck_fix(it, "ask your VPS provider to set the reverse "
			    "DNS (PTR) of %s to %s", t, host->name);
		}
	}
	free(names);
}

/* ------------------------------------------------------------------ */
/* 3. MX.                                                              */

/* The addresses of name (A then AAAA), into *a. */
static enum msgauth_dns_rc
lookup_addrs(const struct msgauth_dns *dns, const char *name,
    struct msgauth_dns_addrs *a)
{
	struct msgauth_dns_addrs six;
	enum msgauth_dns_rc r4, r6;

	memset(a, 0, sizeof(*a));
	memset(&six, 0, sizeof(six));
	r4 = dns->a(dns->ctx, name, a);
	r6 = dns->aaaa(dns->ctx, name, &six);
	for (size_t i = 0; i < six.count && a->count < MSGAUTH_DNS_MAX_RR; i++)
		a->ip[a->count++] = six.ip[i];
	if (a->count > 0)
		return MSGAUTH_DNS_FOUND;
	if (r4 == MSGAUTH_DNS_TEMPFAIL || r6 == MSGAUTH_DNS_TEMPFAIL)
		return MSGAUTH_DNS_TEMPFAIL;
	return r4 == MSGAUTH_DNS_NXDOMAIN ? MSGAUTH_DNS_NXDOMAIN :
	    MSGAUTH_DNS_NODATA;
}

static bool
addrs_any_ours(const struct dnscheck_host *host,
    const struct msgauth_dns_addrs *a)
{
	for (size_t i = 0; i < a->count; i++)
		if (is_ours(host, &a->ip[i]))
			return true;
	return false;
}

static int
cmp_pref(const void *pa, const void *pb)
{
	const uint16_t *a = pa, *b = pb;

	return (int)a[0] - (int)b[0] != 0 ? (int)a[0] - (int)b[0] :
	    (int)a[1] - (int)b[1];
}

static void
mx_missing(struct dnscheck_report *rep, const struct msgauth_dns *dns,
    const char *domain, const char *title, struct dnscheck_host *host,
    enum msgauth_dns_rc rc)
{
	struct msgauth_dns_addrs a;
	struct dnscheck_item *it;
	enum msgauth_dns_rc arc;
	char *list;

	if (rc == MSGAUTH_DNS_NXDOMAIN) {
		it = dnscheck_add(rep, DNSCHECK_FAIL, title, "the domain does "
		    "not exist in DNS (NXDOMAIN): no mail can reach it");
		dnscheck_published(it, "nothing (no zone for %s)", domain);
		dnscheck_expected(it, "%s. MX %d %s.", domain,
		    DNSCHECK_MX_PRIORITY, host->name);
		dnscheck_fix(it, "publish the zone of %s with %s. %d IN MX %d "
		    "%s.", domain, domain, DNSCHECK_TTL, DNSCHECK_MX_PRIORITY,
		    host->name);
		return;
	}
	/* No MX: senders use the domain's own address (RFC 5321 §5.1). */
	arc = lookup_addrs(dns, domain, &a);
	list = addrs_text(&a);
	if (arc == MSGAUTH_DNS_TEMPFAIL) {
		it = dnscheck_add(rep, DNSCHECK_FAIL, title, "no MX record, and "
		    "the domain's own address %s", TEMPFAIL_TEXT);
		dnscheck_fix(it, TEMPFAIL_FIX);
	} else if (a.count > 0 && addrs_any_ours(host, &a)) {
		/* Senders reach it as <domain>: the certificate must say so. */
		add_cert_name(host, domain);
		it = dnscheck_add(rep, DNSCHECK_WARN, title, "no MX record: "
		    "mail still arrives through the domain's own address %s "
		    "(implicit MX), but some senders want an MX", list);
		dnscheck_published(it, "no MX; %s. A/AAAA %s", domain, list);
		dnscheck_expected(it, "%s. MX %d %s.", domain,
		    DNSCHECK_MX_PRIORITY, host->name);
		dnscheck_fix(it, "publish %s. %d IN MX %d %s.", domain,
		    DNSCHECK_TTL, DNSCHECK_MX_PRIORITY, host->name);
	} else if (a.count > 0) {
		it = dnscheck_add(rep, DNSCHECK_FAIL, title, "no MX record, and "
		    "the domain's own address %s is not this server: mail for "
		    "%s goes there", list, domain);
		dnscheck_published(it, "no MX; %s. A/AAAA %s", domain, list);
		dnscheck_expected(it, "%s. MX %d %s.", domain,
		    DNSCHECK_MX_PRIORITY, host->name);
		dnscheck_fix(it, "publish %s. %d IN MX %d %s.", domain,
		    DNSCHECK_TTL, DNSCHECK_MX_PRIORITY, host->name);
	} else {
		it = dnscheck_add(rep, DNSCHECK_FAIL, title, "no MX record and "
		    "no address: mail for %s cannot be delivered", domain);
		dnscheck_published(it, "nothing");
		dnscheck_expected(it, "%s. MX %d %s.", domain,
		    DNSCHECK_MX_PRIORITY, host->name);
		dnscheck_fix(it, "publish %s. %d IN MX %d %s.", domain,
		    DNSCHECK_TTL, DNSCHECK_MX_PRIORITY, host->name);
	}
	free(list);
}

void
dnscheck_mx(struct dnscheck_report *rep, const struct msgauth_dns *dns,
    const char *domain, struct dnscheck_host *host)
{
	struct msgauth_dns_names *mx = xcalloc(1, sizeof(*mx));
	struct msgauth_dns_addrs a;
	char title[MSGAUTH_DNS_NAME_MAX + 8], *list = xstrdup(""), *next;
	uint16_t order[MSGAUTH_DNS_MAX_RR][2];
	enum { OTHER, HOST, ALIAS } kind[MSGAUTH_DNS_MAX_RR];
	int best_ours = -1, best_other = -1;
	const char *first_other = NULL;
	char *other_addrs = NULL;
	struct dnscheck_item *it;
	enum msgauth_dns_rc rc;

	dnscheck_section(rep, "Domain %s", domain);
	snprintf(title, sizeof(title), "MX %s", domain);
	rc = dns->mx(dns->ctx, domain, mx);
	if (rc == MSGAUTH_DNS_TEMPFAIL) {
		it = dnscheck_add(rep, DNSCHECK_FAIL, title, TEMPFAIL_TEXT);
		dnscheck_fix(it, TEMPFAIL_FIX);
		goto out;
	}
	if (rc != MSGAUTH_DNS_FOUND || mx->count == 0) {
		mx_missing(rep, dns, domain, title, host, rc);
		goto out;
	}
	if (mx->count == 1 && mx->name[0][0] == '\0') {
		it = dnscheck_add(rep, DNSCHECK_FAIL, title, "a null MX (RFC "
		    "7505): the domain says it receives no mail at all");
		dnscheck_published(it, "%s. MX %u .", domain, mx->pref[0]);
		dnscheck_expected(it, "%s. MX %d %s.", domain,
		    DNSCHECK_MX_PRIORITY, host->name);
		dnscheck_fix(it, "delete the null MX and publish %s. %d IN MX %d "
		    "%s.", domain, DNSCHECK_TTL, DNSCHECK_MX_PRIORITY, host->name);
		goto out;
	}
	for (size_t i = 0; i < mx->count; i++) {
		order[i][0] = mx->pref[i];
		order[i][1] = (uint16_t)i;
	}
	qsort(order, mx->count, sizeof(order[0]), cmp_pref);
	for (size_t k = 0; k < mx->count; k++) {
		size_t i = order[k][1];
		const char *name = mx->name[i];
		const char *what;

		bool resolved;

		kind[i] = OTHER;
		memset(&a, 0, sizeof(a));
		resolved = false;
		if (dnscheck_name_eq(name, host->name)) {
			kind[i] = HOST;
		} else if (name[0] != '\0' && k < MX_CHECK_MAX &&
		    lookup_addrs(dns, name, &a) == MSGAUTH_DNS_FOUND) {
			resolved = true;
			if (addrs_any_ours(host, &a)) {
				/* This server under another name: the
				 * certificate must name it too. */
				kind[i] = ALIAS;
				add_cert_name(host, name);
			}
		}
		if (kind[i] != OTHER && best_ours < 0)
			best_ours = mx->pref[i];
		if (kind[i] == OTHER && best_other < 0) {
			best_other = mx->pref[i];
			first_other = name;
			other_addrs = resolved ? addrs_text(&a) :
			    xstrdup("no address");
		}
		what = kind[i] == HOST ? " (this server)" : kind[i] == ALIAS ?
		    " (this server's address)" : name[0] == '\0' ?
		    " (null MX)" : "";
		next = xasprintf("%s%s%u %s%s", list, k == 0 ? "" : ", ",
		    mx->pref[i], name[0] != '\0' ? name : ".", what);
		free(list);
		list = next;
	}
	if (best_ours >= 0 && (best_other < 0 || best_other > best_ours)) {
		dnscheck_add(rep, DNSCHECK_OK, title, "%s", list);
		goto out;
	}
	if (best_ours >= 0) {
		it = dnscheck_add(rep, DNSCHECK_WARN, title, "%s: mail goes "
		    "first to %s, which is not this server", list, first_other);
	} else {
		it = dnscheck_add(rep, DNSCHECK_FAIL, title, "points at %s "
		    "(%s), another host, not at this server (%s)", first_other,
		    other_addrs, host->name);
	}
	for (size_t k = 0; k < mx->count; k++) {
		size_t i = order[k][1];

		dnscheck_published(it, "%s. MX %u %s.", domain, mx->pref[i],
		    mx->name[i]);
	}
	dnscheck_expected(it, "%s. MX %d %s.", domain, DNSCHECK_MX_PRIORITY,
	    host->name);
	if (best_ours >= 0)
		dnscheck_fix(it, "give %s a lower preference number than %s, or "
		    "delete the MX naming %s", host->name, first_other,
		    first_other);
	else
		dnscheck_fix(it, "publish %s. %d IN MX %d %s. instead of the MX "
		    "naming %s", domain, DNSCHECK_TTL, DNSCHECK_MX_PRIORITY,
		    host->name, first_other);
out:
	free(other_addrs);
	free(list);
	free(mx);
}

/* ------------------------------------------------------------------ */
/* 4. SPF.                                                             */

static void
spf_eval(const struct msgauth_dns *dns, const char *domain,
    const struct dnscheck_host *host, const struct msgauth_ip *ip,
    struct spf_outcome *o)
{
	struct spf_request req;
	char *sender = xasprintf("postmaster@%s", domain);

	memset(&req, 0, sizeof(req));
	req.ip = *ip;
	req.sender = sender;
	req.helo = host->name;
	req.receiver = host->name;
	req.now = time(NULL);
	spf_check_host(dns, &req, domain, sender, o);
	free(sender);
}

static void
spf_fix_terms(const struct dnscheck_host *host, const bool *passed,
    char *out, size_t outsize)
{
	size_t off = 0;
	char t[64];

	bool a_added = false;

	/*
	 * A configured address goes in as it is; one only guessed from the
	 * host name's records as "a:<host name>", which follows them.
	 */
	out[0] = '\0';
	for (size_t i = 0; i < host->nip && off < outsize; i++) {
		bool guessed = host->ip[i].family == 4 ? host->v4_guessed :
		    host->v6_guessed;

		if (passed[i] || (guessed && a_added))
			continue;
		if (guessed) {
			off += (size_t)snprintf(out + off, outsize - off, "%sa:%s",
			    off == 0 ? "" : " ", host->name);
			a_added = true;
			continue;
		}
		ip_text(&host->ip[i], t, sizeof(t));
		off += (size_t)snprintf(out + off, outsize - off, "%sip%d:%s",
		    off == 0 ? "" : " ", host->ip[i].family, t);
	}
}

/* An address of this server does not pass: say why and what to publish. */
static void
spf_not_passing(struct dnscheck_report *rep, const char *title,
    const char *domain, const struct dnscheck_host *host, bool strict,
    const char *record, size_t reclen, const char *pub, const bool *passed,
    const struct msgauth_ip *ip, const struct spf_outcome *bad)
{
	struct dnscheck_item *it;
	char t[64], terms[300], why[200], *suggested, *q;

	ip_text(ip, t, sizeof(t));
	switch (bad->result) {
	case SPF_RESULT_PERMERROR:
		it = dnscheck_add(rep, DNSCHECK_FAIL, title, "permerror for %s: "
		    "%s (%u DNS lookups counted); receivers treat the record as "
		    "broken", t, bad->problem, bad->dns_lookups);
		dnscheck_published(it, "%s. TXT %s", domain, pub);
		dnscheck_expected(it, "a record that evaluates within %d DNS "
		    "lookups (include, a, mx, ptr, exists, redirect; those of "
		    "included records count too)", SPF_DNS_LOOKUP_LIMIT);
		if (strstr(bad->problem, "DNS-querying") != NULL ||
		    strstr(bad->problem, "void") != NULL)
			dnscheck_fix(it, "remove the include: terms you do not "
			    "need, or replace them with the ip4:/ip6: ranges they "
			    "stand for");
		else
			dnscheck_fix(it, "correct the record, e.g. publish %s. %d "
			    "IN TXT \"%s\"", domain, DNSCHECK_TTL,
			    dnscheck_expected_spf(strict));
		return;
	case SPF_RESULT_TEMPERROR:
		it = dnscheck_add(rep, DNSCHECK_FAIL, title, "temperror for %s: %s",
		    t, bad->problem);
		dnscheck_published(it, "%s. TXT %s", domain, pub);
		dnscheck_fix(it, TEMPFAIL_FIX);
		return;
	default:
		break;
	}
	/* fail, softfail, neutral: put this server's addresses first */
	spf_fix_terms(host, passed, terms, sizeof(terms));
	suggested = dnscheck_spf_with(record, reclen, terms);
	q = dnscheck_txt_quoted(suggested);
	if (bad->mechanism[0] != '\0' && strcmp(bad->mechanism, "default") != 0)
		snprintf(why, sizeof(why), " (by \"%s\")", bad->mechanism);
	else
		str_copy(why, sizeof(why), " (no term matched)");
	it = dnscheck_add(rep, DNSCHECK_FAIL, title, "%s for %s%s: receivers "
	    "may refuse or junk this server's mail", spf_result_name(bad->result),
	    t, why);
	dnscheck_published(it, "%s. TXT %s", domain, pub);
	dnscheck_expected(it, "a record that passes %s", t);
	dnscheck_fix(it, "publish %s. %d IN TXT %s instead", domain,
	    DNSCHECK_TTL, q);
	free(q);
	free(suggested);
}

/* The fix for a record that does not say no to other senders. */
static void
spf_fix_all(struct dnscheck_item *it, const char *domain, const char *record,
    size_t reclen)
{
	struct spf_record *rec;
	const char *err;
	char *fixed = NULL, *q;

	if (reclen > 5 && memcmp(record + reclen - 5, " ?all", 5) == 0)
		fixed = xasprintf("%.*s ~all", (int)(reclen - 5), record);
	else if (spf_record_parse(record, reclen, &rec, &err) == 0) {
		if (!rec->has_all && rec->redirect == NULL)
			fixed = xasprintf("%.*s ~all", (int)reclen, record);
		spf_record_free(&rec);
	}
	dnscheck_expected(it, "a record ending in ~all (or -all)");
	if (fixed == NULL) {
		dnscheck_fix(it, "end the record (or the one it redirects to) "
		    "with ~all");
		return;
	}
	q = dnscheck_txt_quoted(fixed);
	dnscheck_fix(it, "publish %s. %d IN TXT %s instead", domain,
	    DNSCHECK_TTL, q);
	free(q);
	free(fixed);
}

/* Every address of this server passes; what does a forger get? */
static void
spf_others(struct dnscheck_report *rep, const struct msgauth_dns *dns,
    const char *title, const char *domain, const struct dnscheck_host *host,
    bool strict, const char *record, size_t reclen, const char *pub,
    const char *passes)
{
	const char *fa = host->ip[0].family == 6 ? FOREIGN_V6 : FOREIGN_V4;
	enum dnscheck_level level = DNSCHECK_OK;
	struct dnscheck_item *it;
	struct msgauth_ip foreign;
	struct spf_outcome o;
	char others[256];

	msgauth_ip_parse(fa, &foreign);
	spf_eval(dns, domain, host, &foreign, &o);
	switch (o.result) {
	case SPF_RESULT_FAIL:
	case SPF_RESULT_SOFTFAIL:
		snprintf(others, sizeof(others), "other senders get %s",
		    spf_result_name(o.result));
		break;
	case SPF_RESULT_PASS:
		snprintf(others, sizeof(others), "but any address passes (%s "
		    "too): forgers pass", fa);
		level = DNSCHECK_FAIL;
		break;
	case SPF_RESULT_PERMERROR:
		snprintf(others, sizeof(others), "but for other senders it is a "
		    "permerror (%s)", o.problem);
		level = DNSCHECK_WARN;
		break;
	case SPF_RESULT_TEMPERROR:
		str_copy(others, sizeof(others), "other senders could not be "
		    "evaluated (DNS)");
		break;
	default:
		str_copy(others, sizeof(others), "but other senders get "
		    "neutral: the record does not say no to forgers");
		level = DNSCHECK_WARN;
		break;
	}
	it = dnscheck_add(rep, level, title, "pass for %s; %s", passes, others);
	if (level != DNSCHECK_OK)
		dnscheck_published(it, "%s. TXT %s", domain, pub);
	if (o.result == SPF_RESULT_PASS) {
		dnscheck_expected(it, "a record that ends in ~all or -all and "
		    "passes only your servers");
		dnscheck_fix(it, "publish %s. %d IN TXT \"%s\" instead", domain,
		    DNSCHECK_TTL, dnscheck_expected_spf(strict));
	} else if (o.result == SPF_RESULT_PERMERROR) {
		dnscheck_expected(it, "a record that evaluates within %d DNS "
		    "lookups for every sender", SPF_DNS_LOOKUP_LIMIT);
		dnscheck_fix(it, "remove the include: terms you do not need, or "
		    "replace them with the ip4:/ip6: ranges they stand for");
	} else if (level != DNSCHECK_OK) {
		spf_fix_all(it, domain, record, reclen);
	}
	spf_outcome_free(&o);
}

/* The one SPF record, evaluated for each address of this server. */
static void
spf_record(struct dnscheck_report *rep, const struct msgauth_dns *dns,
    const char *title, const char *domain, const struct dnscheck_host *host,
    bool strict, const char *record, size_t reclen)
{
	char *pub = dnscheck_txt_quoted(record), passes[512] = "", t[64];
	bool passed[DNSCHECK_MAX_IPS] = { false };
	struct dnscheck_item *it;
	struct spf_outcome o[DNSCHECK_MAX_IPS];
	int first_bad = -1;

	if (host->nip == 0) {
		it = dnscheck_add(rep, DNSCHECK_WARN, title, "%s; tegami knows "
		    "no address of this server to evaluate it for", pub);
		dnscheck_fix(it, "set TEGAMI_PUBLIC_IPV4 (and _IPV6) and run "
		    "this again");
		free(pub);
		return;
	}
	/* Every address first, so the fix adds all that do not pass. */
	for (size_t i = 0; i < host->nip; i++) {
		size_t off = strlen(passes);

		spf_eval(dns, domain, host, &host->ip[i], &o[i]);
		passed[i] = o[i].result == SPF_RESULT_PASS;
		ip_text(&host->ip[i], t, sizeof(t));
		if (passed[i])
			snprintf(passes + off, sizeof(passes) - off, "%s%s (by "
			    "\"%s\")", off == 0 ? "" : ", ", t, o[i].mechanism);
		else if (first_bad < 0)
			first_bad = (int)i;
	}
	if (first_bad >= 0)
		spf_not_passing(rep, title, domain, host, strict, record, reclen,
		    pub, passed, &host->ip[first_bad], &o[first_bad]);
	for (size_t i = 0; i < host->nip; i++)
		spf_outcome_free(&o[i]);
	if (first_bad >= 0) {
		free(pub);
		return;
	}
	spf_others(rep, dns, title, domain, host, strict, record, reclen, pub,
	    passes);
	free(pub);
}

void
dnscheck_spf(struct dnscheck_report *rep, const struct msgauth_dns *dns,
    const char *domain, const struct dnscheck_host *host, bool strict)
{
	struct msgauth_dns_txt txt;
	struct dnscheck_item *it;
	char title[MSGAUTH_DNS_NAME_MAX + 8], *q;
	size_t idx[8], n;
	enum msgauth_dns_rc rc;

	snprintf(title, sizeof(title), "SPF %s", domain);
	memset(&txt, 0, sizeof(txt));
	rc = dns->txt(dns->ctx, domain, &txt);
	if (rc == MSGAUTH_DNS_TEMPFAIL) {
		it = dnscheck_add(rep, DNSCHECK_FAIL, title, TEMPFAIL_TEXT);
		dnscheck_fix(it, TEMPFAIL_FIX);
		msgauth_dns_txt_free(&txt);
		return;
	}
	n = rc == MSGAUTH_DNS_FOUND ? dnscheck_spf_records(&txt, idx, 8) : 0;
	if (n == 1) {
		spf_record(rep, dns, title, domain, host, strict, txt.txt[idx[0]],
		    txt.len[idx[0]]);
		msgauth_dns_txt_free(&txt);
		return;
	}
	q = dnscheck_txt_quoted(dnscheck_expected_spf(strict));
	if (n == 0) {
		it = dnscheck_add(rep, DNSCHECK_FAIL, title, "no SPF record: "
		    "receivers cannot tell that this server may send for %s",
		    domain);
		dnscheck_published(it, "no TXT record starting with v=spf1 at %s",
		    domain);
		dnscheck_expected(it, "one SPF record that passes this server");
		dnscheck_fix(it, "publish %s. %d IN TXT %s", domain,
		    DNSCHECK_TTL, q);
	} else {
		sort_idx(&txt, idx, n < 8 ? n : 8);
		it = dnscheck_add(rep, DNSCHECK_FAIL, title, "%zu SPF records: "
		    "receivers treat more than one as an error (permerror) and "
		    "ignore them all", n);
		for (size_t i = 0; i < n && i < 8; i++) {
			char *p = dnscheck_txt_quoted(txt.txt[idx[i]]);

			dnscheck_published(it, "%s. TXT %s", domain, p);
			free(p);
		}
		dnscheck_expected(it, "exactly one TXT record starting with "
		    "v=spf1");
		dnscheck_fix(it, "merge them into one and delete the others, "
		    "e.g. publish only %s. %d IN TXT %s", domain, DNSCHECK_TTL,
		    q);
	}
	free(q);
	msgauth_dns_txt_free(&txt);
}

/* ------------------------------------------------------------------ */
/* 5. DKIM.                                                            */

void
dnscheck_dkim(struct dnscheck_report *rep, const struct msgauth_dns *dns,
    const char *domain, const struct dnscheck_dkim_key *key)
{
	struct msgauth_dns_txt txt;
	struct dnscheck_item *it;
	char name[2 * MSGAUTH_DNS_NAME_MAX], title[2 * MSGAUTH_DNS_NAME_MAX + 8];
	char *want = dnscheck_txt_quoted(key->record);
	enum dnscheck_key_match best = DNSCHECK_KEY_INVALID;
	const char *why = NULL, *w;
	size_t same = 0;
	enum msgauth_dns_rc rc;

	snprintf(name, sizeof(name), "%s._domainkey.%s", key->selector, domain);
	snprintf(title, sizeof(title), "DKIM %s", name);
	memset(&txt, 0, sizeof(txt));
	rc = dns->txt(dns->ctx, name, &txt);
	if (rc == MSGAUTH_DNS_TEMPFAIL) {
		it = dnscheck_add(rep, DNSCHECK_FAIL, title, TEMPFAIL_TEXT);
		dnscheck_fix(it, TEMPFAIL_FIX);
		goto out;
	}
	if (rc != MSGAUTH_DNS_FOUND || txt.count == 0) {
		it = dnscheck_add(rep, DNSCHECK_FAIL, title, "no record: "
		    "receivers cannot check the signatures made with the %s key "
		    "%s", key->kind, key->file);
		dnscheck_published(it, "nothing at %s", name);
		dnscheck_expected(it, "the public key of %s (%s) at %s",
		    key->file, key->kind, name);
		dnscheck_fix(it, "publish %s. %d IN TXT %s", name, DNSCHECK_TTL,
		    want);
		goto out;
	}
	for (size_t i = 0; i < txt.count; i++) {
		enum dnscheck_key_match m = dnscheck_dkim_compare(key->record,
		    txt.txt[i], txt.len[i], &w);

		if (m == DNSCHECK_KEY_SAME)
			same++;
		/* The most telling verdict: same < other < type < revoked < invalid. */
		if (m < best || (m == best && why == NULL)) {
			best = m;
			why = w;
		}
	}
	if (best == DNSCHECK_KEY_SAME) {
		struct dkim_key_record k;
		const char *e;
		size_t i = 0;

		while (dnscheck_dkim_compare(key->record, txt.txt[i], txt.len[i],
		    &e) != DNSCHECK_KEY_SAME)
			i++;
		(void)dkim_key_record_parse(txt.txt[i], txt.len[i], &k, &e);
		if (!k.sha256_ok || !k.email_ok) {
			it = dnscheck_add(rep, DNSCHECK_FAIL, title, "the %s key "
			    "of %s, but %s: receivers will not use it for tegami's "
			    "signatures", key->kind, key->file, !k.sha256_ok ?
			    "its h= does not allow sha256" :
			    "its s= does not allow email");
		} else if (k.testing) {
			it = dnscheck_add(rep, DNSCHECK_WARN, title, "the %s key "
			    "of %s, in testing mode (t=y): receivers may ignore "
			    "failing signatures", key->kind, key->file);
		} else if (txt.count > 1) {
			it = dnscheck_add(rep, DNSCHECK_WARN, title, "the %s key "
			    "of %s, and %zu other records at the same name: "
			    "receivers may take any of them", key->kind,
			    key->file, txt.count - 1);
		} else {
			dnscheck_add(rep, DNSCHECK_OK, title, "the %s key of %s",
			    key->kind, key->file);
			dkim_key_record_free(&k);
			goto out;
		}
		dkim_key_record_free(&k);
	} else {
		switch (best) {
		case DNSCHECK_KEY_OTHER:
			it = dnscheck_add(rep, DNSCHECK_FAIL, title, "another key "
			    "than the %s key in %s (an old key, from before the "
			    "key was made again?): every signature fails",
			    key->kind, key->file);
			break;
		case DNSCHECK_KEY_OTHER_TYPE:
			it = dnscheck_add(rep, DNSCHECK_FAIL, title, "a key of "
			    "another type (k=) than the %s key in %s: every "
			    "signature fails", key->kind, key->file);
			break;
		case DNSCHECK_KEY_REVOKED:
			it = dnscheck_add(rep, DNSCHECK_FAIL, title, "a revoked "
			    "key (empty p=): every signature made with %s fails",
			    key->file);
			break;
		default:
			it = dnscheck_add(rep, DNSCHECK_FAIL, title, "not a valid "
			    "DKIM key record (%s): every signature made with %s "
			    "fails", why != NULL ? why : "unreadable", key->file);
			break;
		}
	}
	size_t order[MSGAUTH_DNS_MAX_RR];

	for (size_t i = 0; i < txt.count; i++)
		order[i] = i;
	sort_idx(&txt, order, txt.count);
	for (size_t i = 0; i < txt.count; i++) {
		char *p = dnscheck_txt_quoted(txt.txt[order[i]]);

		dnscheck_published(it, "%s. TXT %s", name, p);
		free(p);
	}
	dnscheck_expected(it, "the public key of %s (%s)", key->file,
	    key->kind);
	dnscheck_fix(it, "publish %s. %d IN TXT %s%s", name, DNSCHECK_TTL, want,
	    txt.count > 1 || same == 0 ? " and delete the others at that name" :
	    "");
out:
	free(want);
	msgauth_dns_txt_free(&txt);
}

/* ------------------------------------------------------------------ */
/* 6. DMARC.                                                           */

static const char *
align_name(enum dmarc_align a)
{
	return a == DMARC_ALIGN_STRICT ? "s (strict)" : "r (relaxed)";
}

/* "; reports to a@x, b@y" (or that none are asked for) onto text. */
static void
dmarc_rua_text(const struct dmarc_record *rec, char *text, size_t textsize)
{
	char **addrs = dnscheck_mailto_addresses(rec->rua);
	size_t off = strlen(text);

	if (addrs == NULL) {
		snprintf(text + off, textsize - off, "; no reports asked for "
		    "(no rua=)");
		return;
	}
	for (size_t i = 0; addrs[i] != NULL; i++) {
		off = strlen(text);
		snprintf(text + off, textsize - off, "%s%s", i == 0 ?
		    "; reports to " : ", ", addrs[i]);
	}
	str_array_free(addrs);
}

/* Can the reports arrive? A WARN for each address where they cannot. */
static void
dmarc_rua_check(struct dnscheck_report *rep, const struct msgauth_dns *dns,
    const struct psl *psl, const char *domain, const char *title,
    const struct dmarc_record *rec, dnscheck_address_fn *address_fn,
    void *ctx)
{
	char **addrs = dnscheck_mailto_addresses(rec->rua);
	char org_a[MSGAUTH_DNS_NAME_MAX], org_b[MSGAUTH_DNS_NAME_MAX];
	struct dnscheck_item *it;

	for (size_t i = 0; addrs != NULL && addrs[i] != NULL; i++) {
		const char *at = strrchr(addrs[i], '@') + 1;
		bool local = false, exists = address_fn != NULL &&
		    address_fn(ctx, addrs[i], &local);

		if (local && !exists) {
			it = dnscheck_add(rep, DNSCHECK_WARN, title, "reports "
			    "go to %s, which is no account or alias here: they "
			    "bounce", addrs[i]);
			dnscheck_published(it, "rua=%s", rec->rua);
			dnscheck_expected(it, "rua= naming an address that "
			    "receives mail");
			dnscheck_fix(it, "tegami alias add %s <your address>",
			    addrs[i]);
			continue;
		}
		if (local)
			continue;
		/* RFC 7489 §7.1: another organization must say it accepts. */
		if (psl_org_domain(psl, domain, org_a, sizeof(org_a)) == 0 &&
		    psl_org_domain(psl, at, org_b, sizeof(org_b)) == 0 &&
		    strcasecmp(org_a, org_b) != 0) {
			struct msgauth_dns_txt txt;
			char name[3 * MSGAUTH_DNS_NAME_MAX];
			size_t idx[1];

			snprintf(name, sizeof(name), "%s._report._dmarc.%s", domain,
			    at);
			memset(&txt, 0, sizeof(txt));
			if (dns->txt(dns->ctx, name, &txt) != MSGAUTH_DNS_FOUND ||
			    dnscheck_dmarc_records(&txt, idx, 1) == 0) {
				it = dnscheck_add(rep, DNSCHECK_WARN, title,
				    "reports go to %s, at another domain that has "
				    "not published %s: receivers do not send them",
				    addrs[i], name);
				dnscheck_published(it, "nothing at %s", name);
				dnscheck_expected(it, "%s. TXT \"v=DMARC1\"",
				    name);
				dnscheck_fix(it, "ask the owner of %s to publish "
				    "%s. %d IN TXT \"v=DMARC1\", or send the reports "
				    "to an address at %s", at, name, DNSCHECK_TTL,
				    domain);
			}
			msgauth_dns_txt_free(&txt);
		}
	}
	str_array_free(addrs);
}

void
dnscheck_dmarc(struct dnscheck_report *rep, const struct msgauth_dns *dns,
    const struct psl *psl, const char *domain,
    dnscheck_address_fn *address_fn, void *ctx)
{
	struct msgauth_dns_txt txt;
	struct dmarc_record rec;
	struct dnscheck_item *it;
	char title[MSGAUTH_DNS_NAME_MAX + 8], where[MSGAUTH_DNS_NAME_MAX + 8];
	char org[MSGAUTH_DNS_NAME_MAX], text[1024];
	char *want = dnscheck_expected_dmarc(domain), *wantq;
	const char *why;
	size_t idx[8], n = 0;
	enum msgauth_dns_rc rc;
	enum dmarc_policy policy;
	bool from_org = false, org_checked = false;

	wantq = dnscheck_txt_quoted(want);
	snprintf(title, sizeof(title), "DMARC %s", domain);
	snprintf(where, sizeof(where), "_dmarc.%s", domain);
	memset(&txt, 0, sizeof(txt));
	rc = dns->txt(dns->ctx, where, &txt);
	if (rc == MSGAUTH_DNS_FOUND)
		n = dnscheck_dmarc_records(&txt, idx, 8);
	if (rc != MSGAUTH_DNS_TEMPFAIL && n == 0 &&
	    psl_org_domain(psl, domain, org, sizeof(org)) == 0 &&
	    strcasecmp(org, domain) != 0) {
		/* RFC 7489 §6.6.3: the organizational domain's record. */
		msgauth_dns_txt_free(&txt);
		memset(&txt, 0, sizeof(txt));
		snprintf(where, sizeof(where), "_dmarc.%s", org);
		rc = dns->txt(dns->ctx, where, &txt);
		if (rc == MSGAUTH_DNS_FOUND)
			n = dnscheck_dmarc_records(&txt, idx, 8);
		from_org = n > 0;
		org_checked = true;
		if (n == 0)
			snprintf(where, sizeof(where), "_dmarc.%s", domain);
	}
	if (rc == MSGAUTH_DNS_TEMPFAIL) {
		it = dnscheck_add(rep, DNSCHECK_FAIL, title, TEMPFAIL_TEXT);
		dnscheck_fix(it, TEMPFAIL_FIX);
		goto out;
	}
	if (n == 0) {
		it = dnscheck_add(rep, DNSCHECK_FAIL, title, "no DMARC record: "
		    "receivers apply no policy to mail forged in your name, and "
		    "Gmail and Yahoo want one");
		dnscheck_published(it, "no TXT record starting with v=DMARC1 at "
		    "_dmarc.%s%s%s", domain, org_checked ? " nor at _dmarc." : "",
		    org_checked ? org : "");
		dnscheck_expected(it, "one TXT record starting with v=DMARC1 at "
		    "_dmarc.%s", domain);
		dnscheck_fix(it, "publish _dmarc.%s. %d IN TXT %s", domain,
		    DNSCHECK_TTL, wantq);
		goto out;
	}
	if (n > 1) {
		sort_idx(&txt, idx, n < 8 ? n : 8);
		it = dnscheck_add(rep, DNSCHECK_FAIL, title, "%zu DMARC records "
		    "at %s: receivers ignore them all", n, where);
		for (size_t i = 0; i < n && i < 8; i++) {
			char *p = dnscheck_txt_quoted(txt.txt[idx[i]]);

			dnscheck_published(it, "%s. TXT %s", where, p);
			free(p);
		}
		dnscheck_expected(it, "exactly one DMARC record");
		dnscheck_fix(it, "keep one and delete the others, e.g. publish "
		    "only %s. %d IN TXT %s", where, DNSCHECK_TTL, wantq);
		goto out;
	}
	if (dmarc_record_parse(txt.txt[idx[0]], txt.len[idx[0]], &rec,
	    &why) < 0) {
		char *p = dnscheck_txt_quoted(txt.txt[idx[0]]);

		it = dnscheck_add(rep, DNSCHECK_FAIL, title, "the record at %s "
		    "is not valid (%s): receivers ignore it", where, why);
		dnscheck_published(it, "%s. TXT %s", where, p);
		dnscheck_expected(it, "a record that parses: v=DMARC1 first, "
		    "then p=none, quarantine or reject");
		dnscheck_fix(it, "publish _dmarc.%s. %d IN TXT %s instead",
		    domain, DNSCHECK_TTL, wantq);
		free(p);
		goto out;
	}
	policy = from_org && rec.sp != DMARC_POLICY_UNSET ? rec.sp : rec.p;
	if (from_org)
		snprintf(text, sizeof(text), "no record of its own; the "
		    "organizational domain's (%s) applies: %s=%s", where,
		    rec.sp != DMARC_POLICY_UNSET ? "sp" : "p",
		    dmarc_policy_name(policy));
	else
		snprintf(text, sizeof(text), "p=%s", dmarc_policy_name(policy));
	snprintf(text + strlen(text), sizeof(text) - strlen(text),
	    ", adkim=%s, aspf=%s", align_name(rec.adkim), align_name(rec.aspf));
	if (rec.pct < 100)
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
		    ", pct=%u (the policy applies to %u%% of failing mail)",
		    rec.pct, rec.pct);
	dmarc_rua_text(&rec, text, sizeof(text));
	if (policy == DMARC_POLICY_NONE) {
		char *p = dnscheck_txt_quoted(txt.txt[idx[0]]);

		it = dnscheck_add(rep, DNSCHECK_WARN, title, "%s: policy none "
		    "asks receivers to do nothing with mail that fails (fine "
		    "while you watch the reports)", text);
		dnscheck_published(it, "%s. TXT %s", where, p);
		dnscheck_expected(it, "p=quarantine (or reject)");
		dnscheck_fix(it, "once the reports show your own mail passing, "
		    "publish _dmarc.%s. %d IN TXT %s", domain, DNSCHECK_TTL,
		    wantq);
		free(p);
	} else {
		dnscheck_add(rep, DNSCHECK_OK, title, "%s", text);
	}
	dmarc_rua_check(rep, dns, psl, domain, title, &rec, address_fn, ctx);
out:
	free(want);
	free(wantq);
	msgauth_dns_txt_free(&txt);
}
