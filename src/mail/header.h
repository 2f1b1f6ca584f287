/*
 * mail/header: the RFC 5322 header block of a message or MIME part, read in
 * place from memory (the message file mapped or read whole).
 *
 * Nothing is copied until asked: the iterator returns each field's name and
 * its raw (still folded) value as pointers into the data. Lines end in CRLF
 * or a bare LF (Maildir files use LF). 8-bit bytes are passed through;
 * RFC 2047 encoded words are left as sent. A line in the header block that
 * is not a field ("From " line, garbage without a colon) is skipped.
 */
#ifndef TEGAMI_MAIL_HEADER_H
#define TEGAMI_MAIL_HEADER_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Where the header block that starts at data[start] ends: returns the
 * offset of the body (just after the empty line), or end when there is no
 * empty line (then the whole range is header and the body is empty).
 */
size_t mail_header_block_end(const char *data, size_t start, size_t end);

struct mail_header_field {
	const char *name;	/* not NUL-terminated */
	size_t name_len;
	const char *value;	/* raw: after the colon, folded, without the
				   final line end */
	size_t value_len;
	size_t offset;		/* of the field's first byte in data */
	size_t size;		/* whole field, final line end included */
};

struct mail_header_iter {
	const char *data;
	size_t pos, end;
};

/* Iterates the header block data[start..end) (end from mail_header_block_end). */
void mail_header_iter_init(struct mail_header_iter *it, const char *data,
    size_t start, size_t end);
/* 1 and *field_r filled, or 0 at the end of the block. */
int mail_header_next(struct mail_header_iter *it,
    struct mail_header_field *field_r);

/*
 * The value unfolded (line ends removed, RFC 5322 §2.2.3) with leading and
 * trailing white space trimmed, NUL-terminated, cut at max bytes; malloc'd.
 */
char *mail_header_unfold(const char *value, size_t len, size_t max);

/* First field named name (case-insensitive) in the block, unfolded, or NULL. */
char *mail_header_get(const char *data, size_t start, size_t end,
    const char *name, size_t max);

#endif
