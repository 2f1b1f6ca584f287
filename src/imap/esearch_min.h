/*
 * imap/esearch_min: the ESEARCH reply (RFC 4731) that IMAP4rev2 (RFC 9051
 * 6.4.4, 7.3.4) makes the only answer to SEARCH once a client has enabled
 * it: RETURN (MIN MAX COUNT ALL), no RETURN meaning ALL.
 *
 * A deliberately small stand-in: the full ESEARCH (SAVE, PARTIAL,
 * CONTEXT) lives on the imap-search branch; when it is merged, SEARCH
 * should use its imap_return/imap_esearch_write with "rev2 and no RETURN
 * = RETURN (ALL)" and this file goes away.
 */
#ifndef TEGAMI_IMAP_ESEARCH_MIN_H
#define TEGAMI_IMAP_ESEARCH_MIN_H

#include "imap/parser.h"

#include <stdbool.h>
#include <stdint.h>

struct imap_session;

struct esearch_min {
	bool given;		/* RETURN was there */
	bool min, max, count, all;
};

/*
 * When a[*i] is RETURN: parses its options and moves *i past them.
 * 0, or -1 with a static *error_r (SAVE and unknown options included).
 */
int esearch_min_parse(const struct imap_arg *a, unsigned int n,
    unsigned int *i, struct esearch_min *r, const char **error_r);
/*
 * "* ESEARCH (TAG "t") [UID] [MIN n] [MAX n] [COUNT n] [ALL set]
 * [MODSEQ m]" for nums (ascending sequence numbers or UIDs).
 */
void esearch_min_write(struct imap_session *s, const struct esearch_min *r,
    bool uid, const uint32_t *nums, unsigned int n, bool modseq,
    uint64_t maxmod);

#endif
