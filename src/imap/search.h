/*
 * imap/search: IMAP search keys (RFC 9051 §6.4.4 and RFC 3501 §6.4.4,
 * with MODSEQ of RFC 7162, OLDER/YOUNGER of RFC 5032 and "$" of
 * RFC 5182) parsed into a program that SEARCH, SORT, THREAD and the
 * CONTEXT=SEARCH updates run against the selected mailbox.
 *
 * The program outlives the command that made it (an UPDATE context
 * keeps it): it owns every string, and sequence sets are resolved
 * against the view each time it is run.
 *
 * Text keys match case-insensitively (mail/charset folding) on decoded
 * text: header values with their RFC 2047 words in UTF-8, text parts
 * with their content transfer encoding undone and converted from their
 * charset. The strings searched for are converted from the command's
 * CHARSET first.
 */
#ifndef TEGAMI_IMAP_SEARCH_H
#define TEGAMI_IMAP_SEARCH_H

#include "imap/parser.h"

#include <stdbool.h>
#include <stdint.h>

struct imap_session;
struct imap_search;

/*
 * Parses keys a[0..n) (an implicit AND) with strings in charset (NULL =
 * UTF-8). NULL with *error_r (text for a BAD reply) on bad syntax; with
 * *badcharset_r set when the charset is the reason (reply NO
 * [BADCHARSET]).
 */
struct imap_search *imap_search_parse(const struct imap_arg *a, unsigned int n,
    const char *charset, const char **error_r, bool *badcharset_r);
void imap_search_free(struct imap_search **p);
/* Did the program use MODSEQ (the reply then says MODSEQ, RFC 7162)? */
bool imap_search_has_modseq(const struct imap_search *p);
/* Does it read "$" (RFC 5182)? */
bool imap_search_uses_saved(const struct imap_search *p);
/*
 * Can a message's answer change only when the message does (its modseq
 * moves)? False with sequence numbers, "$", RECENT/NEW/OLD, OLDER/YOUNGER
 * or "*" in a UID set.
 */
bool imap_search_is_stable(const struct imap_search *p);

/*
 * Runs the program on the selected mailbox's view: the matching store
 * indexes, ascending (malloc'd, *n_r of them; never NULL).
 */
unsigned int *imap_search_run(struct imap_session *s, struct imap_search *p,
    unsigned int *n_r);
/*
 * The same for a command, without stalling the worker: the messages whose
 * answer needs their file (HEADER and the address keys, SUBJECT, BODY,
 * TEXT, SENT*) are read on the session's pool while the session waits,
 * as it does for APPEND. done() gets the matching store indexes
 * ascending (malloc'd, its own), or s == NULL and idx == NULL if the
 * session went away meanwhile. Without a pool, done() runs before this
 * returns.
 */
typedef void imap_search_done_fn(struct imap_session *s, void *ctx,
    unsigned int *idx, unsigned int n);
void imap_search_start(struct imap_session *s, struct imap_search *p,
    imap_search_done_fn *done, void *ctx);
/* The same for one message (for CONTEXT updates). */
bool imap_search_match_one(struct imap_session *s, struct imap_search *p,
    unsigned int idx);

/*
 * Command helpers: the CHARSET argument at a[*i] if any (moving past
 * it), and the program for a[i..n). On failure the reply is sent: -1 or
 * NULL.
 */
int imap_search_charset(struct imap_session *s, const struct imap_arg *a,
    unsigned int n, unsigned int *i, const char **charset_r);
struct imap_search *imap_search_compile(struct imap_session *s,
    const struct imap_arg *a, unsigned int n, unsigned int i,
    const char *charset);

#endif
