/*
 * imap/esearch: what SEARCH and SORT share beyond the search program:
 * RETURN options and the ESEARCH response (RFC 4731, RFC 5267 ESORT
 * and PARTIAL), the saved result "$" (RFC 5182) and the contexts that
 * RETURN (UPDATE) leaves behind (RFC 5267 CONTEXT=SEARCH/SORT).
 */
#ifndef TEGAMI_IMAP_ESEARCH_H
#define TEGAMI_IMAP_ESEARCH_H

#include "imap/parser.h"
#include "lib/buf.h"

#include <stdbool.h>
#include <stdint.h>

struct imap_session;
struct imap_search;
struct imap_sort_program;

struct imap_return {
	bool given;		/* RETURN (...) was there: reply ESEARCH */
	bool min, max, all, count, save, update, partial;
	uint32_t plo, phi;	/* PARTIAL range, plo <= phi */
};

/*
 * Parses "RETURN (opts)" when a[*i] is RETURN (moving *i past it).
 * 0, or -1 with *error_r (the text of a BAD reply).
 */
int imap_return_parse(const struct imap_arg *a, unsigned int n,
    unsigned int *i, struct imap_return *r, const char **error_r);

/*
 * Writes "* ESEARCH (TAG "t") [UID] ..." for a result given in result
 * order (numbers are sequence numbers or UIDs as uid says). modseq: the
 * MODSEQ of each result entry when the search used MODSEQ, else NULL.
 */
void imap_esearch_write(struct imap_session *s, const struct imap_return *r,
    bool uid, const uint32_t *nums, const uint64_t *modseqs, unsigned int n);

/* Appends numbers in their order, ascending runs as ranges ("3:4,2"). */
void imap_append_numset(struct buf *out, const uint32_t *nums, unsigned int n);

/*
 * RETURN (SAVE): remembers the result (UIDs, in result order) as "$";
 * with MIN and/or MAX but neither ALL nor COUNT only those are saved
 * (RFC 5182 §2.4).
 */
void imap_searchres_save(struct imap_session *s, const struct imap_return *r,
    const uint32_t *uids, unsigned int n);
/* A SEARCH/SORT with SAVE failed: "$" becomes empty (RFC 5182 §2.1). */
void imap_searchres_clear(struct imap_session *s);

/*
 * The answer to a SEARCH or SORT whose program matched idx[0..nidx) (view
 * indexes, in result order): "* <verb> ..." or ESEARCH as ret says, "$"
 * saved, a context kept for UPDATE, and the tagged "<name> completed."
 * Takes prog and sort (NULL for SEARCH): kept by the context or freed.
 */
void imap_search_answer(struct imap_session *s, const char *verb,
    const char *name, const struct imap_return *ret, bool uid,
    struct imap_search *prog, struct imap_sort_program *sort,
    const unsigned int *idx, unsigned int nidx);

#define IMAP_CONTEXTS_MAX 16

/*
 * RETURN (UPDATE): keeps the program (taking ownership of prog and of
 * sort, which may be NULL for SEARCH) with its current result (UIDs in
 * result order). -1 when there are too many (reply NO [NOUPDATE]).
 */
int imap_context_add(struct imap_session *s, const char *tag, bool uid,
    struct imap_search *prog, struct imap_sort_program *sort,
    const uint32_t *uids, unsigned int n);

#endif
