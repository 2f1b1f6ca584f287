/*
 * Tokenizer for the junk filter. A small MIME walker of its own: it only
 * needs Content-Type, its boundary and Content-Transfer-Encoding, and it
 * must take anything a spammer sends without complaint.
 */
#include "filter/tokenize.h"

#include "lib/buf.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "mail/decode.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define BOUNDARY_MAX 200
#define HOST_MAX 253
#define HOST_LABELS_MAX 10

/* ------------------------------------------------------------------ */
/* token_set: insertion-ordered, deduplicated by an open-address hash. */

static uint32_t
hash_bytes(const char *p, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)p[i];
		h *= 16777619u;
	}
	return h;
}

void
token_set_init(struct token_set *s, size_t max)
{
	memset(s, 0, sizeof(*s));
	s->max = max;
	s->nslots = 16;
	while (s->nslots < max * 2)
		s->nslots *= 2;
	s->slots = xcalloc(s->nslots, sizeof(*s->slots));
	s->tokens = xcalloc(max > 0 ? max : 1, sizeof(*s->tokens));
}

void
token_set_free(struct token_set *s)
{
	for (size_t i = 0; i < s->count; i++)
		free(s->tokens[i]);
	free(s->tokens);
	free(s->slots);
	memset(s, 0, sizeof(*s));
}

/* The slot holding tok, or the empty slot where it would go. */
static size_t
find_slot(const struct token_set *s, const char *tok, size_t len)
{
	size_t mask = s->nslots - 1, i = hash_bytes(tok, len) & mask;

	while (s->slots[i] != 0) {
		const char *t = s->tokens[s->slots[i] - 1];

		if (strlen(t) == len && memcmp(t, tok, len) == 0)
			break;
		i = (i + 1) & mask;
	}
	return i;
}

bool
token_set_add(struct token_set *s, const char *tok, size_t len)
{
	size_t slot;

	if (len > TOKENIZE_TOKEN_MAX)
		len = TOKENIZE_TOKEN_MAX;
	if (len == 0 || s->count >= s->max)
		return false;
	slot = find_slot(s, tok, len);
	if (s->slots[slot] != 0)
		return false;
	s->tokens[s->count] = xstrndup(tok, len);
	s->slots[slot] = (uint32_t)(s->count + 1);
	s->count++;
	return true;
}

bool
token_set_contains(const struct token_set *s, const char *tok)
{
	size_t len = strlen(tok);

	if (s->nslots == 0 || len == 0)
		return false;
	return s->slots[find_slot(s, tok, len)] != 0;
}

/* ------------------------------------------------------------------ */
/* Words and links.                                                    */

/* Length of the valid UTF-8 sequence of 2-4 bytes at p, or 0. */
static size_t
utf8_len(const unsigned char *p, size_t left)
{
	size_t n;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	}
	return str_is_utf8(p, n) ? n : 0;
}

/* Length of the word character at p: an ASCII letter or digit, '$', or
 * a UTF-8 letter (any valid multi-byte sequence); 0 if none. */
static size_t
word_char(const char *p, size_t left)
{
	unsigned char c = (unsigned char)*p;

	if (isalnum(c) || c == '$')
		return 1;
	if (c >= 0x80)
		return utf8_len((const unsigned char *)p, left);
	return 0;
}

static void
add_prefixed(struct token_set *s, const char *prefix, const char *w,
    size_t len)
{
	char tok[TOKENIZE_TOKEN_MAX + 1];
	size_t plen = strlen(prefix), n = 0;

	if (plen >= TOKENIZE_TOKEN_MAX)
		return;
	memcpy(tok, prefix, plen);
	n = plen;
	for (size_t i = 0; i < len && n < TOKENIZE_TOKEN_MAX; i++)
		tok[n++] = (char)tolower((unsigned char)w[i]);
	token_set_add(s, tok, n);
}

static void
add_word(struct token_set *s, const char *prefix, const char *w, size_t len)
{
	char skip[32];

	if (len < TOKENIZE_WORD_MIN)
		return;
	if (len > TOKENIZE_WORD_MAX) {
		/* what is in a long word matters less than that it is long */
		snprintf(skip, sizeof(skip), "skip:%c:%zu",
		    isalnum((unsigned char)w[0]) ? tolower((unsigned char)w[0]) : '?',
		    len / 10 * 10);
		add_prefixed(s, prefix, skip, strlen(skip));
		return;
	}
	add_prefixed(s, prefix, w, len);
}

/* url:<host> and url:<parent> for each parent domain of two labels or
 * more. */
static void
add_host(struct token_set *s, const char *host, size_t len)
{
	char h[HOST_MAX + 1];
	size_t n = 0;
	int labels = 0;

	while (len > 0 && host[len - 1] == '.')
		len--;
	if (len == 0 || len > HOST_MAX)
		return;
	for (size_t i = 0; i < len; i++)
		h[n++] = (char)tolower((unsigned char)host[i]);
	h[n] = '\0';
	add_prefixed(s, "url:", h, n);
	for (size_t i = 0; i < n && labels < HOST_LABELS_MAX; i++) {
		if (h[i] == '.') {
			const char *parent = h + i + 1;

			labels++;
			if (strchr(parent, '.') != NULL)
				add_prefixed(s, "url:", parent, strlen(parent));
		}
	}
}

static bool
is_host_char(char c)
{
	return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

static bool
is_url_end(char c)
{
	return isspace((unsigned char)c) || c == '"' || c == '\'' || c == '<' ||
	    c == '>' || c == '\0';
}

/* If a link starts at text[i], adds its host and returns its length. */
static size_t
try_url(struct token_set *s, const char *text, size_t len, size_t i)
{
	size_t start, host, hend, end;

	if (len - i >= 8 && strncasecmp(text + i, "https://", 8) == 0)
		start = i + 8;
	else if (len - i >= 7 && strncasecmp(text + i, "http://", 7) == 0)
		start = i + 7;
	else if (len - i >= 4 && strncasecmp(text + i, "www.", 4) == 0 &&
	    (i == 0 || !is_host_char(text[i - 1])))
		start = i;
	else
		return 0;
	for (end = start; end < len && !is_url_end(text[end]); end++)
		;
	/* user:pass@host: the host is after the last '@' before the path */
	host = start;
	for (size_t k = start; k < end && text[k] != '/' && text[k] != '?' &&
	    text[k] != '#'; k++) {
		if (text[k] == '@')
			host = k + 1;
	}
	for (hend = host; hend < end && is_host_char(text[hend]); hend++)
		;
	if (hend > host)
		add_host(s, text + host, hend - host);
	return end - i;
}

void
tokenize_urls(struct token_set *s, const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		size_t n = try_url(s, text, len, i);

		if (n > 0)
			i += n - 1;
	}
}

/* Is the UTF-8 character at p (n bytes) Chinese, Japanese or Korean?
 * Those scripts do not put spaces between words. */
static bool
is_cjk(const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;
	unsigned int cp;

	if (n != 3)
		return false;
	cp = (unsigned int)(u[0] & 0x0f) << 12 | (unsigned int)(u[1] & 0x3f) << 6 |
	    (u[2] & 0x3f);
	return (cp >= 0x3040 && cp <= 0x30ff) || (cp >= 0x3400 && cp <= 0x9fff) ||
	    (cp >= 0xac00 && cp <= 0xd7af) || (cp >= 0xf900 && cp <= 0xfaff);
}

/* A run of CJK characters becomes its character bigrams ("cjk:" + two
 * characters), as word boundaries are unknown. Returns the run length. */
static size_t
tokenize_cjk(struct token_set *s, const char *prefix, const char *text,
    size_t len)
{
	size_t i = 0, prev = 0, nchars = 0;
	char tok[TOKENIZE_TOKEN_MAX + 1];
	size_t plen = strlen(prefix);

	while (i < len) {
		size_t n = word_char(text + i, len - i);

		if (n == 0 || !is_cjk(text + i, n))
			break;
		if (nchars > 0 && plen + 4 + 6 <= TOKENIZE_TOKEN_MAX) {
			memcpy(tok, prefix, plen);
			memcpy(tok + plen, "cjk:", 4);
			memcpy(tok + plen + 4, text + prev, i + n - prev);
			token_set_add(s, tok, plen + 4 + (i + n - prev));
		}
		prev = i;
		nchars++;
		i += n;
	}
	if (nchars == 1 && plen + 4 + 3 <= TOKENIZE_TOKEN_MAX) {
		memcpy(tok, prefix, plen);
		memcpy(tok + plen, "cjk:", 4);
		memcpy(tok + plen + 4, text, 3);
		token_set_add(s, tok, plen + 7);
	}
	return i;
}

void
tokenize_text(struct token_set *s, const char *prefix, const char *text,
    size_t len)
{
	size_t i = 0;

	while (i < len && s->count < s->max) {
		size_t n, start;

		if ((n = try_url(s, text, len, i)) > 0) {
			i += n;
			continue;
		}
		if ((n = word_char(text + i, len - i)) == 0) {
			i++;
			continue;
		}
		if (is_cjk(text + i, n)) {
			i += tokenize_cjk(s, prefix, text + i, len - i);
			continue;
		}
		start = i;
		i += n;
		for (;;) {
			if (i < len && (n = word_char(text + i, len - i)) > 0 &&
			    !is_cjk(text + i, n)) {
				i += n;
			} else if (i + 1 < len && strchr("-'._", text[i]) != NULL &&
			    text[i] != '\0' && word_char(text + i + 1, len - i - 1) > 0) {
				i++;	/* a joiner inside a word: "e-mail", "don't" */
			} else {
				break;
			}
		}
		add_word(s, prefix, text + start, i - start);
	}
}

void
tokenize_html(struct token_set *s, const char *html, size_t len)
{
	struct buf text;
	size_t i = 0;

	tokenize_urls(s, html, len);
	buf_init(&text, TOKENIZE_DECODED_MAX);
	while (i < len) {
		if (html[i] == '<') {
			const char *gt = memchr(html + i, '>', len - i);
			size_t tag_end = gt != NULL ? (size_t)(gt - html) + 1 : len;

			/* the text of style and script is no message text */
			if ((len - i >= 6 && strncasecmp(html + i, "<style", 6) == 0) ||
			    (len - i >= 7 && strncasecmp(html + i, "<script", 7) == 0)) {
				const char *close = NULL;

				for (size_t k = tag_end; k + 1 < len; k++) {
					if (html[k] == '<' && html[k + 1] == '/') {
						close = html + k;
						break;
					}
				}
				tag_end = close != NULL ? (size_t)(close - html) : len;
			}
			buf_append_c(&text, ' ');
			i = tag_end;
		} else if (html[i] == '&') {
			size_t k = i + 1;

			while (k < len && k - i < 10 && (isalnum((unsigned char)html[k]) ||
			    html[k] == '#'))
				k++;
			if (k < len && html[k] == ';') {
				buf_append_c(&text, ' ');
				i = k + 1;
			} else {
				buf_append_c(&text, '&');
				i++;
			}
		} else {
			buf_append_c(&text, html[i]);
			i++;
		}
	}
	tokenize_text(s, "", text.data != NULL ? text.data : "", text.len);
	buf_free(&text);
}

/* ------------------------------------------------------------------ */
/* Header fields.                                                      */

static void
add_addresses(struct token_set *s, const char *prefix, const char *v,
    size_t len)
{
	char p2[32];

	for (size_t i = 0; i < len; i++) {
		size_t a, b;

		if (v[i] != '@')
			continue;
		for (a = i; a > 0 && !isspace((unsigned char)v[a - 1]) &&
		    strchr("<>\"(),;:", v[a - 1]) == NULL; a--)
			;
		for (b = i + 1; b < len && !isspace((unsigned char)v[b]) &&
		    strchr("<>\"(),;:", v[b]) == NULL; b++)
			;
		if (a < i && b > i + 1) {
			add_prefixed(s, prefix, v + a, b - a);
			snprintf(p2, sizeof(p2), "%s@", prefix);
			add_prefixed(s, p2, v + i + 1, b - i - 1);
		}
	}
}

/* type/subtype of a Content-Type value, lower-cased, into out. */
static void
content_type(const char *v, size_t len, char *out, size_t outsize)
{
	size_t i = 0, n = 0;

	while (i < len && isspace((unsigned char)v[i]))
		i++;
	while (i < len && n + 1 < outsize && v[i] != ';' &&
	    !isspace((unsigned char)v[i]))
		out[n++] = (char)tolower((unsigned char)v[i++]);
	out[n] = '\0';
}

/* The value of parameter `name` in a header value, unquoted. */
static bool
header_param(const char *v, size_t len, const char *name, char *out,
    size_t outsize)
{
	size_t nlen = strlen(name);

	for (size_t i = 0; i + nlen < len; i++) {
		size_t k, n = 0;

		if (v[i] != ';')
			continue;
		k = i + 1;
		while (k < len && isspace((unsigned char)v[k]))
			k++;
		if (len - k <= nlen || strncasecmp(v + k, name, nlen) != 0)
			continue;
		k += nlen;
		while (k < len && isspace((unsigned char)v[k]))
			k++;
		if (k >= len || v[k] != '=')
			continue;
		k++;
		while (k < len && isspace((unsigned char)v[k]))
			k++;
		if (k < len && v[k] == '"') {
			for (k++; k < len && v[k] != '"' && n + 1 < outsize; k++)
				out[n++] = v[k];
		} else {
			for (; k < len && v[k] != ';' && !isspace((unsigned char)v[k]) &&
			    n + 1 < outsize; k++)
				out[n++] = v[k];
		}
		out[n] = '\0';
		return n > 0;
	}
	return false;
}

void
tokenize_header(struct token_set *s, const char *name, size_t name_len,
    const char *value, size_t value_len)
{
	struct buf dec;
	char ct[128];
	const char *v;

#define IS(n) (name_len == sizeof(n) - 1 && strncasecmp(name, n, name_len) == 0)
	if (IS("content-type")) {
		content_type(value, value_len, ct, sizeof(ct));
		if (ct[0] != '\0')
			add_prefixed(s, "ct:", ct, strlen(ct));
		if (header_param(value, value_len, "charset", ct, sizeof(ct)))
			add_prefixed(s, "charset:", ct, strlen(ct));
		return;
	}
	if (IS("message-id")) {
		const char *at = memchr(value, '@', value_len);

		if (at != NULL) {
			size_t n = 0;

			while (at + 1 + n < value + value_len && at[1 + n] != '>' &&
			    !isspace((unsigned char)at[1 + n]))
				n++;
			add_prefixed(s, "msgid:", at + 1, n);
		}
		return;
	}
	if (!IS("subject") && !IS("from") && !IS("reply-to") &&
	    !IS("x-mailer") && !IS("user-agent"))
		return;

	buf_init(&dec, 4096);
	decode_rfc2047(value, value_len, &dec);
	v = dec.data != NULL ? dec.data : "";
	if (IS("subject")) {
		tokenize_text(s, "subject:", v, dec.len);
	} else if (IS("from") || IS("reply-to")) {
		const char *prefix = IS("from") ? "from:" : "reply-to:";

		add_addresses(s, prefix, v, dec.len);
		tokenize_text(s, prefix, v, dec.len);
	} else {
		tokenize_text(s, "x-mailer:", v, dec.len);
	}
	buf_free(&dec);
#undef IS
}

/* ------------------------------------------------------------------ */
/* MIME.                                                               */

struct walk {
	struct token_set *s;
	unsigned int parts;
};

/* The next line of [p, end): returns its end (after the LF) and its
 * content length without CR/LF. */
static const char *
next_line(const char *p, const char *end, size_t *content_len_r)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	const char *le = nl != NULL ? nl : end;

	*content_len_r = (size_t)(le - p);
	if (*content_len_r > 0 && p[*content_len_r - 1] == '\r')
		(*content_len_r)--;
	return nl != NULL ? nl + 1 : end;
}

static void walk_entity(struct walk *w, const char *p, size_t len,
    unsigned int depth, bool message_header);

static void
walk_multipart(struct walk *w, const char *body, size_t len,
    const char *boundary, unsigned int depth)
{
	const char *p = body, *end = body + len, *part = NULL;
	size_t blen = strlen(boundary);

	while (p < end) {
		size_t llen;
		const char *line = p, *nextp = next_line(p, end, &llen);

		if (llen >= blen + 2 && line[0] == '-' && line[1] == '-' &&
		    memcmp(line + 2, boundary, blen) == 0) {
			bool close = llen >= blen + 4 && line[blen + 2] == '-' &&
			    line[blen + 3] == '-';

			if (part != NULL) {
				/* the CRLF before a delimiter belongs to it */
				size_t plen = (size_t)(line - part);

				if (plen > 0 && part[plen - 1] == '\n')
					plen--;
				if (plen > 0 && part[plen - 1] == '\r')
					plen--;
				walk_entity(w, part, plen, depth + 1, false);
			}
			if (close)
				return;
			part = nextp;
		}
		p = nextp;
	}
	if (part != NULL && part < end)
		walk_entity(w, part, (size_t)(end - part), depth + 1, false);
}

static void
walk_entity(struct walk *w, const char *p, size_t len, unsigned int depth,
    bool message_header)
{
	const char *end = p + len, *body;
	char ct[128] = "", cte[32] = "", boundary[BOUNDARY_MAX + 1] = "";

	if (++w->parts > TOKENIZE_PARTS_MAX || w->s->count >= w->s->max)
		return;	/* enough parts, or the set is full: nothing to gain */
	/* the header: fields with their continuation lines */
	while (p < end) {
		size_t llen, nlen;
		const char *field = p, *colon, *fend;

		p = next_line(p, end, &llen);
		if (llen == 0)
			break;	/* the empty line */
		while (p < end && (*p == ' ' || *p == '\t'))
			p = next_line(p, end, &llen);
		fend = p;
		colon = memchr(field, ':', (size_t)(fend - field));
		if (colon == NULL)
			continue;
		nlen = (size_t)(colon - field);
		while (nlen > 0 && isspace((unsigned char)field[nlen - 1]))
			nlen--;
		if (message_header)
			tokenize_header(w->s, field, nlen, colon + 1,
			    (size_t)(fend - colon - 1));
		if (nlen == 12 && strncasecmp(field, "content-type", 12) == 0) {
			if (!message_header)
				tokenize_header(w->s, field, nlen, colon + 1,
				    (size_t)(fend - colon - 1));
			content_type(colon + 1, (size_t)(fend - colon - 1), ct,
			    sizeof(ct));
			header_param(colon + 1, (size_t)(fend - colon - 1),
			    "boundary", boundary, sizeof(boundary));
		} else if (nlen == 25 && strncasecmp(field,
		    "content-transfer-encoding", 25) == 0) {
			content_type(colon + 1, (size_t)(fend - colon - 1), cte,
			    sizeof(cte));
		}
	}
	body = p;
	len = (size_t)(end - body);

	if (str_has_prefix(ct, "multipart/")) {
		if (boundary[0] != '\0' && depth < TOKENIZE_MIME_DEPTH)
			walk_multipart(w, body, len, boundary, depth);
		return;
	}
	if (strcmp(ct, "message/rfc822") == 0 || strcmp(ct, "message/global") == 0) {
		if (depth < TOKENIZE_MIME_DEPTH)
			walk_entity(w, body, len, depth + 1, true);
		return;
	}
	if (ct[0] != '\0' && !str_has_prefix(ct, "text/"))
		return;	/* attachments: their ct: token is enough */

	if (strcmp(cte, "base64") == 0 || strcmp(cte, "quoted-printable") == 0) {
		struct buf dec;

		buf_init(&dec, TOKENIZE_DECODED_MAX);
		if (cte[0] == 'b')
			decode_base64(body, len, &dec);
		else
			decode_qp(body, len, &dec);
		if (strcmp(ct, "text/html") == 0)
			tokenize_html(w->s, dec.data != NULL ? dec.data : "", dec.len);
		else
			tokenize_text(w->s, "", dec.data != NULL ? dec.data : "",
			    dec.len);
		buf_free(&dec);
	} else if (strcmp(ct, "text/html") == 0) {
		tokenize_html(w->s, body, len < TOKENIZE_DECODED_MAX ? len :
		    TOKENIZE_DECODED_MAX);
	} else {
		tokenize_text(w->s, "", body, len);
	}
}

void
tokenize_message(struct token_set *s, const char *msg, size_t len)
{
	struct walk w = { s, 0 };

	if (len > TOKENIZE_INPUT_MAX)
		len = TOKENIZE_INPUT_MAX;
	walk_entity(&w, msg, len, 0, true);
}
