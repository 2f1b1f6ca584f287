#include "mail/header.h"

#include "lib/buf.h"
#include "lib/xalloc.h"

#include <string.h>
#include <strings.h>

/* Offset just after the line end of the line starting at pos, or end. */
static size_t
line_next(const char *data, size_t pos, size_t end)
{
	const char *lf = memchr(data + pos, '\n', end - pos);

	return lf != NULL ? (size_t)(lf - data) + 1 : end;
}

size_t
mail_header_block_end(const char *data, size_t start, size_t end)
{
	size_t pos = start;

	while (pos < end) {
		if (data[pos] == '\n')
			return pos + 1;
		if (data[pos] == '\r' && pos + 1 < end && data[pos + 1] == '\n')
			return pos + 2;
		pos = line_next(data, pos, end);
	}
	return end;
}

void
mail_header_iter_init(struct mail_header_iter *it, const char *data,
    size_t start, size_t end)
{
	it->data = data;
	it->pos = start;
	it->end = end;
}

int
mail_header_next(struct mail_header_iter *it, struct mail_header_field *f)
{
	const char *d = it->data;

	while (it->pos < it->end) {
		size_t start = it->pos, pos, colon, vend;

		/* the empty line that ends the block */
		if (d[start] == '\n' ||
		    (d[start] == '\r' && start + 1 < it->end && d[start + 1] == '\n')) {
			it->pos = it->end;
			return 0;
		}
		/* the field runs until a line that does not start with WSP */
		pos = line_next(d, start, it->end);
		while (pos < it->end && (d[pos] == ' ' || d[pos] == '\t'))
			pos = line_next(d, pos, it->end);
		it->pos = pos;

		/* field name: printable, no space or colon; tolerate white
		   space before the colon ("Subject : x", seen in the wild) */
		colon = start;
		while (colon < pos && d[colon] != ':' && d[colon] != '\n' &&
		    (unsigned char)d[colon] > ' ' && d[colon] != 0x7f)
			colon++;
		if (colon == start)
			continue;
		vend = colon;
		while (colon < pos && (d[colon] == ' ' || d[colon] == '\t'))
			colon++;
		if (colon >= pos || d[colon] != ':')
			continue;	/* not a field */
		f->name = d + start;
		f->name_len = vend - start;
		f->value = d + colon + 1;
		f->offset = start;
		f->size = pos - start;
		/* the value stops before the final line end */
		vend = pos;
		if (vend > colon + 1 && d[vend - 1] == '\n') {
			vend--;
			if (vend > colon + 1 && d[vend - 1] == '\r')
				vend--;
		}
		f->value_len = vend - (colon + 1);
		return 1;
	}
	return 0;
}

char *
mail_header_unfold(const char *value, size_t len, size_t max)
{
	struct buf b;
	size_t i = 0;

	while (i < len && (value[i] == ' ' || value[i] == '\t' ||
	    value[i] == '\r' || value[i] == '\n'))
		i++;
	while (len > i && (value[len - 1] == ' ' || value[len - 1] == '\t' ||
	    value[len - 1] == '\r' || value[len - 1] == '\n'))
		len--;
	buf_init(&b, max);
	buf_append_str(&b, "");
	for (; i < len; i++) {
		if (value[i] == '\r' || value[i] == '\n')
			continue;
		if (buf_append_c(&b, value[i]) < 0)
			break;
	}
	return buf_steal(&b);
}

char *
mail_header_get(const char *data, size_t start, size_t end, const char *name,
    size_t max)
{
	struct mail_header_iter it;
	struct mail_header_field f;
	size_t nlen = strlen(name);

	mail_header_iter_init(&it, data, start, end);
	while (mail_header_next(&it, &f) > 0) {
		if (f.name_len == nlen && strncasecmp(f.name, name, nlen) == 0)
			return mail_header_unfold(f.value, f.value_len, max);
	}
	return NULL;
}
