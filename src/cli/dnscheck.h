/*
 * dnscheck: what is published in DNS, compared with what tegami needs, for
 * `tegami check`. Each check adds one item to a report: a level (OK, WARN,
 * FAIL), a one-line verdict, and for anything not OK what is published,
 * what it should be and what to publish instead.
 *
 * DNS comes through a struct msgauth_dns (synchronous), so the same code
 * runs on the libunbound resolver in the command and on a static zone in
 * the unit tests. SPF is evaluated by msgauth/spf.c, DKIM key records are
 * parsed by msgauth/dkim_verify.c, DMARC records by msgauth/dmarc.c: the
 * verdicts are the ones tegami itself (and any receiver doing the same)
 * would reach.
 *
 * The records suggested are the ones `tegami dns` prints (the constants
 * and dnscheck_expected_*() below are shared with it).
 */
#ifndef TEGAMI_CLI_DNSCHECK_H
#define TEGAMI_CLI_DNSCHECK_H

#include "msgauth/dns_iface.h"
#include "msgauth/psl.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* What `tegami dns` prints and the fixes suggest. */
#define DNSCHECK_TTL 3600
#define DNSCHECK_MX_PRIORITY 10
#define DNSCHECK_MAX_IPS 4

enum dnscheck_level {
	DNSCHECK_OK,
	DNSCHECK_WARN,
	DNSCHECK_FAIL,
};

struct dnscheck_report;
struct dnscheck_item;

struct dnscheck_report *dnscheck_report_new(void);
void dnscheck_report_free(struct dnscheck_report **rep);

/* Starts a group of items printed under a heading. */
void dnscheck_section(struct dnscheck_report *rep, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * Adds a check: title names what was looked at ("MX example.com"), the
 * rest is the verdict. The item belongs to the report.
 */
struct dnscheck_item *dnscheck_add(struct dnscheck_report *rep,
    enum dnscheck_level level, const char *title, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Detail lines of an item, printed in the order added. */
void dnscheck_published(struct dnscheck_item *it, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void dnscheck_expected(struct dnscheck_item *it, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void dnscheck_fix(struct dnscheck_item *it, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Any other detail; label is a static string such as "tried:". */
void dnscheck_detail(struct dnscheck_item *it, const char *label,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Prints the report: headings, one line per check ("OK   ", "WARN ",
 * "FAIL " then "title: verdict"), details indented under it, and a summary
 * line. quiet: only the items that are not OK, with their details, and
 * nothing at all when everything is OK.
 */
void dnscheck_print(const struct dnscheck_report *rep, FILE *out, bool quiet);
void dnscheck_counts(const struct dnscheck_report *rep, unsigned int *ok_r,
    unsigned int *warn_r, unsigned int *fail_r);

/*
 * The mail host as the checks see it. Filled by dnscheck_host(); the
 * caller sets name and the configured addresses first.
 */
struct dnscheck_host {
	const char *name;		/* OVERRIDE_HOSTNAME, lower case */
	/* TEGAMI_PUBLIC_IPV4 / _IPV6 (family 0 when not set) */
	struct msgauth_ip conf_v4, conf_v6;
	/* What the host name's A / AAAA records hold. */
	struct msgauth_dns_addrs a, aaaa;
	/*
	 * The server's addresses for SPF and PTR: the configured ones, and
	 * for a family that is not configured, the published ones (then
	 * *_guessed is set and the verdicts say so).
	 */
	struct msgauth_ip ip[DNSCHECK_MAX_IPS];
	size_t nip;
	bool v4_guessed, v6_guessed;
	/*
	 * The names the TLS certificate must cover: the host name, then
	 * every MX target of a local domain that is this server under
	 * another name (added by dnscheck_mx). NULL-terminated.
	 */
	char **cert_names;
};

void dnscheck_host_free(struct dnscheck_host *host);

/* 1. A / AAAA of the host name against TEGAMI_PUBLIC_IPV4 / _IPV6. */
void dnscheck_host(struct dnscheck_report *rep, const struct msgauth_dns *dns,
    struct dnscheck_host *host);
/* 2. The PTR of each address names the host name, and the name resolves
 * back to the address (forward-confirmed reverse DNS). */
void dnscheck_ptr(struct dnscheck_report *rep, const struct msgauth_dns *dns,
    const struct dnscheck_host *host);
/* 3. The MX of domain names the host name (or another name of it). */
void dnscheck_mx(struct dnscheck_report *rep, const struct msgauth_dns *dns,
    const char *domain, struct dnscheck_host *host);
/* 4. Exactly one SPF record, passing the server's addresses. strict: the
 * record suggested ends in -all (as `tegami dns --strict`). */
void dnscheck_spf(struct dnscheck_report *rep, const struct msgauth_dns *dns,
    const char *domain, const struct dnscheck_host *host, bool strict);

/* One DKIM key on disk, as `tegami dns` publishes it. */
struct dnscheck_dkim_key {
	const char *selector;
	const char *file;	/* for the messages: keys/<domain>/<s>.private */
	const char *record;	/* derived from the private key */
	const char *kind;	/* "RSA 2048", "Ed25519" */
};
/* 5. The TXT at <selector>._domainkey.<domain> holds the key on disk. */
void dnscheck_dkim(struct dnscheck_report *rep, const struct msgauth_dns *dns,
    const char *domain, const struct dnscheck_dkim_key *key);

/*
 * Is a DMARC report address deliverable here? *local_r: its domain is
 * one of ours; return true when it is an account or an alias.
 */
typedef bool dnscheck_address_fn(void *ctx, const char *address,
    bool *local_r);
/* 6. A valid DMARC record for domain (or its organizational domain). */
void dnscheck_dmarc(struct dnscheck_report *rep, const struct msgauth_dns *dns,
    const struct psl *psl, const char *domain,
    dnscheck_address_fn *address_fn, void *ctx);

/* ---- The pure parts, apart for the unit tests. */

/* The record `tegami dns` suggests. */
const char *dnscheck_expected_spf(bool strict);
char *dnscheck_expected_dmarc(const char *domain);

/* A TXT value as zone-file strings: "..." "..." (at most 255 bytes each,
 * the DKIM key starting a string of its own). malloc'd. */
char *dnscheck_txt_quoted(const char *value);

/* Names equal, ignoring case and one trailing dot? */
bool dnscheck_name_eq(const char *a, const char *b);

/*
 * Which of the TXT records are SPF version 1 records (RFC 7208 §4.5:
 * "v=spf1" followed by a space or the end; other TXT records are not
 * SPF). Their indexes into txt go to idx_r (at most max); returns how
 * many there are (which may be more than max).
 */
size_t dnscheck_spf_records(const struct msgauth_dns_txt *txt, size_t *idx_r,
    size_t max);
/* The same for DMARC (RFC 7489 §6.6.3: the record starts "v=DMARC1"). */
size_t dnscheck_dmarc_records(const struct msgauth_dns_txt *txt,
    size_t *idx_r, size_t max);

/*
 * An SPF record with terms added right after "v=spf1", so they are
 * evaluated first and nothing the record already allows is lost.
 * malloc'd.
 */
char *dnscheck_spf_with(const char *record, size_t len, const char *terms);

enum dnscheck_key_match {
	DNSCHECK_KEY_SAME,	/* the same public key */
	DNSCHECK_KEY_OTHER,	/* a valid record with another key (stale) */
	DNSCHECK_KEY_OTHER_TYPE,	/* k= differs (rsa vs ed25519) */
	DNSCHECK_KEY_REVOKED,	/* p= is empty */
	DNSCHECK_KEY_INVALID,	/* not a DKIM key record */
};

/*
 * Compares a published DKIM key record with the record derived from the
 * private key (both parsed with dkim_key_record_parse, so whitespace in
 * p=, tag order and optional tags do not matter; the decoded keys are
 * compared). *why_r: the parser's reason for INVALID.
 */
enum dnscheck_key_match dnscheck_dkim_compare(const char *expected,
    const char *published, size_t len, const char **why_r);

/*
 * The mailto: addresses of a DMARC rua=/ruf= list ("mailto:a@b.example!10m,
 * mailto:c@d.example"), lower-cased, size limits and %-escapes removed;
 * other URI schemes are skipped. NULL-terminated (str_array_free); NULL
 * when there are none.
 */
char **dnscheck_mailto_addresses(const char *uris);

#endif
