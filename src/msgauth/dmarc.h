/*
 * DMARC (RFC 7489): record parser, policy discovery, identifier
 * alignment, the result and the disposition.
 *
 * The checks of SPF and DKIM are done before and handed in; DMARC only
 * looks up its own record (_dmarc.<From domain>, then _dmarc.<org
 * domain>) through the msgauth_dns table. The organizational domain
 * comes from a struct psl. Randomness for pct= sampling is injected.
 * Reentrant; no global state.
 */
#ifndef TEGAMI_MSGAUTH_DMARC_H
#define TEGAMI_MSGAUTH_DMARC_H

#include "msgauth/dns_iface.h"
#include "msgauth/psl.h"
#include "msgauth/spf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DMARC_RECORD_MAX 4096
#define DMARC_URI_LIST_MAX 1024

enum dmarc_policy {
	DMARC_POLICY_UNSET = 0,	/* sp= absent */
	DMARC_POLICY_NONE,
	DMARC_POLICY_QUARANTINE,
	DMARC_POLICY_REJECT,
};

enum dmarc_align {
	DMARC_ALIGN_RELAXED = 0,
	DMARC_ALIGN_STRICT,
};

struct dmarc_record {
	enum dmarc_policy p;
	enum dmarc_policy sp;	/* UNSET: use p */
	unsigned int pct;	/* 0-100, default 100 */
	enum dmarc_align adkim, aspf;
	char rua[DMARC_URI_LIST_MAX];	/* as written, "" if absent */
	char ruf[DMARC_URI_LIST_MAX];
	char fo[16];		/* default "0" */
	char rf[32];		/* default "afrf" */
	uint32_t ri;		/* default 86400 */
};

/*
 * Parses a DMARC record ("v=DMARC1; p=..."). -1 with a static reason in
 * *error_r when it is no DMARC record or is unusable: v= not first or not
 * DMARC1, a duplicate tag, a malformed tag list, p= missing or invalid
 * (unless rua= is there: then p=none, RFC 7489 §6.6.3). Other tags with
 * invalid values take their defaults; unknown tags are ignored.
 */
int dmarc_record_parse(const char *text, size_t len, struct dmarc_record *rec_r,
    const char **error_r);
const char *dmarc_policy_name(enum dmarc_policy p);

enum dmarc_result {
	DMARC_RESULT_NONE = 0,	/* no policy published */
	DMARC_RESULT_PASS,
	DMARC_RESULT_FAIL,
	DMARC_RESULT_TEMPERROR,
	DMARC_RESULT_PERMERROR,
};
const char *dmarc_result_name(enum dmarc_result r);

/* What to do with the message. */
enum dmarc_disposition {
	DMARC_DISP_NONE = 0,
	DMARC_DISP_QUARANTINE,
	DMARC_DISP_REJECT,
};
const char *dmarc_disposition_name(enum dmarc_disposition d);

struct dmarc_dkim_sig {
	const char *domain;	/* d= */
	bool pass;		/* the signature verified */
};

struct dmarc_input {
	const char *from_domain;	/* RFC5322.From domain */
	enum spf_result spf_result;
	/* the domain SPF checked: MAIL FROM's, or the HELO name for the
	 * null sender (RFC 7489 §3.1.2) */
	const char *spf_domain;
	const struct dmarc_dkim_sig *dkim;
	size_t dkim_count;
	/* pct= sampling: returns a number in [0, 99]; NULL = never sampled
	 * out (as if always 0) */
	unsigned int (*random_pct)(void *ctx);
	void *random_ctx;
};

struct dmarc_outcome {
	enum dmarc_result result;
	enum dmarc_disposition disposition;
	enum dmarc_policy policy;	/* the policy that applied (p or sp) */
	bool spf_aligned;
	bool dkim_aligned;
	bool sampled_out;	/* pct= lowered the disposition */
	bool have_record;
	struct dmarc_record record;
	char org_domain[MSGAUTH_DNS_NAME_MAX];
	char policy_domain[MSGAUTH_DNS_NAME_MAX];	/* where the record was */
	char problem[128];
};

/* Is `a` aligned with `b` (RFC 7489 §3.1): equal in strict mode, the
 * same organizational domain in relaxed mode. Case-insensitive. */
bool dmarc_aligned(const struct psl *psl, const char *a, const char *b,
    enum dmarc_align mode);

/*
 * The RFC5322.From domain of a message header block (LF or CRLF lines,
 * folded or not; it may run on into the body, which is not read), lower-
 * cased into out. Display names, quoted strings, comments and groups are
 * understood. -1 with a static reason when there is no From field, more
 * than one (RFC 7489 §6.6.1), no address, or addresses in more than one
 * domain: such a message cannot be checked and the caller rejects it or
 * treats it as failing.
 */
int dmarc_from_domain(const char *hdr, size_t len, char *out, size_t outsize,
    const char **error_r);

/*
 * Evaluates DMARC for one message (RFC 7489 §6.6). Fills *out and
 * returns out->result. A From domain that is malformed or a public
 * suffix gives none.
 */
enum dmarc_result dmarc_evaluate(const struct msgauth_dns *dns,
    const struct psl *psl, const struct dmarc_input *in,
    struct dmarc_outcome *out);

#endif
