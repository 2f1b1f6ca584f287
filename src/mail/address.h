/*
 * address: RFC 5321 mail addresses, SMTP paths and ESMTP parameters.
 *
 * A path is what follows "MAIL FROM:" or "RCPT TO:":
 *
 *   <>                          null reverse-path (only with ADDRESS_ALLOW_NULL)
 *   <local@domain>
 *   <@relay1,@relay2:local@domain>   source route: accepted and thrown away
 *   <Postmaster>                only with ADDRESS_ALLOW_POSTMASTER (RCPT TO)
 *
 * local   = dot-atom or quoted-string ("john doe"@example.org), at most 64
 *           octets as sent;
 * domain  = LDH labels (each 1..63, no hyphen at either end, at most 255 in
 *           all) or an address literal [192.0.2.1] / [IPv6:2001:db8::1];
 * path    = at most 256 octets including the angle brackets.
 * Non-ASCII (UTF-8) is accepted in the local part and in domain labels only
 * with ADDRESS_ALLOW_UTF8 (the client gave SMTPUTF8), and must be valid UTF-8.
 *
 * Nothing here allocates without bound: every length is checked before a
 * copy is made.
 */
#ifndef TEGAMI_ADDRESS_H
#define TEGAMI_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#define ADDRESS_LOCAL_MAX	64
#define ADDRESS_DOMAIN_MAX	255
#define ADDRESS_LABEL_MAX	63
#define ADDRESS_PATH_MAX	256
#define ESMTP_PARAMS_MAX	16
#define ESMTP_PARAM_LEN_MAX	500

enum address_flags {
	ADDRESS_ALLOW_NULL = 1 << 0,		/* "<>" accepted (MAIL FROM) */
	ADDRESS_ALLOW_UTF8 = 1 << 1,		/* SMTPUTF8 given */
	ADDRESS_ALLOW_POSTMASTER = 1 << 2,	/* "<Postmaster>" (RCPT TO) */
};

struct address {
	/*
	 * Local part with its case kept. A quoted local part whose content is
	 * a valid dot-atom is stored unquoted ("john"@x -> john), otherwise
	 * the quoted form is kept as sent. "" for the null path.
	 */
	char *local;
	/*
	 * Domain, lower-cased (ASCII letters only; UTF-8 bytes are kept).
	 * Address literals keep their brackets. "" for the null path and for
	 * a bare <Postmaster>.
	 */
	char *domain;
	bool null_path;		/* "<>" */
	bool utf8;		/* contains non-ASCII octets */
};

/*
 * Parses a path at the start of s (len bytes, need not be NUL-terminated).
 * On success returns 0, fills *addr_r (free with address_free()) and sets
 * *consumed_r to the number of bytes up to and including '>'. On failure
 * returns -1 with a short reason in *error_r (static text, no client bytes)
 * and leaves *addr_r zeroed. *utf8_r-style checks are left to the caller:
 * with ADDRESS_ALLOW_UTF8 the returned addr_r->utf8 says whether non-ASCII
 * was present.
 */
int address_parse_path(const char *s, size_t len, unsigned int flags,
    struct address *addr_r, size_t *consumed_r, const char **error_r);

/*
 * Parses a bare "local@domain" (no brackets, the whole string) with the
 * same rules; for configuration files and tests.
 */
int address_parse(const char *s, unsigned int flags, struct address *addr_r,
    const char **error_r);

void address_free(struct address *addr);
/* Deep copy into *dst. */
void address_copy(struct address *dst, const struct address *src);
/* "local@domain", "local" when the domain is empty, "" for the null path
 * (malloc'd). */
char *address_to_string(const struct address *addr);
/*
 * Lower-cases the whole address in place (ASCII only). tegami, like
 * docker-mailserver, treats mailbox names case-insensitively.
 */
void address_lower(struct address *addr);
/*
 * Splits a recipient delimiter tag off a local part: "user+tag" with '+'
 * gives base "user" and detail "tag" (both malloc'd) and returns 1. Returns
 * 0 when there is nothing to split (no delimiter, or it is the first
 * character): *base_r is then a copy of local and *detail_r is NULL.
 * detail_r may be NULL when the tag is not wanted.
 */
int address_split_detail(const char *local, char delimiter, char **base_r,
    char **detail_r);

/* ESMTP parameters after a path: "SIZE=1000 BODY=8BITMIME SMTPUTF8". */
struct esmtp_param {
	char *keyword;		/* as sent; compare case-insensitively */
	char *value;		/* NULL when the keyword had no '=' */
};

struct esmtp_params {
	struct esmtp_param list[ESMTP_PARAMS_MAX];
	unsigned int count;
};

/*
 * Parses the parameter list in s (len bytes): keywords separated by one or
 * more spaces, keyword = ALPHA/DIGIT then ALPHA/DIGIT/"-", value = printable
 * ASCII except '=' and SP (UTF-8 too with ADDRESS_ALLOW_UTF8). At most
 * ESMTP_PARAMS_MAX parameters, each at most ESMTP_PARAM_LEN_MAX bytes.
 * Returns 0 or -1 with *error_r. Free with esmtp_params_free() either way.
 */
int esmtp_params_parse(const char *s, size_t len, unsigned int flags,
    struct esmtp_params *params_r, const char **error_r);
void esmtp_params_free(struct esmtp_params *params);
/* The parameter with this keyword (case-insensitive), or NULL. */
const struct esmtp_param *esmtp_params_find(const struct esmtp_params *params,
    const char *keyword);

#endif
