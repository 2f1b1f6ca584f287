/*
 * mail/subject: the "base subject" of RFC 5256 §2.1, what SORT SUBJECT
 * and THREAD compare: RFC 2047 words decoded to UTF-8, case-folded
 * (mail/charset), white space runs made one space, and "Re:", "Fwd:",
 * "[list] " prefixes, "(fwd)" trailers and "[fwd: ...]" wrappers taken
 * off as often as they occur.
 */
#ifndef TEGAMI_MAIL_SUBJECT_H
#define TEGAMI_MAIL_SUBJECT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The base subject of a raw (possibly folded, encoded) Subject value,
 * at most max bytes of it (malloc'd, "" when nothing is left).
 * *is_reply_r (may be NULL) says whether a "Re:"/"Fwd:"-like leader,
 * an "(fwd)" trailer or a "[fwd: ...]" wrapper was removed: RFC 5256
 * calls such a message a reply or forward.
 */
char *mail_base_subject(const char *raw, size_t len, size_t max,
    bool *is_reply_r);

#endif
