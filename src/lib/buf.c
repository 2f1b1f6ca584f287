#include "lib/buf.h"
#include "lib/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

static void
buf_reserve(struct buf *b, size_t need)
{
	size_t cap;
	char *p;

	if (need + 1 <= b->cap)
		return;
	cap = b->cap < 64 ? 64 : b->cap;
	while (cap < need + 1)
		cap *= 2;
	p = realloc(b->data, cap);
	if (p == NULL)
		panic("out of memory (buf %zu bytes)", cap);
	b->data = p;
	b->cap = cap;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
	if (n > b->max || b->len > b->max - n)
		return -1;
	buf_reserve(b, b->len + n);
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_append_str(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int
buf_append_c(struct buf *b, char c)
{
	return buf_append(b, &c, 1);
}

int
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	size_t room;
	int n;

	/* print into the spare room first: most lines fit, and formatting
	   twice (measure, then write) was the cost of every reply line */
	buf_reserve(b, b->len + 128);
	room = b->cap - b->len;
	va_copy(ap2, ap);
	n = vsnprintf(b->data + b->len, room, fmt, ap2);
	va_end(ap2);
	if (n < 0 || (size_t)n > b->max || b->len > b->max - (size_t)n) {
		b->data[b->len] = '\0';	/* unchanged */
		return -1;
	}
	if ((size_t)n >= room) {
		buf_reserve(b, b->len + (size_t)n);
		vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	}
	b->len += (size_t)n;
	return 0;
}

int
buf_append_uint(struct buf *b, unsigned long long v)
{
	char tmp[24];
	size_t n = sizeof(tmp);

	do {
		tmp[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	return buf_append(b, tmp + n, sizeof(tmp) - n);
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n > b->len)
		panic("buf_consume(%zu) past len %zu", n, b->len);
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

void
buf_truncate(struct buf *b, size_t len)
{
	if (len < b->len) {
		b->len = len;
		b->data[len] = '\0';
	}
}

const char *
buf_cstr(struct buf *b)
{
	if (b->data == NULL)
		return "";
	return b->data;
}

char *
buf_steal(struct buf *b)
{
	char *p;

	if (b->data == NULL)
		buf_reserve(b, 0), b->data[0] = '\0';
	p = b->data;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void
bufreader_init(struct bufreader *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->pos = 0;
	r->error = false;
}

size_t
bufreader_left(const struct bufreader *r)
{
	return r->len - r->pos;
}

int
bufreader_get_bytes(struct bufreader *r, size_t n, const unsigned char **p_r)
{
	if (n > r->len - r->pos) {
		r->error = true;
		return -1;
	}
	*p_r = r->p + r->pos;
	r->pos += n;
	return 0;
}

int
bufreader_get_u8(struct bufreader *r, uint8_t *v_r)
{
	const unsigned char *p;

	if (bufreader_get_bytes(r, 1, &p) < 0)
		return -1;
	*v_r = p[0];
	return 0;
}

int
bufreader_get_u16be(struct bufreader *r, uint16_t *v_r)
{
	const unsigned char *p;

	if (bufreader_get_bytes(r, 2, &p) < 0)
		return -1;
	*v_r = (uint16_t)(p[0] << 8 | p[1]);
	return 0;
}

int
bufreader_get_u32be(struct bufreader *r, uint32_t *v_r)
{
	const unsigned char *p;

	if (bufreader_get_bytes(r, 4, &p) < 0)
		return -1;
	*v_r = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
	return 0;
}

int
bufreader_get_line(struct bufreader *r, const char **line_r, size_t *len_r,
    bool *bare_lf_r)
{
	const unsigned char *start = r->p + r->pos;
	const unsigned char *nl = memchr(start, '\n', r->len - r->pos);
	size_t len;
	bool bare = true;

	if (nl == NULL)
		return 0;
	len = (size_t)(nl - start);
	if (len > 0 && start[len - 1] == '\r') {
		len--;
		bare = false;
	}
	*line_r = (const char *)start;
	*len_r = len;
	if (bare_lf_r != NULL)
		*bare_lf_r = bare;
	r->pos += (size_t)(nl - start) + 1;
	return 1;
}
