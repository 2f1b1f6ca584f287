/*
 * dkim_canon: DKIM canonicalization (RFC 6376 3.4), shared by the signer
 * and the verifier.
 *
 * Headers are canonicalized one field at a time. The body goes through a
 * streaming canonicalizer that passes its output to a sink (normally a
 * hash), so a 20 MB body never has to be in memory at once.
 *
 * Line ends: CRLF is the line end; a bare LF is taken as a line end too
 * (as if it were CRLF), so a message stored with LF signs the same as the
 * CRLF form that goes on the wire. A CR not followed by LF is data.
 */
#ifndef TEGAMI_DKIM_CANON_H
#define TEGAMI_DKIM_CANON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

enum dkim_canon {
	DKIM_CANON_SIMPLE,
	DKIM_CANON_RELAXED,
};

/* "simple" / "relaxed" */
const char *dkim_canon_name(enum dkim_canon canon);
/* Parses "simple"/"relaxed" (case-insensitive); -1 if neither. */
int dkim_canon_parse(const char *s, size_t len, enum dkim_canon *canon_r);

/*
 * Appends the canonical form of one header field to out: field is the
 * whole field as in the message ("Name: value" with its folding lines,
 * with or without the final CRLF). The canonical form ends with CRLF when
 * with_crlf (the DKIM-Signature field itself is hashed without it).
 * -1 if out's limit was reached.
 */
int dkim_canon_header(enum dkim_canon canon, const char *field, size_t len,
    bool with_crlf, struct buf *out);

typedef void dkim_sink(void *context, const void *data, size_t len);

struct dkim_body_canon {
	enum dkim_canon canon;
	dkim_sink *sink;
	void *sink_context;
	uint64_t out_len;	/* canonical bytes passed to the sink */
	/* Empty lines seen and not yet passed on: they may be trailing. */
	uint64_t pending_crlf;
	bool pending_cr;	/* a CR ended the last chunk */
	bool pending_wsp;	/* relaxed: white space not yet passed on */
	bool line_has_data;	/* the current line is not empty */
	unsigned char out[4096];	/* batches calls to the sink */
	size_t out_pos;
};

void dkim_body_canon_init(struct dkim_body_canon *bc, enum dkim_canon canon,
    dkim_sink *sink, void *sink_context);
/* Feeds body bytes, in chunks of any size. */
void dkim_body_canon_update(struct dkim_body_canon *bc, const void *data,
    size_t len);
/* Ends the body: trailing empty lines dropped, a final CRLF supplied. */
void dkim_body_canon_final(struct dkim_body_canon *bc);

#endif
