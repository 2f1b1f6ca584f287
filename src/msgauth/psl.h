/*
 * The Public Suffix List, for DMARC's organizational domain (RFC 7489
 * §3.2). Loaded once (Debian: /usr/share/publicsuffix/
 * public_suffix_list.dat, both the ICANN and the private sections) into
 * one block of text and a sorted index; lookups are binary searches and
 * read-only, so one struct psl serves every thread.
 *
 * Rules are matched on the bytes of the name: Unicode rules match UTF-8
 * names, and an A-label (xn--) name falls back on the default rule "*"
 * (its last label is the public suffix), which is right for IDN TLDs.
 */
#ifndef TEGAMI_MSGAUTH_PSL_H
#define TEGAMI_MSGAUTH_PSL_H

#include <stddef.h>

#define PSL_DEFAULT_PATH "/usr/share/publicsuffix/public_suffix_list.dat"

struct psl;

/* Parses a list from memory (the .dat format: one rule a line, "//"
 * comments). -1 with a malloc'd *error_r if it holds no rule. */
int psl_parse(const char *data, size_t len, struct psl **psl_r,
    char **error_r);
/* Reads and parses the file at path. */
int psl_load(const char *path, struct psl **psl_r, char **error_r);
void psl_free(struct psl **psl);
size_t psl_rule_count(const struct psl *psl);

/*
 * The organizational domain of name (lower-cased, no trailing dot) in
 * out: the public suffix plus one label. Returns 0, or -1 when name is
 * itself a public suffix, is malformed, or does not fit in outsize.
 */
int psl_org_domain(const struct psl *psl, const char *name, char *out,
    size_t outsize);
/* The number of labels of name's public suffix (at least 1), or 0 for
 * a malformed name. */
size_t psl_suffix_labels(const struct psl *psl, const char *name);

#endif
