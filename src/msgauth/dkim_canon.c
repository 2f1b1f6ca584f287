/* DKIM canonicalization, RFC 6376 3.4. */
#include "msgauth/dkim_canon.h"

#include <string.h>
#include <strings.h>

#include "lib/buf.h"

const char *
dkim_canon_name(enum dkim_canon canon)
{
	return canon == DKIM_CANON_RELAXED ? "relaxed" : "simple";
}

int
dkim_canon_parse(const char *s, size_t len, enum dkim_canon *canon_r)
{
	if (len == 6 && strncasecmp(s, "simple", 6) == 0)
		*canon_r = DKIM_CANON_SIMPLE;
	else if (len == 7 && strncasecmp(s, "relaxed", 7) == 0)
		*canon_r = DKIM_CANON_RELAXED;
	else
		return -1;
	return 0;
}

static bool
is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 6376 3.4.2. */
static int
header_relaxed(const unsigned char *p, size_t len, struct buf *out)
{
	size_t i = 0, name_end, colon;
	bool wsp = false, started = false;

	/* Field name: lower-cased, white space before the colon dropped. */
	while (i < len && p[i] != ':')
		i++;
	colon = i;
	name_end = colon;
	while (name_end > 0 && (is_wsp(p[name_end - 1]) ||
	    p[name_end - 1] == '\r' || p[name_end - 1] == '\n'))
		name_end--;
	for (size_t k = 0; k < name_end; k++) {
		unsigned char c = p[k];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (buf_append_c(out, (char)c) < 0)
			return -1;
	}
	if (colon == len)	/* no colon: a broken field; keep the name */
		return 0;
	if (buf_append_c(out, ':') < 0)
		return -1;
	/*
	 * Value: unfolded (CR and LF removed), runs of WSP made one SP, WSP
	 * at both ends removed.
	 */
	for (i = colon + 1; i < len; i++) {
		unsigned char c = p[i];

		if (c == '\r' || c == '\n')
			continue;
		if (is_wsp(c)) {
			wsp = true;
			continue;
		}
		if (wsp && started && buf_append_c(out, ' ') < 0)
			return -1;
		wsp = false;
		started = true;
		if (buf_append_c(out, (char)c) < 0)
			return -1;
	}
	return 0;
}

int
dkim_canon_header(enum dkim_canon canon, const char *field, size_t len,
    bool with_crlf, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)field;

	/* The caller may pass the field with its final line end. */
	if (len >= 2 && p[len - 2] == '\r' && p[len - 1] == '\n')
		len -= 2;
	else if (len >= 1 && p[len - 1] == '\n')
		len -= 1;
	if (canon == DKIM_CANON_RELAXED) {
		if (header_relaxed(p, len, out) < 0)
			return -1;
	} else if (buf_append(out, p, len) < 0) {
		return -1;
	}
	if (with_crlf && buf_append(out, "\r\n", 2) < 0)
		return -1;
	return 0;
}

void
dkim_body_canon_init(struct dkim_body_canon *bc, enum dkim_canon canon,
    dkim_sink *sink, void *sink_context)
{
	memset(bc, 0, sizeof(*bc));
	bc->canon = canon;
	bc->sink = sink;
	bc->sink_context = sink_context;
}

static void
out_flush(struct dkim_body_canon *bc)
{
	if (bc->out_pos > 0) {
		bc->sink(bc->sink_context, bc->out, bc->out_pos);
		bc->out_len += bc->out_pos;
		bc->out_pos = 0;
	}
}

static inline void
out_byte(struct dkim_body_canon *bc, unsigned char c)
{
	if (bc->out_pos == sizeof(bc->out))
		out_flush(bc);
	bc->out[bc->out_pos++] = c;
}

/* A byte that makes the current line non-empty. */
static void
data_byte(struct dkim_body_canon *bc, unsigned char c)
{
	/* Empty lines before this one were not trailing after all. */
	for (; bc->pending_crlf > 0; bc->pending_crlf--) {
		out_byte(bc, '\r');
		out_byte(bc, '\n');
	}
	if (bc->pending_wsp) {
		/* Relaxed only: WSP followed by data on the same line. */
		out_byte(bc, ' ');
		bc->pending_wsp = false;
	}
	out_byte(bc, c);
	bc->line_has_data = true;
}

static void
line_end(struct dkim_body_canon *bc)
{
	if (bc->line_has_data) {
		out_byte(bc, '\r');
		out_byte(bc, '\n');
	} else {
		bc->pending_crlf++;
	}
	bc->line_has_data = false;
	bc->pending_wsp = false;	/* relaxed: WSP at line end goes */
}

static void
body_byte(struct dkim_body_canon *bc, unsigned char c)
{
	if (bc->pending_cr) {
		bc->pending_cr = false;
		if (c == '\n') {
			line_end(bc);
			return;
		}
		data_byte(bc, '\r');
	}
	if (c == '\r') {
		bc->pending_cr = true;
	} else if (c == '\n') {
		line_end(bc);	/* bare LF: taken as CRLF */
	} else if (bc->canon == DKIM_CANON_RELAXED && is_wsp(c)) {
		/* RFC 6376 3.4.4: WSP runs become one SP, none at line end. */
		bc->pending_wsp = true;
	} else {
		data_byte(bc, c);
	}
}

void
dkim_body_canon_update(struct dkim_body_canon *bc, const void *data,
    size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++)
		body_byte(bc, p[i]);
}

void
dkim_body_canon_final(struct dkim_body_canon *bc)
{
	if (bc->pending_cr) {
		bc->pending_cr = false;
		data_byte(bc, '\r');
	}
	/* A last line without CRLF gets one; trailing empty lines go. */
	if (bc->line_has_data) {
		out_byte(bc, '\r');
		out_byte(bc, '\n');
		bc->line_has_data = false;
	}
	bc->pending_crlf = 0;
	bc->pending_wsp = false;
	/* RFC 6376 3.4.3: an empty body is one CRLF in simple, nothing in relaxed. */
	if (bc->canon == DKIM_CANON_SIMPLE && bc->out_len == 0 &&
	    bc->out_pos == 0) {
		out_byte(bc, '\r');
		out_byte(bc, '\n');
	}
	out_flush(bc);
}
