/* A short plain-text preview of a message (see preview.h). */
#include "mail/preview.h"

#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mail/charset.h"
#include "mail/decode.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Decoded text may grow (QP soft breaks aside, charsets to UTF-8 ×3). */
#define TEXT_MAX (PREVIEW_INPUT_MAX * 4)

static bool
is_attachment(const struct mime_part *p)
{
	return p->disposition != NULL &&
	    strcasecmp(p->disposition, "attachment") == 0;
}

/*
 * The first leaf of type text/<subtype> under p that is not an
 * attachment; attached messages (message/rfc822) are not looked into.
 */
static const struct mime_part *
find_text(const struct mime_part *p, const char *subtype)
{
	if (p->flags & MIME_PART_MULTIPART) {
		for (const struct mime_part *c = p->children; c != NULL; c = c->next) {
			const struct mime_part *r = find_text(c, subtype);

			if (r != NULL)
				return r;
		}
		return NULL;
	}
	if (p->flags & MIME_PART_MESSAGE || is_attachment(p))
		return NULL;
	return mime_part_is(p, "text", subtype) ? p : NULL;
}

/* The part's first PREVIEW_INPUT_MAX bytes, decoded to UTF-8, into out. */
static void
part_text(const char *data, const struct mime_part *p, struct buf *out)
{
	const char *enc = p->encoding, *body = data + p->body_offset;
	size_t len = p->body_size < PREVIEW_INPUT_MAX ? p->body_size :
	    PREVIEW_INPUT_MAX;
	struct buf raw;

	buf_init(&raw, TEXT_MAX);
	if (enc != NULL && strcasecmp(enc, "base64") == 0)
		(void)decode_base64(body, len, &raw);
	else if (enc != NULL && strcasecmp(enc, "quoted-printable") == 0)
		(void)decode_qp(body, len, &raw);
	else
		(void)buf_append(&raw, body, len);
	(void)charset_to_utf8(mime_part_param(p, "charset"),
	    raw.data != NULL ? raw.data : "", raw.len, out);
	buf_free(&raw);
}

/* --- HTML to text ------------------------------------------------------------ */

/* Elements whose content is not text to show. */
static const char *const hidden_elements[] = {
	"head", "style", "script", "title", "template", NULL,
};

/* The code point of a character reference at s ("&amp;", "&#233;"), its
   length in *len_r; 0 when it is not one. */
static unsigned int
char_ref(const char *s, size_t left, size_t *len_r)
{
	static const struct { const char *name; unsigned int cp; } named[] = {
		{ "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' },
		{ "apos", '\'' }, { "nbsp", ' ' }, { "copy", 0xa9 },
		{ "reg", 0xae }, { "hellip", 0x2026 }, { "mdash", 0x2014 },
		{ "ndash", 0x2013 }, { "rsquo", 0x2019 }, { "lsquo", 0x2018 },
		{ "rdquo", 0x201d }, { "ldquo", 0x201c }, { "euro", 0x20ac },
		{ "zwnj", 0x200c },
	};
	size_t n = 1;
	unsigned long cp = 0;

	if (left < 3 || s[0] != '&')
		return 0;
	if (s[1] == '#') {
		bool hex = left > 2 && (s[2] == 'x' || s[2] == 'X');
		size_t start = hex ? 3 : 2;

		for (n = start; n < left && n < start + 8; n++) {
			char c = s[n];
			int d;

			if (c >= '0' && c <= '9')
				d = c - '0';
			else if (hex && c >= 'a' && c <= 'f')
				d = c - 'a' + 10;
			else if (hex && c >= 'A' && c <= 'F')
				d = c - 'A' + 10;
			else
				break;
			cp = cp * (hex ? 16 : 10) + (unsigned long)d;
		}
		if (n == start || cp == 0 || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		*len_r = n < left && s[n] == ';' ? n + 1 : n;
		return (unsigned int)cp;
	}
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		size_t nl = strlen(named[i].name);

		if (left > nl + 1 && strncmp(s + 1, named[i].name, nl) == 0 &&
		    s[nl + 1] == ';') {
			*len_r = nl + 2;
			return named[i].cp;
		}
	}
	return 0;
}

/* The element name of a tag starting after '<' (and '/'), lowercased. */
static void
tag_name(const char *s, size_t left, char *name, size_t size)
{
	size_t n = 0;

	while (n < left && n + 1 < size && ((s[n] >= 'a' && s[n] <= 'z') ||
	    (s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9'))) {
		name[n] = (char)(s[n] | 0x20);
		n++;
	}
	name[n] = '\0';
}

static bool
hidden(const char *name)
{
	for (size_t i = 0; hidden_elements[i] != NULL; i++) {
		if (strcmp(name, hidden_elements[i]) == 0)
			return true;
	}
	return false;
}

/* HTML in[0..len) as text: tags become spaces, hidden elements go. */
static void
html_to_text(const char *in, size_t len, struct buf *out)
{
	char skip[16] = "";	/* inside this hidden element */
	size_t i = 0;

	while (i < len) {
		if (in[i] == '<') {
			bool closing = i + 1 < len && in[i + 1] == '/';
			char name[16];
			const char *end;

			if (len - i >= 4 && memcmp(in + i, "<!--", 4) == 0) {
				end = memmem(in + i + 4, len - i - 4, "-->", 3);
				i = end != NULL ? (size_t)(end - in) + 3 : len;
				continue;
			}
			tag_name(in + i + 1 + closing, len - i - 1 - closing,
			    name, sizeof(name));
			end = memchr(in + i, '>', len - i);
			i = end != NULL ? (size_t)(end - in) + 1 : len;
			if (skip[0] != '\0') {
				if (closing && strcmp(name, skip) == 0)
					skip[0] = '\0';
				continue;
			}
			if (!closing && hidden(name))
				memcpy(skip, name, strlen(name) + 1);
			(void)buf_append_c(out, ' ');
			continue;
		}
		if (skip[0] != '\0') {
			i++;
			continue;
		}
		if (in[i] == '&') {
			size_t n = 0;
			unsigned int cp = char_ref(in + i, len - i, &n);

			if (cp != 0) {
				(void)charset_put_cp(out, cp);
				i += n;
				continue;
			}
		}
		(void)buf_append_c(out, in[i++]);
	}
}

/* --- plain text to a preview ------------------------------------------------- */

struct preview {
	struct buf out;
	size_t chars, max;
	bool space;		/* a space is owed before the next character */
};

static bool
full(const struct preview *pv)
{
	return pv->chars >= pv->max;
}

/* One line's text: white space runs become one space, invalid UTF-8 and
   control characters are dropped. */
static void
add_text(struct preview *pv, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len && !full(pv)) {
		unsigned int cp;
		size_t n = charset_utf8_next(p + i, len - i, &cp);

		if (n == 0) {
			i++;
			continue;
		}
		i += n;
		if (cp == ' ' || cp == '\t' || cp == '\r' || cp == '\n' ||
		    cp == 0xa0 || cp == 0x200b || cp == 0x200c || cp == 0xfeff) {
			pv->space = pv->out.len > 0;
			continue;
		}
		if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0))
			continue;
		if (pv->space) {
			/* a space only with a character after it */
			if (pv->chars + 2 > pv->max) {
				pv->chars = pv->max;
				break;
			}
			(void)buf_append_c(&pv->out, ' ');
			pv->chars++;
			pv->space = false;
		}
		(void)charset_put_cp(&pv->out, cp);
		pv->chars++;
	}
}

static bool
quoted(const char *line, size_t len)
{
	while (len > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	return len > 0 && *line == '>';
}

/* text[0..len) line by line: quotes, their attribution line and the
   signature left out. */
static void
add_lines(struct preview *pv, const char *text, size_t len)
{
	size_t pos = 0;

	while (pos < len && !full(pv)) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl != NULL ? (size_t)(nl - text) : len;
		size_t next = nl != NULL ? end + 1 : len, llen = end - pos;
		const char *line = text + pos;

		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		if ((llen == 3 && memcmp(line, "-- ", 3) == 0) ||
		    (llen == 2 && memcmp(line, "--", 2) == 0))
			break;		/* the signature */
		if (!quoted(line, llen)) {
			/* "On Monday, Ann wrote:" just before the quote */
			size_t t = llen;
			const char *after = text + next;
			size_t alen = len - next;

			while (t > 0 && (line[t - 1] == ' ' || line[t - 1] == '\t'))
				t--;
			if (!(t > 0 && line[t - 1] == ':' && quoted(after, alen)))
				add_text(pv, line, llen);
			pv->space = pv->out.len > 0;
		}
		pos = next;
	}
}

char *
mail_preview(const struct mime_message *msg, size_t max_chars)
{
	const struct mime_part *p = find_text(msg->root, "plain");
	struct preview pv;
	struct buf text;
	bool html = false;

	memset(&pv, 0, sizeof(pv));
	buf_init(&pv.out, max_chars * 4 + 8);
	buf_append_str(&pv.out, "");
	pv.max = max_chars;
	if (p == NULL) {
		p = find_text(msg->root, "html");
		html = true;
	}
	if (p == NULL || max_chars == 0)
		return buf_steal(&pv.out);
	buf_init(&text, TEXT_MAX);
	buf_append_str(&text, "");
	part_text(msg->data, p, &text);
	if (html) {
		struct buf plain;

		buf_init(&plain, TEXT_MAX);
		buf_append_str(&plain, "");
		html_to_text(text.data, text.len, &plain);
		add_text(&pv, plain.data, plain.len);
		buf_free(&plain);
	} else {
		add_lines(&pv, text.data, text.len);
	}
	buf_free(&text);
	return buf_steal(&pv.out);
}
