/* RFC 5322 §3.3 and §4.3 date-time parsing. */
#include "mail/date.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

struct lex {
	const char *p, *end;
};

/* Skips white space and (nested) comments. */
static void
skip_cfws(struct lex *l)
{
	unsigned int depth = 0;

	while (l->p < l->end) {
		char c = *l->p;

		if (c == '(') {
			depth++;
		} else if (c == ')' && depth > 0) {
			depth--;
		} else if (c == '\\' && depth > 0 && l->p + 1 < l->end) {
			l->p++;
		} else if (depth == 0 && c != ' ' && c != '\t' && c != '\r' &&
		    c != '\n') {
			return;
		}
		l->p++;
	}
}

static bool
number(struct lex *l, unsigned int maxdigits, int *v_r, unsigned int *ndigits_r)
{
	unsigned int n = 0;
	int v = 0;

	skip_cfws(l);
	while (l->p < l->end && isdigit((unsigned char)*l->p) && n < maxdigits) {
		v = v * 10 + (*l->p - '0');
		l->p++;
		n++;
	}
	if (ndigits_r != NULL)
		*ndigits_r = n;
	*v_r = v;
	return n > 0;
}

static size_t
word(struct lex *l, char *out, size_t size)
{
	size_t n = 0;

	skip_cfws(l);
	while (l->p < l->end && isalpha((unsigned char)*l->p)) {
		if (n + 1 < size)
			out[n++] = *l->p;
		l->p++;
	}
	out[n] = '\0';
	return n;
}

static bool
punct(struct lex *l, char c)
{
	skip_cfws(l);
	if (l->p < l->end && *l->p == c) {
		l->p++;
		return true;
	}
	return false;
}

/* Days since 1970-01-01 of a civil date (no timegm: no locale, no TZ). */
static long long
days_from_civil(int y, int m, int d)
{
	long long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int
mail_date_parse(const char *value, size_t len, time_t *utc_r)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	static const struct { const char *name; int minutes; } zones[] = {
		{ "UT", 0 }, { "UTC", 0 }, { "GMT", 0 }, { "Z", 0 },
		{ "EST", -300 }, { "EDT", -240 }, { "CST", -360 }, { "CDT", -300 },
		{ "MST", -420 }, { "MDT", -360 }, { "PST", -480 }, { "PDT", -420 },
	};
	struct lex l = { value, value + len };
	char w[16];
	const char *m;
	int day, year, hour, min, sec = 0, zone = 0;
	unsigned int ydigits;
	long long t;

	/* [day-of-week ","] */
	{
		struct lex save = l;

		if (word(&l, w, sizeof(w)) > 0) {
			if (!punct(&l, ','))
				l = save;	/* "1 Jan" has no weekday */
		} else {
			l = save;
		}
	}
	if (!number(&l, 2, &day, NULL) || day < 1 || day > 31)
		return -1;
	if (word(&l, w, sizeof(w)) != 3)
		return -1;
	for (size_t i = 0; i < 3; i++)
		w[i] = (char)tolower((unsigned char)w[i]);
	if ((m = strstr(months, w)) == NULL || (m - months) % 3 != 0)
		return -1;
	if (!number(&l, 4, &year, &ydigits))
		return -1;
	/* RFC 5322 §4.3: two-digit years, and three-digit ones + 1900 */
	if (ydigits <= 2)
		year += year < 50 ? 2000 : 1900;
	else if (ydigits == 3)
		year += 1900;
	if (!number(&l, 2, &hour, NULL) || !punct(&l, ':') ||
	    !number(&l, 2, &min, NULL) || hour > 23 || min > 59)
		return -1;
	if (punct(&l, ':') && (!number(&l, 2, &sec, NULL) || sec > 60))
		return -1;
	skip_cfws(&l);
	if (l.p < l.end && (*l.p == '+' || *l.p == '-')) {
		int sign = *l.p == '-' ? -1 : 1, hhmm;
		unsigned int nd;

		l.p++;
		if (number(&l, 4, &hhmm, &nd) && nd == 4 && hhmm % 100 < 60)
			zone = sign * (hhmm / 100 * 60 + hhmm % 100);
	} else if (word(&l, w, sizeof(w)) > 0) {
		for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
			if (strcasecmp(w, zones[i].name) == 0)
				zone = zones[i].minutes;
		}
	}
	t = days_from_civil(year, (int)(m - months) / 3 + 1, day) * 86400 +
	    hour * 3600 + min * 60 + sec - (long long)zone * 60;
	*utc_r = (time_t)t;
	return 0;
}
