/* Charset conversion to UTF-8 and simple case folding. */
#include "mail/charset.h"

#include "mail/decode.h"

#include <errno.h>
#include <stdint.h>
#include <iconv.h>
#include <string.h>
#include <strings.h>

#define CHARSET_NAME_MAX 64

/* "utf-8", "UTF8", "us-ascii", "ascii", "" (no charset given) */
bool
charset_is_utf8(const char *cs)
{
	return cs == NULL || cs[0] == '\0' || strcasecmp(cs, "utf-8") == 0 ||
	    strcasecmp(cs, "utf8") == 0 || strcasecmp(cs, "us-ascii") == 0 ||
	    strcasecmp(cs, "ascii") == 0;
}

static bool
is_latin1(const char *cs)
{
	return strcasecmp(cs, "iso-8859-1") == 0 ||
	    strcasecmp(cs, "iso8859-1") == 0 || strcasecmp(cs, "latin1") == 0;
}

/* Names iconv must never see: they are not charsets of text. */
static bool
name_ok(const char *cs)
{
	size_t l = strlen(cs);

	if (l == 0 || l >= CHARSET_NAME_MAX)
		return false;
	for (size_t i = 0; i < l; i++) {
		unsigned char c = (unsigned char)cs[i];

		/* "//TRANSLIT" and friends are iconv options, not names */
		if (c <= ' ' || c >= 0x7f || c == '/' || c == ',')
			return false;
	}
	return true;
}

bool
charset_known(const char *cs)
{
	iconv_t cd;

	if (cs == NULL || cs[0] == '\0')
		return false;
	if (charset_is_utf8(cs) || is_latin1(cs))
		return true;
	if (!name_ok(cs))
		return false;
	cd = iconv_open("UTF-8", cs);
	if (cd == (iconv_t)-1)
		return false;
	iconv_close(cd);
	return true;
}

int
charset_put_cp(struct buf *out, unsigned int cp)
{
	char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return buf_append(out, b, n);
}

int
charset_to_utf8(const char *cs, const char *in, size_t len, struct buf *out)
{
	iconv_t cd;
	char tmp[1024];
	char *ip = (char *)in;
	size_t left = len;

	if (cs == NULL || charset_is_utf8(cs) || !name_ok(cs))
		return buf_append(out, in, len);
	if (is_latin1(cs)) {
		for (size_t i = 0; i < len; i++) {
			if (charset_put_cp(out, (unsigned char)in[i]) < 0)
				return -1;
		}
		return 0;
	}
	cd = iconv_open("UTF-8", cs);
	if (cd == (iconv_t)-1)
		return buf_append(out, in, len);
	while (left > 0) {
		char *op = tmp;
		size_t oleft = sizeof(tmp);
		size_t r = iconv(cd, &ip, &left, &op, &oleft);

		if (buf_append(out, tmp, sizeof(tmp) - oleft) < 0) {
			iconv_close(cd);
			return -1;
		}
		if (r != (size_t)-1 || errno == E2BIG)
			continue;
		/* EILSEQ or EINVAL (cut short): keep the byte, go on */
		if (buf_append(out, ip, 1) < 0) {
			iconv_close(cd);
			return -1;
		}
		ip++;
		left--;
		/* a stateful charset (ISO-2022-JP) starts over after it */
		iconv(cd, NULL, NULL, NULL, NULL);
	}
	/* flush the shift state of stateful charsets */
	{
		char *op = tmp;
		size_t oleft = sizeof(tmp);

		iconv(cd, NULL, NULL, &op, &oleft);
		iconv_close(cd);
		return buf_append(out, tmp, sizeof(tmp) - oleft);
	}
}

static int
word_to_utf8(const char *cs, size_t cslen, const char *bytes, size_t len,
    struct buf *out)
{
	char name[CHARSET_NAME_MAX];
	const char *star;

	/* RFC 2231 §5: "charset*language" */
	if ((star = memchr(cs, '*', cslen)) != NULL)
		cslen = (size_t)(star - cs);
	if (cslen == 0 || cslen >= sizeof(name))
		return buf_append(out, bytes, len);
	memcpy(name, cs, cslen);
	name[cslen] = '\0';
	return charset_to_utf8(name, bytes, len, out);
}

int
charset_decode_header(const char *in, size_t len, struct buf *out)
{
	return decode_rfc2047_with(in, len, out, word_to_utf8);
}

/* --- case folding ---------------------------------------------------------- */

/* One code point whose i;unicode-casemap form is casemap_values[at..+len). */
struct casemap_entry {
	uint32_t cp;
	uint16_t at;
	uint8_t len;
};

#include "mail/casemap-table.h"

/*
 * The RFC 5051 form of cp: a pointer to its code points and their count
 * (cp itself when it maps to itself, through *self).
 */
static size_t
casemap(unsigned int cp, uint32_t *self, const uint32_t **seq_r)
{
	size_t lo = 0, hi = sizeof(casemap_entries) / sizeof(casemap_entries[0]);

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (casemap_entries[mid].cp == cp) {
			*seq_r = casemap_values + casemap_entries[mid].at;
			return casemap_entries[mid].len;
		}
		if (casemap_entries[mid].cp < cp)
			lo = mid + 1;
		else
			hi = mid;
	}
	*self = cp;
	*seq_r = self;
	return 1;
}

size_t
charset_utf8_next(const unsigned char *in, size_t len, unsigned int *cp_r)
{
	unsigned int cp, min;
	size_t n;

	if (in[0] < 0x80) {
		*cp_r = in[0];
		return 1;
	}
	if ((in[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = in[0] & 0x1f;
		min = 0x80;
	} else if ((in[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = in[0] & 0x0f;
		min = 0x800;
	} else if ((in[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = in[0] & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((in[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (in[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return n;
}

int
charset_utf8_fold(const char *in, size_t len, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i = 0;

	while (i < len) {
		unsigned int cp;
		size_t n;

		if (p[i] < 0x80) {
			if (buf_append_c(out, (char)(p[i] >= 'a' && p[i] <= 'z' ?
			    p[i] - 32 : p[i])) < 0)
				return -1;
			i++;
			continue;
		}
		n = charset_utf8_next(p + i, len - i, &cp);
		if (n == 0) {
			if (buf_append_c(out, (char)p[i]) < 0)
				return -1;
			i++;
			continue;
		}
		{
			const uint32_t *seq;
			uint32_t self;
			size_t k = casemap(cp, &self, &seq);

			for (size_t j = 0; j < k; j++) {
				if (charset_put_cp(out, seq[j]) < 0)
					return -1;
			}
		}
		i += n;
	}
	return 0;
}
