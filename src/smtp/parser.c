/* smtp/parser: incremental command-line and DATA readers (see parser.h). */
#include "smtp/parser.h"

#include "lib/log.h"
#include "lib/str.h"

#include <string.h>

void
smtp_line_reader_init(struct smtp_line_reader *lr, size_t max)
{
	memset(lr, 0, sizeof(*lr));
	/* +1 for a CR that is held until we know whether LF follows */
	buf_init(&lr->line, max + 1);
	lr->max = max;
}

static void
line_wipe(struct smtp_line_reader *lr)
{
	if (lr->line.data != NULL)
		str_wipe(lr->line.data, lr->line.cap);
	buf_reset(&lr->line);
}

void
smtp_line_reader_free(struct smtp_line_reader *lr)
{
	line_wipe(lr);
	buf_free(&lr->line);
}

void
smtp_line_reader_next(struct smtp_line_reader *lr)
{
	line_wipe(lr);
	lr->overflow = false;
}

enum smtp_line_result
smtp_line_reader_feed(struct smtp_line_reader *lr, const unsigned char *in,
    size_t len, size_t *consumed_r)
{
	const unsigned char *lf = memchr(in, '\n', len);
	size_t n = lf != NULL ? (size_t)(lf - in) : len;

	*consumed_r = lf != NULL ? n + 1 : len;
	if (!lr->overflow && buf_append(&lr->line, in, n) < 0) {
		/* the line no longer fits: drop it, remember to say so at its end */
		line_wipe(lr);
		lr->overflow = true;
	}
	if (lf == NULL) {
		/* A full buffer may still end in CR + LF of the next feed: only
		 * the line proper counts against max. */
		if (!lr->overflow && lr->line.len > lr->max &&
		    lr->line.data[lr->line.len - 1] != '\r') {
			line_wipe(lr);
			lr->overflow = true;
		}
		return SMTP_LINE_MORE;
	}
	if (lr->overflow)
		return SMTP_LINE_TOO_LONG;
	if (lr->line.len == 0 || lr->line.data[lr->line.len - 1] != '\r')
		return SMTP_LINE_BARE_LF;
	buf_truncate(&lr->line, lr->line.len - 1);
	if (lr->line.len > lr->max)
		return SMTP_LINE_TOO_LONG;
	return SMTP_LINE_OK;
}

/* DATA reader states */
enum {
	DR_BOL = 0,	/* at the beginning of a line */
	DR_TEXT,	/* inside a line */
	DR_CR,		/* after a CR inside a line (CR already output) */
	DR_DOT,		/* after a '.' at the beginning of a line (not output) */
	DR_DOT_CR,	/* after ".\r" at the beginning of a line (not output) */
};

void
smtp_data_reader_init(struct smtp_data_reader *dr, size_t line_max)
{
	memset(dr, 0, sizeof(*dr));
	dr->state = DR_BOL;
	dr->line_max = line_max;
}

static void
dr_out(struct smtp_data_reader *dr, unsigned char c, unsigned char *out,
    size_t *o)
{
	out[(*o)++] = c;
	dr->bytes_out++;
	/* line_max excludes the CRLF: allow one more byte for the CR */
	if (c == '\n') {
		dr->line_len = 0;
	} else if (++dr->line_len > dr->line_max + 1) {
		dr->long_line = true;
	}
}

/* An ordinary byte inside a line (or at its start, not a dot). */
static void
dr_text(struct smtp_data_reader *dr, unsigned char c, unsigned char *out,
    size_t *o)
{
	dr_out(dr, c, out, o);
	if (c == '\r') {
		dr->state = DR_CR;
	} else {
		if (c == '\n')
			dr->bare_cr_lf = true;	/* LF without CR; not a line end */
		dr->state = DR_TEXT;
	}
}

size_t
smtp_data_reader_feed(struct smtp_data_reader *dr, const unsigned char *in,
    size_t len, unsigned char *out, size_t *out_len_r)
{
	size_t i, o = 0;

	for (i = 0; i < len && !dr->done; i++) {
		unsigned char c = in[i];

		switch (dr->state) {
		case DR_BOL:
			if (c == '.')
				dr->state = DR_DOT;
			else
				dr_text(dr, c, out, &o);
			break;
		case DR_TEXT:
			dr_text(dr, c, out, &o);
			break;
		case DR_CR:
			if (c == '\n') {
				dr_out(dr, c, out, &o);
				dr->state = DR_BOL;
			} else {
				dr->bare_cr_lf = true;
				dr_text(dr, c, out, &o);
			}
			break;
		case DR_DOT:
			/* a stuffed dot: drop it and go on with the line */
			if (c == '\r')
				dr->state = DR_DOT_CR;
			else
				dr_text(dr, c, out, &o);
			break;
		case DR_DOT_CR:
			if (c == '\n') {
				dr->done = true;
			} else {
				/* ".\r" + x: the dot was stuffing, the CR is bare */
				dr->bare_cr_lf = true;
				dr_out(dr, '\r', out, &o);
				dr->state = DR_CR;
				i--;	/* look at c again after the CR */
			}
			break;
		default:
			panic("smtp data reader: bad state %d", dr->state);
		}
	}
	*out_len_r = o;
	return i;
}

void
smtp_data_reader_scan_binary(struct smtp_data_reader *dr,
    const unsigned char *in, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = in[i];

		if (dr->state == DR_CR) {
			if (c != '\n')
				dr->bare_cr_lf = true;
		} else if (c == '\n') {
			dr->bare_cr_lf = true;
		}
		if (c == '\n') {
			dr->line_len = 0;
		} else if (++dr->line_len > dr->line_max + 1) {
			dr->long_line = true;
		}
		dr->state = c == '\r' ? DR_CR : DR_TEXT;
	}
	dr->bytes_out += len;
}

void
smtp_data_reader_finish_binary(struct smtp_data_reader *dr)
{
	if (dr->state == DR_CR)
		dr->bare_cr_lf = true;
}

int
smtp_command_split(const char *line, char verb_r[16], const char **args_r)
{
	size_t n = 0;

	while ((line[n] >= 'a' && line[n] <= 'z') ||
	    (line[n] >= 'A' && line[n] <= 'Z')) {
		if (n == 15)
			return -1;
		verb_r[n] = line[n];
		n++;
	}
	verb_r[n] = '\0';
	if (n == 0 || (line[n] != '\0' && line[n] != ' '))
		return -1;
	while (line[n] == ' ')
		n++;
	*args_r = line + n;
	return 0;
}

bool
smtp_command_chars_ok(const char *line, size_t len)
{
	bool ascii = true;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
		if (c >= 0x80)
			ascii = false;
	}
	return ascii || str_is_utf8(line, len);
}

int
smtp_sasl_plain_split(unsigned char *dec, size_t len, const char **authzid_r,
    const char **login_r, char **password_r)
{
	unsigned char *nul1, *nul2;

	dec[len] = '\0';
	nul1 = memchr(dec, '\0', len);
	if (nul1 == NULL)
		return -1;
	nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - dec));
	if (nul2 == NULL || nul2 == nul1 + 1)
		return -1;
	if (memchr(nul2 + 1, '\0', len - (size_t)(nul2 + 1 - dec)) != NULL)
		return -1;
	*authzid_r = (const char *)dec;
	*login_r = (const char *)nul1 + 1;
	*password_r = (char *)nul2 + 1;
	return 0;
}

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

long
smtp_base64_decode(const char *in, size_t len, unsigned char *out,
    size_t outsize)
{
	size_t o = 0;

	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4], pad = 0;
		bool last = i + 4 == len;

		for (int k = 0; k < 4; k++) {
			unsigned char c = (unsigned char)in[i + k];

			if (c == '=' && last && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad > 0)
				return -1;	/* data after '=' */
			v[k] = b64_value(c);
			if (v[k] < 0)
				return -1;
		}
		if (o + 3 - (size_t)pad > outsize)
			return -1;
		out[o++] = (unsigned char)((v[0] << 2) | (v[1] >> 4));
		if (pad < 2)
			out[o++] = (unsigned char)(((v[1] & 0xf) << 4) | (v[2] >> 2));
		if (pad < 1)
			out[o++] = (unsigned char)(((v[2] & 0x3) << 6) | v[3]);
	}
	return (long)o;
}

void
smtp_base64_encode(const unsigned char *in, size_t len, char *out,
    size_t outsize)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	if (outsize < (len + 2) / 3 * 4 + 1)
		panic("smtp_base64_encode: output buffer too small");
	for (size_t i = 0; i < len; i += 3) {
		unsigned int v = (unsigned int)in[i] << 16;

		if (i + 1 < len)
			v |= (unsigned int)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? tab[v & 63] : '=';
	}
	out[o] = '\0';
}
