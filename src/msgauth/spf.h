/*
 * SPF (RFC 7208): record parser, macro expansion, check_host(), the HELO
 * check and the Received-SPF header.
 *
 * Everything here is reentrant: state lives in the caller's structs and
 * DNS comes through a struct msgauth_dns (synchronous; run the check on a
 * pool thread). Limits follow the RFC: 10 DNS-querying terms, 2 void
 * lookups, 10 MX names per "mx", 10 PTR names per "ptr" / %{p}. Our own
 * bounds on hostile input: a record of at most SPF_RECORD_MAX bytes and
 * SPF_TERMS_MAX terms, macro expansions of at most SPF_EXPAND_MAX bytes.
 */
#ifndef TEGAMI_MSGAUTH_SPF_H
#define TEGAMI_MSGAUTH_SPF_H

#include "msgauth/dns_iface.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define SPF_RECORD_MAX 4096
#define SPF_TERMS_MAX 128
#define SPF_EXPAND_MAX 4096
#define SPF_DNS_LOOKUP_LIMIT 10
#define SPF_VOID_LOOKUP_LIMIT 2
#define SPF_MX_NAME_LIMIT 10
#define SPF_PTR_NAME_LIMIT 10

enum spf_result {
	SPF_RESULT_NONE = 0,
	SPF_RESULT_NEUTRAL,
	SPF_RESULT_PASS,
	SPF_RESULT_FAIL,
	SPF_RESULT_SOFTFAIL,
	SPF_RESULT_TEMPERROR,
	SPF_RESULT_PERMERROR,
};

/* "none", "neutral", "pass", ... as RFC 7208 §2.6 names them. */
const char *spf_result_name(enum spf_result result);

enum spf_mech_type {
	SPF_MECH_ALL,
	SPF_MECH_INCLUDE,
	SPF_MECH_A,
	SPF_MECH_MX,
	SPF_MECH_PTR,
	SPF_MECH_IP4,
	SPF_MECH_IP6,
	SPF_MECH_EXISTS,
};

struct spf_mech {
	char qualifier;			/* '+', '-', '~' or '?' */
	enum spf_mech_type type;
	char *domain_spec;		/* macro-string; NULL = current domain */
	struct msgauth_ip net;		/* ip4/ip6 */
	unsigned int cidr4, cidr6;	/* 32 / 128 when not given */
	char *text;			/* the term as written (for logs) */
};

struct spf_record {
	struct spf_mech *mechs;
	size_t mech_count;
	char *redirect;	/* domain-spec or NULL */
	char *exp;	/* domain-spec or NULL */
	bool has_all;
};

/*
 * Parses one SPF record ("v=spf1 ..."), strictly: any syntax error
 * (unknown mechanism, bad cidr, bad macro, duplicate redirect/exp, ...)
 * returns -1 with a static reason in *error_r, which check_host() turns
 * into permerror. On 0, *rec_r is the record; free with spf_record_free.
 */
int spf_record_parse(const char *text, size_t len, struct spf_record **rec_r,
    const char **error_r);
void spf_record_free(struct spf_record **rec);
/* Is this TXT record an SPF version 1 record ("v=spf1" then SP or end)? */
bool spf_record_is_spf1(const char *text, size_t len);

/* Who is being checked and what the macros expand to. */
struct spf_request {
	struct msgauth_ip ip;	/* the SMTP client (IPv4-mapped -> IPv4) */
	const char *sender;	/* MAIL FROM address, "" for the null sender */
	const char *helo;	/* EHLO/HELO argument */
	const char *receiver;	/* our host name, for %{r} and Received-SPF */
	time_t now;		/* for %{t} */
};

enum spf_identity {
	SPF_IDENTITY_MAILFROM,
	SPF_IDENTITY_HELO,
};

struct spf_outcome {
	enum spf_result result;
	enum spf_identity identity;
	char domain[MSGAUTH_DNS_NAME_MAX];	/* the domain checked */
	char mechanism[128];	/* the term that decided, "" if none */
	char problem[160];	/* why, for temperror/permerror */
	char *explanation;	/* fail only: expanded exp= text, malloc'd */
	unsigned int dns_lookups;
	unsigned int void_lookups;
};

void spf_outcome_free(struct spf_outcome *o);
/* *dst = a copy of *src (explanation duplicated). */
void spf_outcome_copy(struct spf_outcome *dst, const struct spf_outcome *src);

/*
 * check_host(<ip>, <domain>, <sender>) of RFC 7208 §4: ip and the macro
 * inputs come from req, sender is the address used for %{s}/%{l}/%{o}
 * (an empty local part becomes "postmaster"). Fills *out (caller frees
 * with spf_outcome_free) and returns out->result.
 */
enum spf_result spf_check_host(const struct msgauth_dns *dns,
    const struct spf_request *req, const char *domain, const char *sender,
    struct spf_outcome *out);

/*
 * The MAIL FROM check (RFC 7208 §2.4): the sender's domain, or for the
 * null sender "postmaster@<helo>" (then out->identity is HELO).
 */
enum spf_result spf_check_mailfrom(const struct msgauth_dns *dns,
    const struct spf_request *req, struct spf_outcome *out);
/*
 * The HELO check (RFC 7208 §2.3): check_host() on the HELO name with
 * sender "postmaster@<helo>". A HELO that is not a multi-label domain
 * name (an address literal, a bare word) gives none.
 */
enum spf_result spf_check_helo(const struct msgauth_dns *dns,
    const struct spf_request *req, struct spf_outcome *out);

/*
 * Expands a macro-string (RFC 7208 §7) for `domain` (%{d}) and `sender`.
 * is_exp allows the c/r/t letters (explanation text). For a domain-spec
 * (is_domain), a result longer than 253 characters loses labels on the
 * left. %{p} needs DNS: dns may be NULL, then %{p} is "unknown".
 * Returns -1 with *error_r on a syntax error or an over-long result.
 * The result is malloc'd in *out_r.
 */
int spf_macro_expand(const char *macro, const struct spf_request *req,
    const char *domain, const char *sender, bool is_exp, bool is_domain,
    const struct msgauth_dns *dns, char **out_r, const char **error_r);

/*
 * The Received-SPF header field (RFC 7208 §9.1), one line without the
 * trailing CRLF: "Received-SPF: pass (comment) client-ip=...; ...".
 * Untrusted values are quoted and stripped of control characters.
 * Returns malloc'd text.
 */
char *spf_received_spf(const struct spf_request *req,
    const struct spf_outcome *o);

#endif
