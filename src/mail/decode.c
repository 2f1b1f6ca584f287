/* Content transfer decodings and RFC 2047 encoded-words. */
#include "mail/decode.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
decode_base64(const char *in, size_t len, struct buf *out)
{
	unsigned int acc = 0, bits = 0;

	for (size_t i = 0; i < len; i++) {
		int v;

		if (in[i] == '=')
			break;
		v = b64_value((unsigned char)in[i]);
		if (v < 0)
			continue;
		acc = (acc << 6) | (unsigned int)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (buf_append_c(out, (char)((acc >> bits) & 0xff)) < 0)
				return -1;
		}
	}
	return 0;
}

static int
hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (unsigned char)toupper(c);
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* underscore_space: the Q encoding of RFC 2047 writes spaces as '_' */
static int
qp_decode(const char *in, size_t len, struct buf *out, bool underscore_space)
{
	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (c == '=') {
			size_t j = i + 1;
			int hi, lo;

			/* soft line break: "=" then optional white space, EOL */
			while (j < len && (in[j] == ' ' || in[j] == '\t'))
				j++;
			if (j < len && (in[j] == '\n' || in[j] == '\r')) {
				if (in[j] == '\r' && j + 1 < len && in[j + 1] == '\n')
					j++;
				i = j;
				continue;
			}
			if (j == len) {
				i = j;
				continue;
			}
			if (i + 2 < len &&
			    (hi = hex_value((unsigned char)in[i + 1])) >= 0 &&
			    (lo = hex_value((unsigned char)in[i + 2])) >= 0) {
				if (buf_append_c(out, (char)(hi * 16 + lo)) < 0)
					return -1;
				i += 2;
				continue;
			}
		} else if (c == '_' && underscore_space) {
			c = ' ';
		}
		if (buf_append_c(out, c) < 0)
			return -1;
	}
	return 0;
}

int
decode_qp(const char *in, size_t len, struct buf *out)
{
	return qp_decode(in, len, out, false);
}

/* Parses "=?charset?X?text?=" at in[0]; on success the charset length
 * (from in + 2), the encoding letter, the text and the total length. */
static bool
parse_word(const char *in, size_t len, size_t *charset_len_r, char *enc_r,
    const char **text_r, size_t *text_len_r, size_t *total_r)
{
	const char *q1, *q2, *end;

	if (len < 8 || in[0] != '=' || in[1] != '?')
		return false;
	q1 = memchr(in + 2, '?', len - 2);
	if (q1 == NULL || q1 == in + 2 || (size_t)(q1 - in) + 3 >= len ||
	    q1[2] != '?')
		return false;
	*enc_r = (char)toupper((unsigned char)q1[1]);
	if (*enc_r != 'B' && *enc_r != 'Q')
		return false;
	q2 = q1 + 3;
	end = q2;
	while ((size_t)(end - in) + 1 < len && !(end[0] == '?' && end[1] == '='))
		end++;
	if ((size_t)(end - in) + 1 >= len)
		return false;
	*charset_len_r = (size_t)(q1 - (in + 2));
	*text_r = q2;
	*text_len_r = (size_t)(end - q2);
	*total_r = (size_t)(end - in) + 2;
	return true;
}

int
decode_rfc2047(const char *in, size_t len, struct buf *out)
{
	return decode_rfc2047_with(in, len, out, NULL);
}

int
decode_rfc2047_with(const char *in, size_t len, struct buf *out,
    decode_word_fn *fn)
{
	struct buf word;
	size_t i = 0;
	size_t pending_ws = 0;	/* white space after a word, maybe dropped */
	bool after_word = false;

	while (i < len) {
		char enc;
		const char *text;
		size_t cslen, tlen, total;
		int r;

		if (in[i] == '=' && parse_word(in + i, len - i, &cslen, &enc,
		    &text, &tlen, &total)) {
			/* white space between two encoded-words vanishes */
			if (!after_word && pending_ws > 0 &&
			    buf_append(out, in + i - pending_ws, pending_ws) < 0)
				return -1;
			pending_ws = 0;
			/* a word is at most a header line: bounded by len */
			buf_init(&word, BUF_UNLIMITED);
			r = enc == 'B' ? decode_base64(text, tlen, &word) :
			    qp_decode(text, tlen, &word, true);
			if (r == 0 && word.len > 0)
				r = fn != NULL ? fn(in + i + 2, cslen, word.data,
				    word.len, out) :
				    buf_append(out, word.data, word.len);
			buf_free(&word);
			if (r < 0)
				return -1;
			i += total;
			after_word = true;
			continue;
		}
		if (in[i] == ' ' || in[i] == '\t' || in[i] == '\r' || in[i] == '\n') {
			pending_ws++;
			i++;
			continue;
		}
		if (pending_ws > 0 && buf_append(out, in + i - pending_ws,
		    pending_ws) < 0)
			return -1;
		pending_ws = 0;
		after_word = false;
		if (buf_append_c(out, in[i]) < 0)
			return -1;
		i++;
	}
	if (pending_ws > 0 && buf_append(out, in + len - pending_ws, pending_ws) < 0)
		return -1;
	return 0;
}
