/*
 * mail/mime: the MIME structure of a message held in memory (RFC 2045,
 * 2046, 2231, 5322), as IMAP (BODY[section], BODYSTRUCTURE, ENVELOPE) and
 * later the filters need it.
 *
 * mime_parse() builds a tree of parts with byte offsets into the caller's
 * data, which must outlive the tree. Nothing is decoded: content transfer
 * encodings and RFC 2047 words stay as sent. Broken input is tolerated the
 * way mail readers do: a missing final boundary ends the last part at the
 * end of its parent, preamble and epilogue are skipped, an unparseable
 * Content-Type is text/plain, a multipart with no part found gets one
 * empty text/plain part (IMAP needs at least one). Nesting past max_depth
 * and parts past max_parts are not descended into: such a multipart or
 * message is kept as a leaf.
 *
 * Sizes: *_size are bytes in data; *_vsize count each bare LF as CRLF,
 * which is what IMAP reports (RFC822.SIZE, BODYSTRUCTURE sizes) for a
 * Maildir file stored with LF line ends. Line counts are the number of
 * lines, a last line without a line end counted too.
 */
#ifndef TEGAMI_MAIL_MIME_H
#define TEGAMI_MAIL_MIME_H

#include <stdbool.h>
#include <stddef.h>

struct mime_limits {
	unsigned int max_depth;		/* multipart/message nesting */
	unsigned int max_parts;		/* parts in the whole tree */
	unsigned int max_params;	/* parameters per header field */
	size_t max_value;		/* bytes kept of one header value */
};

/* Limits fit for mail from the Internet. */
extern const struct mime_limits mime_default_limits;

struct mime_param {
	char *name;	/* as sent; RFC 2231 continuations joined, an
			   extended value named "name*" */
	char *value;	/* quotes removed, still encoded if extended */
};

enum mime_part_flags {
	MIME_PART_MULTIPART = 1 << 0,	/* has children */
	MIME_PART_MESSAGE = 1 << 1,	/* message/rfc822 or message/global
					   with its message parsed in ->message */
	MIME_PART_TEXT = 1 << 2,	/* text/... (IMAP gives its lines) */
	MIME_PART_NO_BOUNDARY = 1 << 3,	/* multipart whose boundary was never
					   seen (or missing) */
	MIME_PART_NO_END = 1 << 4,	/* multipart without a close delimiter */
	MIME_PART_TRUNCATED = 1 << 5,	/* depth or part limit reached here */
};

struct mime_part {
	struct mime_part *parent;
	struct mime_part *children;	/* multipart: first child */
	struct mime_part *next;		/* next sibling */
	unsigned int nchildren;
	/* message/rfc822: the message inside (its header starts at this
	   part's body_offset and its parent is this part) */
	struct mime_part *message;
	unsigned int flags;

	size_t hdr_offset, hdr_size, hdr_vsize;
	unsigned int hdr_lines;
	size_t body_offset, body_size, body_vsize;
	unsigned int body_lines;

	/* Content-Type: never NULL (defaults filled in) */
	char *type, *subtype;
	struct mime_param *params;
	unsigned int nparams;
	/* other Content-* fields, NULL when absent */
	char *id, *description, *encoding, *md5, *language, *location;
	char *disposition;
	struct mime_param *disp_params;
	unsigned int ndisp_params;
};

struct mime_message {
	const char *data;
	size_t size;
	struct mime_part *root;	/* the message itself */
	unsigned int nparts;
};

/*
 * Parses data[0..size). Never fails on bad input; the limits bound the
 * work and memory. Free with mime_message_free().
 */
struct mime_message *mime_parse(const char *data, size_t size,
    const struct mime_limits *limits);
void mime_message_free(struct mime_message **msg);

/* Is this part's type (case-insensitive) type/subtype? */
bool mime_part_is(const struct mime_part *part, const char *type,
    const char *subtype);
/* The value of a Content-Type parameter (case-insensitive), or NULL. */
const char *mime_part_param(const struct mime_part *part, const char *name);

/*
 * The part named by an IMAP section part number ("1", "2.1.3"; RFC 9051
 * §6.4.5): numbers descend into multiparts, and through a message/rfc822
 * part into the message it holds; part 1 of a single-part message is its
 * body. "" is the message itself. NULL when there is no such part.
 */
struct mime_part *mime_part_find(struct mime_message *msg, const char *section);

/*
 * Counting helpers over data[start..end): lines (an unterminated last line
 * counts) and the size with each bare LF counted as CRLF.
 */
unsigned int mime_count_lines(const char *data, size_t start, size_t end);
size_t mime_vsize(const char *data, size_t start, size_t end);

/*
 * Parses a Content-Type-like value "token/token; a=b; c*0=..." (or
 * "token; a=b" for Content-Disposition when want_subtype is false).
 * -1 when the value has no valid type (the caller falls back to defaults).
 * The strings are malloc'd; free the params with mime_params_free().
 */
int mime_parse_content_type(const char *value, bool want_subtype,
    unsigned int max_params, char **type_r, char **subtype_r,
    struct mime_param **params_r, unsigned int *nparams_r);
void mime_params_free(struct mime_param *params, unsigned int n);

#endif
