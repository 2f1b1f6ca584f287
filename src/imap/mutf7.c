/* Modified UTF-7 <-> UTF-8 for mailbox names. */
#include "imap/mutf7.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int
b64_value(unsigned char c)
{
	const char *p = c != '\0' ? strchr(b64, c) : NULL;

	return p != NULL ? (int)(p - b64) : -1;
}

/* The next code point of UTF-8 at *p; 0 (and -1 set) when invalid. */
static uint32_t
utf8_next(const unsigned char **p, bool *bad)
{
	const unsigned char *s = *p;
	uint32_t cp, min;
	int n;

	if (s[0] < 0x80) {
		*p = s + 1;
		return s[0];
	}
	if ((s[0] & 0xe0) == 0xc0) {
		n = 1, cp = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 2, cp = s[0] & 0x0f, min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 3, cp = s[0] & 0x07, min = 0x10000;
	} else {
		*bad = true;
		return 0;
	}
	for (int i = 1; i <= n; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			*bad = true;
			return 0;
		}
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
		*bad = true;
		return 0;
	}
	*p = s + n + 1;
	return cp;
}

int
imap_utf8_to_mutf7(const char *in, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)in;
	bool bad = false;

	while (*p != '\0') {
		uint32_t bits = 0;
		unsigned int nbits = 0;

		if (*p >= 0x20 && *p < 0x7f) {
			if (buf_append_str(out, *p == '&' ? "&-" : (char[]){ (char)*p, 0 }) < 0)
				return -1;
			p++;
			continue;
		}
		/* a run of other characters, as UTF-16 in modified base64 */
		buf_append_c(out, '&');
		while (*p != '\0' && (*p < 0x20 || *p >= 0x7f)) {
			uint32_t cp = utf8_next(&p, &bad);
			uint16_t units[2];
			int nu = 1;

			if (bad)
				return -1;
			if (cp >= 0x10000) {
				cp -= 0x10000;
				units[0] = (uint16_t)(0xd800 | (cp >> 10));
				units[1] = (uint16_t)(0xdc00 | (cp & 0x3ff));
				nu = 2;
			} else {
				units[0] = (uint16_t)cp;
			}
			for (int u = 0; u < nu; u++) {
				bits = (bits << 16) | units[u];
				nbits += 16;
				while (nbits >= 6) {
					nbits -= 6;
					buf_append_c(out, b64[(bits >> nbits) & 0x3f]);
				}
			}
		}
		if (nbits > 0)
			buf_append_c(out, b64[(bits << (6 - nbits)) & 0x3f]);
		if (buf_append_c(out, '-') < 0)
			return -1;
	}
	return 0;
}

static int
put_utf8(struct buf *out, uint32_t cp)
{
	char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (char)cp, n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
	} else {
		b[0] = (char)(0xf0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
	}
	return buf_append(out, b, n);
}

int
imap_mutf7_to_utf8(const char *in, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)in;

	while (*p != '\0') {
		uint32_t bits = 0, high = 0;
		unsigned int nbits = 0;
		bool any = false;

		if (*p < 0x20 || *p >= 0x7f)
			return -1;
		if (*p != '&') {
			if (buf_append_c(out, (char)*p++) < 0)
				return -1;
			continue;
		}
		p++;
		if (*p == '-') {
			buf_append_c(out, '&');
			p++;
			continue;
		}
		for (; *p != '-'; p++) {
			int v = b64_value(*p);

			if (v < 0)
				return -1;
			bits = (bits << 6) | (uint32_t)v;
			nbits += 6;
			if (nbits < 16)
				continue;
			nbits -= 16;
			{
				uint32_t u = (bits >> nbits) & 0xffff;

				any = true;
				if (u >= 0xd800 && u <= 0xdbff) {
					if (high != 0)
						return -1;
					high = u;
				} else if (u >= 0xdc00 && u <= 0xdfff) {
					if (high == 0)
						return -1;
					if (put_utf8(out, 0x10000 + ((high - 0xd800) << 10) +
					    (u - 0xdc00)) < 0)
						return -1;
					high = 0;
				} else {
					/* printable ASCII must not be encoded */
					if (high != 0 || u == 0 || (u >= 0x20 && u < 0x7f))
						return -1;
					if (put_utf8(out, u) < 0)
						return -1;
				}
			}
		}
		/* left-over bits must be zero padding; no dangling surrogate */
		if (!any || high != 0 || nbits >= 6 ||
		    (bits & ((1u << nbits) - 1)) != 0)
			return -1;
		p++;
	}
	return 0;
}
