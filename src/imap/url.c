/* IMAP URL parser (url.h). */
#include "imap/url.h"

#include "lib/xalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void
imap_url_free(struct imap_url *u)
{
	free(u->user);
	free(u->auth_type);
	free(u->host);
	free(u->mailbox);
	free(u->section);
	free(u->access);
	free(u->mechanism);
	free(u->token);
	memset(u, 0, sizeof(*u));
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* s[0..len) percent-decoded, malloc'd; NULL for a bad escape or a NUL. */
static char *
decode(const char *s, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%') {
			int hi, lo;

			if (i + 2 >= len) {
				free(out);
				return NULL;
			}
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				free(out);
				return NULL;
			}
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

/* nz-number (1..2^32-1) in s[0..len). */
static bool
parse_nz(const char *s, size_t len, uint32_t *v_r)
{
	uint64_t v = 0;

	if (len == 0 || len > 10 || s[0] == '0')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*v_r = (uint32_t)v;
	return true;
}

static bool
parse_num64(const char *s, size_t len, uint64_t *v_r)
{
	uint64_t v = 0;

	if (len == 0 || len > 19)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*v_r = v;
	return true;
}

/* RFC 3339 date-time: 2024-03-05T10:00:00[.frac](Z|+hh:mm|-hh:mm) */
static bool
parse_datetime(const char *s, size_t len, time_t *t_r)
{
	char buf[64];
	struct tm tm;
	int y, mo, d, h, mi, sec, n = 0;
	const char *p;
	long off = 0;

	if (len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (sscanf(buf, "%4d-%2d-%2d%*1[Tt]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi,
	    &sec, &n) != 6 || n == 0)
		return false;
	p = buf + n;
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;

		if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2 || strlen(p) != 6)
			return false;
		off = (oh * 3600L + om * 60L) * (*p == '+' ? 1 : -1);
		p += 6;
	} else {
		return false;
	}
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || sec > 60 || y < 1970)
		return false;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*t_r = timegm(&tm) - off;
	return true;
}

static bool
key_is(const char *s, size_t len, const char *key)
{
	size_t kl = strlen(key);

	return len >= kl && strncasecmp(s, key, kl) == 0;
}

/* Authority: [user[;AUTH=x]@]host[:port] in s[0..len). */
static int
parse_authority(const char *s, size_t len, struct imap_url *u)
{
	const char *at = NULL, *colon;

	for (size_t i = len; i > 0; i--) {
		if (s[i - 1] == '@') {
			at = s + i - 1;
			break;
		}
	}
	if (at != NULL) {
		size_t ulen = (size_t)(at - s);
		const char *semi = memchr(s, ';', ulen);

		if (semi != NULL) {
			if (!key_is(semi, ulen - (size_t)(semi - s), ";AUTH="))
				return -1;
			u->auth_type = decode(semi + 6, ulen - (size_t)(semi - s) - 6);
			if (u->auth_type == NULL)
				return -1;
			ulen = (size_t)(semi - s);
		}
		if (ulen > 0 && (u->user = decode(s, ulen)) == NULL)
			return -1;
		len -= (size_t)(at + 1 - s);
		s = at + 1;
	}
	colon = memchr(s, ':', len);
	if (colon != NULL) {
		uint32_t port;

		if (!parse_nz(colon + 1, len - (size_t)(colon + 1 - s), &port) ||
		    port > 65535)
			return -1;
		u->port = port;
		len = (size_t)(colon - s);
	}
	if (len == 0)
		return -1;
	u->host = decode(s, len);
	return u->host == NULL ? -1 : 0;
}

/*
 * One ";KEY=value" of the message part, at p (after any '/'); returns the
 * length taken or 0 for something that is not one of ours.
 */
static size_t
parse_param(const char *p, const char *end, struct imap_url *u, bool *bad_r)
{
	const char *v, *stop = p + 1;
	size_t vlen;

	while (stop < end && *stop != ';' && *stop != '/')
		stop++;
	/* URLAUTH's value runs on with ":mech:token" */
	if (key_is(p, (size_t)(end - p), ";URLAUTH=")) {
		const char *c;

		v = p + 9;
		stop = v;
		while (stop < end && *stop != ':')
			stop++;
		vlen = (size_t)(stop - v);
		if (vlen == 0 || (u->access = decode(v, vlen)) == NULL) {
			*bad_r = true;
			return 0;
		}
		u->rump_len = (size_t)(stop - u->rump_start);
		if (stop == end)
			return (size_t)(end - p);
		c = memchr(stop + 1, ':', (size_t)(end - stop - 1));
		if (c == NULL || c == stop + 1 || c + 1 == end) {
			*bad_r = true;
			return 0;
		}
		u->mechanism = xstrndup(stop + 1, (size_t)(c - stop - 1));
		u->token = xstrndup(c + 1, (size_t)(end - c - 1));
		for (const char *t = u->token; *t != '\0'; t++) {
			if (hexval(*t) < 0) {
				*bad_r = true;
				return 0;
			}
		}
		return (size_t)(end - p);
	}
	if (key_is(p, (size_t)(stop - p), ";UID=")) {
		if (u->uid != 0 || !parse_nz(p + 5, (size_t)(stop - p - 5), &u->uid))
			*bad_r = true;
	} else if (key_is(p, (size_t)(stop - p), ";SECTION=")) {
		if (u->section != NULL || u->uid == 0 ||
		    (u->section = decode(p + 9, (size_t)(stop - p - 9))) == NULL)
			*bad_r = true;
	} else if (key_is(p, (size_t)(stop - p), ";PARTIAL=")) {
		const char *dot;

		v = p + 9;
		vlen = (size_t)(stop - v);
		dot = memchr(v, '.', vlen);
		if (u->partial || u->uid == 0 ||
		    !parse_num64(v, dot != NULL ? (size_t)(dot - v) : vlen,
		    &u->partial_offset) ||
		    (dot != NULL && (!parse_num64(dot + 1, (size_t)(stop - dot - 1),
		    &u->partial_length) || u->partial_length == 0)))
			*bad_r = true;
		u->partial = true;
	} else if (key_is(p, (size_t)(stop - p), ";EXPIRE=")) {
		if (u->expire_set || !parse_datetime(p + 8, (size_t)(stop - p - 8),
		    &u->expire))
			*bad_r = true;
		u->expire_set = true;
	} else {
		return 0;
	}
	return (size_t)(stop - p);
}

int
imap_url_parse(const char *url, struct imap_url *u, const char **error_r)
{
	const char *p = url, *end = url + strlen(url), *seg;
	bool bad = false;

	memset(u, 0, sizeof(*u));
	u->rump_start = url;
	if (strncasecmp(p, "imap://", 7) == 0) {
		const char *slash = memchr(p + 7, '/', (size_t)(end - p - 7));

		if (slash == NULL ||
		    parse_authority(p + 7, (size_t)(slash - p - 7), u) < 0) {
			*error_r = "Invalid URL server part";
			goto fail;
		}
		p = slash;
	}
	if (*p != '/' || memchr(url, '?', (size_t)(end - url)) != NULL) {
		*error_r = "Not a message URL";
		goto fail;
	}
	/* the mailbox: up to the first ';' or '/' */
	seg = ++p;
	while (p < end && *p != ';' && *p != '/')
		p++;
	if (p == seg || (u->mailbox = decode(seg, (size_t)(p - seg))) == NULL) {
		*error_r = "Invalid URL mailbox";
		goto fail;
	}
	if (key_is(p, (size_t)(end - p), ";UIDVALIDITY=")) {
		const char *v = p + 13;

		p = v;
		while (p < end && *p != ';' && *p != '/')
			p++;
		if (!parse_nz(v, (size_t)(p - v), &u->uidvalidity)) {
			*error_r = "Invalid URL UIDVALIDITY";
			goto fail;
		}
	}
	while (p < end) {
		size_t took;

		if (*p == '/')
			p++;
		if (p == end || *p != ';') {
			*error_r = "Invalid URL";
			goto fail;
		}
		took = parse_param(p, end, u, &bad);
		if (took == 0 || bad) {
			*error_r = "Invalid URL parameter";
			goto fail;
		}
		p += took;
	}
	if (u->uid == 0) {
		*error_r = "URL without a UID";
		goto fail;
	}
	if ((u->expire_set || u->mechanism != NULL) && u->access == NULL) {
		*error_r = "Invalid URLAUTH";
		goto fail;
	}
	u->rump_start = NULL;
	return 0;
fail:
	imap_url_free(u);
	return -1;
}
