/*
 * mail/date: the date-time of an RFC 5322 Date: field, with the obsolete
 * forms of §4.3 (two-digit years, named zones like "EST", comments,
 * missing seconds) that real mail carries.
 */
#ifndef TEGAMI_MAIL_DATE_H
#define TEGAMI_MAIL_DATE_H

#include <stddef.h>
#include <time.h>

/*
 * Parses value[0..len) ("Tue, 1 Jul 2003 10:52:37 +0200"): 0 and the
 * instant in UTC, or -1 when it is not a date. A missing or unknown
 * zone counts as UTC (RFC 5322 §4.3: "-0000").
 */
int mail_date_parse(const char *value, size_t len, time_t *utc_r);

#endif
