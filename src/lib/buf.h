/*
 * buf: the one growable byte buffer (Dropbear buffer.c, Postfix VSTRING).
 *
 * A buf has a hard maximum set at init; an append that would pass it fails
 * with -1 and leaves the buffer unchanged, so a peer can never make us grow
 * without bound. The data is always NUL-terminated (not counted in len), so
 * buf_cstr() is free. Untrusted bytes are read with the bounds-checked
 * getters of struct bufreader, never with pointer arithmetic.
 */
#ifndef TEGAMI_BUF_H
#define TEGAMI_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	char *data;	/* NUL-terminated; NULL until the first append */
	size_t len;
	size_t cap;
	size_t max;	/* hard limit on len */
};

#define BUF_UNLIMITED ((size_t)-1 / 2)

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
/* Appends; -1 (buffer unchanged) if len would exceed max. Panics on ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_append_c(struct buf *b, char c);
/* Decimal digits of v (what "%llu" gives, without printf's cost). */
int buf_append_uint(struct buf *b, unsigned long long v);
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Removes the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
void buf_truncate(struct buf *b, size_t len);
const char *buf_cstr(struct buf *b);
/* Hands the data over to the caller (malloc'd, NUL-terminated), b is reset. */
char *buf_steal(struct buf *b);

/* A read cursor over bytes we do not trust. */
struct bufreader {
	const unsigned char *p;
	size_t len;
	size_t pos;
	bool error;	/* set by any getter that ran past the end */
};

void bufreader_init(struct bufreader *r, const void *p, size_t len);
size_t bufreader_left(const struct bufreader *r);
int bufreader_get_u8(struct bufreader *r, uint8_t *v_r);
int bufreader_get_u16be(struct bufreader *r, uint16_t *v_r);
int bufreader_get_u32be(struct bufreader *r, uint32_t *v_r);
/* Points *p_r at the next n bytes and skips them. */
int bufreader_get_bytes(struct bufreader *r, size_t n, const unsigned char **p_r);
/*
 * Returns the next line without its terminator: "\r\n" or "\n"
 * (*bare_lf_r tells which when not NULL). 0 = no complete line yet.
 */
int bufreader_get_line(struct bufreader *r, const char **line_r, size_t *len_r,
    bool *bare_lf_r);

#endif
