/*
 * imap/sort: SORT criteria (RFC 5256 ARRIVAL CC DATE FROM REVERSE SIZE
 * SUBJECT TO, RFC 5957 DISPLAYFROM DISPLAYTO) and the per-message keys
 * SORT and THREAD read from the header (kept in the session's sort
 * cache for the selected mailbox, which the index keeps too, so a SORT
 * in a later session reads no message file either).
 *
 * Strings compare as folded UTF-8 (mail/charset), an approximation of
 * i;unicode-casemap without decomposition; equal keys fall back to the
 * sequence number (RFC 5256 §3).
 */
#ifndef TEGAMI_IMAP_SORT_H
#define TEGAMI_IMAP_SORT_H

#include "imap/parser.h"

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct imap_session;
struct imap_sortcache;

enum imap_sort_key {
	SORT_ARRIVAL, SORT_CC, SORT_DATE, SORT_FROM, SORT_SIZE, SORT_SUBJECT,
	SORT_TO, SORT_DISPLAYFROM, SORT_DISPLAYTO,
};

#define IMAP_SORT_MAX_KEYS 16

struct imap_sort_program {
	enum imap_sort_key keys[IMAP_SORT_MAX_KEYS];
	bool reverse[IMAP_SORT_MAX_KEYS];
	unsigned int nkeys;
};

/* What is cached of one message. */
struct imap_msg_keys {
	uint32_t uid;
	time_t date;		/* Date: in UTC, or the internal date */
	char *subject;		/* base subject, folded */
	bool subject_reply;
	char *from, *to, *cc;	/* first address's mailbox, folded */
	char *dfrom, *dto;	/* RFC 5957 display names, folded */
	char *message_id;	/* NULL if none */
	char **refs;		/* References, or the In-Reply-To id */
	unsigned int nrefs;
};

/* Parses "(REVERSE SUBJECT DATE)"; -1 with *error_r. */
int imap_sort_parse(const struct imap_arg *list, struct imap_sort_program *p,
    const char **error_r);

/*
 * The keys of the message at store index idx of the selected mailbox
 * (from the cache, or read and cached). Valid until the next call that
 * may grow the cache (copy what you keep) or imap_search_reset().
 */
const struct imap_msg_keys *imap_msg_keys_get(struct imap_session *s,
    unsigned int idx);

/*
 * Reads the keys of the messages idx[0..n) the cache lacks on the
 * session's pool (the session waits, as for APPEND), then calls done()
 * on the loop: with s == NULL if the session went away meanwhile. At
 * once when every key is cached, or without a pool.
 */
void imap_msg_keys_prefetch(struct imap_session *s, const unsigned int *idx,
    unsigned int n, void (*done)(struct imap_session *s, void *ctx), void *ctx);
/* Does the program sort by a key read from the header? */
bool imap_sort_needs_headers(const struct imap_sort_program *p);

/* Sorts store indexes idx[0..n) in place by the program. */
void imap_sort_indexes(struct imap_session *s, const struct imap_sort_program *p,
    unsigned int *idx, unsigned int n);

/* Writes the keys read from files since the last flush to the index. */
void imap_sortcache_flush(struct imap_session *s);
void imap_sortcache_free(struct imap_sortcache **cache);

#endif
