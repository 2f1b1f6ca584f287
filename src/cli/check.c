#include "cli/check.h"
#include "lib/str.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

static bool
check_label(const char *s, size_t len)
{
	if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_alnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

bool
check_domain(const char *s)
{
	size_t len = strlen(s), labels = 0;
	const char *p = s;

	if (len == 0 || len > 253)
		return false;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot != NULL ? (size_t)(dot - p) : strlen(p);

		if (!check_label(p, n))
			return false;
		labels++;
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	/* "localhost" is the development instance's domain (RFC 6761). */
	return labels >= 2 || strcasecmp(s, "localhost") == 0;
}

/*
 * RFC 5322 atext, minus '|' (accounts file separator) and '/' (the local
 * part names a directory under MAIL_DIR/<domain>/).
 */
static bool
is_local_char(unsigned char c)
{
	return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-=?^_`{}~", c) != NULL);
}

int
check_address(const char *s, const char **error_r)
{
	const char *at = strrchr(s, '@');
	size_t llen;

	if (at == NULL) {
		*error_r = "should include the domain (e.g. user@example.com)";
		return -1;
	}
	llen = (size_t)(at - s);
	if (llen == 0) {
		*error_r = "has no local part before the @";
		return -1;
	}
	if (llen > 64) {
		*error_r = "has a local part longer than 64 bytes";
		return -1;
	}
	if (strlen(s) > 254) {
		*error_r = "is longer than 254 bytes";
		return -1;
	}
	if (s[0] == '.' || at[-1] == '.') {
		*error_r = "has a local part that starts or ends with a dot";
		return -1;
	}
	for (size_t i = 0; i < llen; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (s[i + 1] == '.') {
				*error_r = "has two dots in a row";
				return -1;
			}
		} else if (c >= 0x80) {
			/* UTF-8 local parts (SMTPUTF8), checked as a whole below. */
		} else if (!is_local_char(c)) {
			*error_r = "has a character not allowed in an address "
			    "(white space, quotes, and | , : / ( ) < > [ ] ; @ \\ are refused)";
			return -1;
		}
	}
	if (!str_is_utf8(s, llen)) {
		*error_r = "is not valid UTF-8";
		return -1;
	}
	if (!check_domain(at + 1)) {
		*error_r = "has an invalid domain (letters, digits, hyphens and "
		    "at least one dot, e.g. example.com)";
		return -1;
	}
	return 0;
}

int
check_alias_key(const char *s, const char **error_r)
{
	if (s[0] == '@') {
		if (!check_domain(s + 1)) {
			*error_r = "has an invalid domain (letters, digits, "
			    "hyphens and at least one dot, e.g. @example.com)";
			return -1;
		}
		return 0;
	}
	return check_address(s, error_r);
}

int
check_master_name(const char *s, const char **error_r)
{
	size_t len = strlen(s);

	if (len == 0 || len > 64) {
		*error_r = "must be 1 to 64 characters long";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c >= 0x7f || strchr("|:*@,", c) != NULL) {
			*error_r = "may hold printable ASCII only, without white "
			    "space and without | : * @ ,";
			return -1;
		}
	}
	return 0;
}

bool
check_selector(const char *s)
{
	return check_label(s, strlen(s));
}

int
check_quota(const char *s, unsigned long long *bytes_r)
{
	static const struct { char unit; unsigned shift; } units[] = {
		{ 'B', 0 }, { 'k', 10 }, { 'M', 20 }, { 'G', 30 }, { 'T', 40 },
	};
	size_t len = strlen(s);
	unsigned long long n = 0;

	if (strcmp(s, "0") == 0) {
		*bytes_r = 0;
		return 0;
	}
	if (len < 2 || len > 24)
		return -1;
	for (size_t i = 0; i + 1 < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (n > (1ULL << 63) / 10)
			return -1;
		n = n * 10 + (unsigned)(s[i] - '0');
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (s[len - 1] != units[i].unit)
			continue;
		if (n >= ((1ULL << 63) >> units[i].shift))
			return -1;
		*bytes_r = n << units[i].shift;
		return 0;
	}
	return -1;
}

char *
check_format_iec(unsigned long long bytes, char *out, size_t outsize)
{
	static const char units[] = "KMGTPE";
	unsigned long long unit = 1024;
	size_t p = 0;

	if (bytes < 1024) {
		snprintf(out, outsize, "%llu", bytes);
		return out;
	}
	while (p + 1 < sizeof(units) - 1 && bytes / unit >= 1024) {
		unit *= 1024;
		p++;
	}
	for (;;) {
		unsigned __int128 x = bytes, u = unit;
		/* tenths, rounded up (numfmt's default --round=from-zero) */
		unsigned long long tenths = (unsigned long long)((x * 10 + u - 1) / u);

		if (tenths < 100) {
			snprintf(out, outsize, "%llu.%llu%c", tenths / 10,
			    tenths % 10, units[p]);
			return out;
		}
		unsigned long long whole = (unsigned long long)((x + u - 1) / u);

		if (whole < 1024 || p + 1 >= sizeof(units) - 1) {
			snprintf(out, outsize, "%llu%c", whole, units[p]);
			return out;
		}
		/* 1023.9K rounds up to 1024K: show it as 1.0M, as numfmt does. */
		unit *= 1024;
		p++;
	}
}

int
check_port(const char *s, unsigned int *port_r)
{
	unsigned long long v;

	if (s[0] < '0' || s[0] > '9' || str_to_ullong(s, &v) < 0 || v < 1 ||
	    v > 65535)
		return -1;
	*port_r = (unsigned int)v;
	return 0;
}

bool
check_password(const char *s)
{
	return s[0] != '\0' && strpbrk(s, "\r\n") == NULL;
}
