#include "imap/bodystructure.h"

#include "lib/str.h"
#include "lib/xalloc.h"
#include "mail/header.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Header values longer than this are cut (bounded output per message). */
#define ENVELOPE_MAX_VALUE 16384
/* Longer strings go as literals: easier on clients than huge quoted ones. */
#define QUOTED_MAX 1024
/* Addresses rendered per header field */
#define MAX_ADDRESSES 1000

static bool
can_quote(const char *s, size_t len, bool utf8)
{
	bool eight = false;

	if (len > QUOTED_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\0' || c == '\r' || c == '\n')
			return false;
		if (c >= 0x80)
			eight = true;
	}
	return !eight || (utf8 && str_is_utf8(s, len));
}

void
imap_append_nstring(struct buf *out, const char *s, size_t len, bool utf8)
{
	if (s == NULL) {
		buf_append_str(out, "NIL");
		return;
	}
	if (!can_quote(s, len, utf8)) {
		buf_printf(out, "{%zu}\r\n", len);
		buf_append(out, s, len);
		return;
	}
	buf_append_c(out, '"');
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			buf_append_c(out, '\\');
		buf_append_c(out, s[i]);
	}
	buf_append_c(out, '"');
}

void
imap_append_nstr(struct buf *out, const char *s, bool utf8)
{
	imap_append_nstring(out, s, s != NULL ? strlen(s) : 0, utf8);
}

/* --- addresses (RFC 5322 §3.4, leniently) ----------------------------- */

enum tok_type { TOK_END, TOK_WORD, TOK_QUOTED, TOK_SPECIAL };

struct tok {
	enum tok_type type;
	const char *start;	/* raw text of the token */
	size_t len;
	char c;			/* TOK_SPECIAL */
};

/*
 * Skips blanks and comments; with comment != NULL the text of the last
 * comment skipped (outer parentheses off, inner ones kept) is put there.
 */
static void
skip_comments_ws(const char *s, size_t *ip, struct buf *comment)
{
	size_t i = *ip;
	unsigned int depth = 0;

	for (; s[i] != '\0'; i++) {
		if (depth == 0 && (s[i] == ' ' || s[i] == '\t'))
			continue;
		if (s[i] == '(') {
			if (depth++ == 0) {
				if (comment != NULL)
					buf_reset(comment);
				continue;
			}
		} else if (depth == 0) {
			break;
		} else if (s[i] == ')') {
			if (--depth == 0)
				continue;
		} else if (s[i] == '\\' && s[i + 1] != '\0') {
			i++;
		}
		if (comment != NULL && comment->len < ENVELOPE_MAX_VALUE - 1)
			buf_append_c(comment, s[i]);
	}
	*ip = i;
}

static void
next_tok(const char *s, size_t *ip, struct tok *t, struct buf *comment)
{
	size_t i;

	skip_comments_ws(s, ip, comment);
	i = *ip;
	t->start = s + i;
	if (s[i] == '\0') {
		t->type = TOK_END;
		t->len = 0;
		return;
	}
	if (s[i] == '"') {
		i++;
		while (s[i] != '\0' && s[i] != '"') {
			if (s[i] == '\\' && s[i + 1] != '\0')
				i++;
			i++;
		}
		if (s[i] == '"')
			i++;
		t->type = TOK_QUOTED;
	} else if (s[i] == '[') {
		/* domain literal */
		while (s[i] != '\0' && s[i] != ']')
			i++;
		if (s[i] == ']')
			i++;
		t->type = TOK_WORD;
	} else if (strchr("<>:;@,", s[i]) != NULL) {
		t->type = TOK_SPECIAL;
		t->c = s[i];
		i++;
	} else {
		/* at least one byte, so a stray ')' cannot stall us */
		i++;
		while (s[i] != '\0' && s[i] != ' ' && s[i] != '\t' &&
		    strchr("()<>:;@,\"[", s[i]) == NULL)
			i++;
		t->type = TOK_WORD;
	}
	t->len = (size_t)(s + i - t->start);
	*ip = i;
}

struct addr_state {
	struct buf *out;
	bool utf8;
	bool text;		/* "name <mailbox@host>, ..." for SEARCH */
	unsigned int count;
	struct buf name;	/* display phrase */
	struct buf raw;		/* addr-spec as written, without spaces */
	bool have_name;
	/* the last comment: "user@domain (Real Name)" has no phrase, and
	   the comment is its display name, as Dovecot and others show it */
	struct buf comment;
	/* imap_address_first(): only the first address (or group) is kept */
	bool first_only;
	char *fname, *fmailbox, *fhost;
};

static void
phrase_add(struct addr_state *st, const struct tok *t)
{
	if (st->name.len > 0)
		buf_append_c(&st->name, ' ');
	if (t->type == TOK_QUOTED) {
		/* the quotes go, quoted-pairs are unescaped */
		for (size_t i = 1; i < t->len; i++) {
			char c = t->start[i];

			if (c == '"' && i == t->len - 1)
				break;
			if (c == '\\' && i + 1 < t->len)
				c = t->start[++i];
			buf_append_c(&st->name, c);
		}
	} else {
		buf_append(&st->name, t->start, t->len);
	}
	st->have_name = true;
}

static void
emit(struct addr_state *st, const char *name, const char *adl,
    const char *mailbox, size_t mlen, const char *host, size_t hlen)
{
	if (st->count >= MAX_ADDRESSES)
		return;
	if (st->first_only) {
		/* a group's start counts (its name as the mailbox, no host),
		   as in ENVELOPE; its end does not */
		if (mailbox == NULL || st->fmailbox != NULL)
			return;
		st->count++;
		st->fname = name != NULL ? xstrdup(name) : NULL;
		st->fmailbox = xstrndup(mailbox, mlen);
		st->fhost = host != NULL ? xstrndup(host, hlen) : NULL;
		return;
	}
	if (st->text) {
		/* groups (no host) are left out: only addresses are searched */
		if (host == NULL)
			return;
		st->count++;
		if (name != NULL)
			buf_printf(st->out, "%s ", name);
		buf_append_c(st->out, '<');
		buf_append(st->out, mailbox, mlen);
		buf_append_c(st->out, '@');
		buf_append(st->out, host, hlen);
		buf_append_str(st->out, ">, ");
		return;
	}
	if (st->count == 0)
		buf_append_c(st->out, '(');
	st->count++;
	buf_append_c(st->out, '(');
	imap_append_nstr(st->out, name, st->utf8);
	buf_append_c(st->out, ' ');
	imap_append_nstr(st->out, adl, st->utf8);
	buf_append_c(st->out, ' ');
	imap_append_nstring(st->out, mailbox, mlen, st->utf8);
	buf_append_c(st->out, ' ');
	imap_append_nstring(st->out, host, hlen, st->utf8);
	buf_append_c(st->out, ')');
}

/* An addr-spec "local@domain" (raw, without spaces) with a display name. */
static void
emit_spec(struct addr_state *st, const char *name, const char *adl,
    const char *spec, size_t len)
{
	const char *at = NULL;

	for (size_t i = 0; i < len; i++) {
		if (spec[i] == '@')
			at = spec + i;
	}
	if (len == 0) {
		/* "Name <>" or a lone phrase: no mailbox at all */
		if (name == NULL)
			return;
		emit(st, name, adl, "MISSING_MAILBOX", 15, "MISSING_DOMAIN", 14);
	} else if (at == NULL) {
		emit(st, name, adl, spec, len, "MISSING_DOMAIN", 14);
	} else {
		emit(st, name, adl, spec, (size_t)(at - spec), at + 1,
		    len - (size_t)(at - spec) - 1);
	}
}

static void
reset_pending(struct addr_state *st)
{
	buf_reset(&st->name);
	buf_reset(&st->raw);
	buf_reset(&st->comment);
	st->have_name = false;
}

/* A run of words and dots with no "<": a bare addr-spec. */
static void
flush_bare(struct addr_state *st)
{
	if (st->raw.len > 0)
		emit_spec(st, st->comment.len > 0 ? buf_cstr(&st->comment) : NULL,
		    NULL, buf_cstr(&st->raw), st->raw.len);
	reset_pending(st);
}

static void
parse_angle(struct addr_state *st, const char *s, size_t *ip)
{
	struct buf route, spec;
	struct tok t;
	bool in_route = false;

	buf_init(&route, ENVELOPE_MAX_VALUE);
	buf_init(&spec, ENVELOPE_MAX_VALUE);
	buf_append_str(&route, "");
	buf_append_str(&spec, "");
	for (;;) {
		next_tok(s, ip, &t, NULL);
		if (t.type == TOK_END || (t.type == TOK_SPECIAL && t.c == '>'))
			break;
		if (t.type == TOK_SPECIAL && t.c == '@' && spec.len == 0 &&
		    !in_route && route.len == 0) {
			in_route = true;
		}
		if (in_route) {
			if (t.type == TOK_SPECIAL && t.c == ':') {
				in_route = false;
				continue;
			}
			buf_append(&route, t.start, t.len);
			continue;
		}
		buf_append(&spec, t.start, t.len);
	}
	emit_spec(st, st->have_name ? buf_cstr(&st->name) : NULL,
	    route.len > 0 ? buf_cstr(&route) : NULL, buf_cstr(&spec), spec.len);
	buf_free(&route);
	buf_free(&spec);
	reset_pending(st);
}

static void
address_list_walk_st(struct addr_state *stp, const char *s);

static void
address_list_walk(struct buf *out, const char *s, bool utf8, bool text)
{
	struct addr_state st = { .out = out, .utf8 = utf8, .text = text };

	address_list_walk_st(&st, s);
}

int
imap_address_first(const char *value, char **name_r, char **mailbox_r,
    char **host_r)
{
	struct buf dummy;
	struct addr_state st = { .out = &dummy, .text = true, .first_only = true };

	buf_init(&dummy, 1);
	address_list_walk_st(&st, value);
	buf_free(&dummy);
	if (st.fmailbox == NULL)
		return -1;
	*name_r = st.fname;
	*mailbox_r = st.fmailbox;
	*host_r = st.fhost;
	return 0;
}

static void
address_list_walk_st(struct addr_state *stp, const char *s)
{
	struct addr_state st = *stp;
	struct buf *out = st.out;
	bool text = st.text;
	bool in_group = false;
	size_t i = 0;
	struct tok t;

	buf_init(&st.name, ENVELOPE_MAX_VALUE);
	buf_init(&st.raw, ENVELOPE_MAX_VALUE);
	buf_init(&st.comment, ENVELOPE_MAX_VALUE);
	buf_append_str(&st.name, "");
	buf_append_str(&st.raw, "");
	buf_append_str(&st.comment, "");
	for (;;) {
		next_tok(s, &i, &t, &st.comment);
		if (t.type == TOK_END)
			break;
		if (t.type != TOK_SPECIAL) {
			phrase_add(&st, &t);
			buf_append(&st.raw, t.start, t.len);
			continue;
		}
		switch (t.c) {
		case '<':
			parse_angle(&st, s, &i);
			break;
		case '@':
			buf_append_c(&st.raw, '@');
			buf_append_c(&st.name, '@');
			break;
		case ':':
			if (in_group) {
				buf_append_c(&st.raw, ':');
				break;
			}
			/* group start: (NIL NIL "name" NIL) */
			in_group = true;
			emit(&st, NULL, NULL, buf_cstr(&st.name), st.name.len,
			    NULL, 0);
			reset_pending(&st);
			break;
		case ';':
			flush_bare(&st);
			if (in_group) {
				emit(&st, NULL, NULL, NULL, 0, NULL, 0);
				in_group = false;
			}
			break;
		case ',':
			flush_bare(&st);
			break;
		case '>':
			break;
		}
	}
	flush_bare(&st);
	if (in_group)
		emit(&st, NULL, NULL, NULL, 0, NULL, 0);
	if (text)
		;
	else if (st.count == 0)
		buf_append_str(out, "NIL");
	else
		buf_append_c(out, ')');
	buf_free(&st.name);
	buf_free(&st.raw);
	buf_free(&st.comment);
	*stp = st;
}

/* --- ENVELOPE ---------------------------------------------------------- */

enum env_field {
	ENV_DATE, ENV_SUBJECT, ENV_FROM, ENV_SENDER, ENV_REPLY_TO, ENV_TO,
	ENV_CC, ENV_BCC, ENV_IN_REPLY_TO, ENV_MESSAGE_ID, ENV_COUNT
};

static const char *const env_names[ENV_COUNT] = {
	"Date", "Subject", "From", "Sender", "Reply-To", "To", "Cc", "Bcc",
	"In-Reply-To", "Message-ID",
};

/* Does this address field hold at least one token? */
static bool
value_empty(const char *v)
{
	size_t i = 0;

	if (v == NULL)
		return true;
	skip_comments_ws(v, &i, NULL);
	return v[i] == '\0';
}

static void
render_address_list(struct buf *out, const char *s, bool utf8)
{
	address_list_walk(out, s, utf8, false);
}

char *
imap_address_list_text(const char *value)
{
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "");
	address_list_walk(&b, value, true, true);
	return buf_steal(&b);
}

void
imap_envelope_render(struct buf *out, const char *data, size_t start,
    size_t end, bool utf8)
{
	char *v[ENV_COUNT] = { NULL };
	struct mail_header_iter it;
	struct mail_header_field f;

	mail_header_iter_init(&it, data, start, end);
	while (mail_header_next(&it, &f) > 0) {
		for (int k = 0; k < ENV_COUNT; k++) {
			size_t n = strlen(env_names[k]);

			if (v[k] == NULL && f.name_len == n &&
			    strncasecmp(f.name, env_names[k], n) == 0) {
				v[k] = mail_header_unfold(f.value, f.value_len,
				    ENVELOPE_MAX_VALUE);
				break;
			}
		}
	}
	buf_append_c(out, '(');
	for (int k = 0; k < ENV_COUNT; k++) {
		const char *val = v[k];

		if (k > 0)
			buf_append_c(out, ' ');
		switch (k) {
		case ENV_FROM: case ENV_SENDER: case ENV_REPLY_TO:
		case ENV_TO: case ENV_CC: case ENV_BCC:
			/* Sender and Reply-To default to From (RFC 9051
			   §7.5.2) */
			if ((k == ENV_SENDER || k == ENV_REPLY_TO) &&
			    value_empty(val))
				val = v[ENV_FROM];
			if (value_empty(val))
				buf_append_str(out, "NIL");
			else
				render_address_list(out, val, utf8);
			break;
		default:
			if (val != NULL && *val == '\0')
				val = NULL;
			imap_append_nstr(out, val, utf8);
			break;
		}
	}
	buf_append_c(out, ')');
	for (int k = 0; k < ENV_COUNT; k++)
		free(v[k]);
}

/* --- BODYSTRUCTURE ----------------------------------------------------- */

static void
render_params(struct buf *out, const struct mime_param *p, unsigned int n,
    bool utf8)
{
	if (n == 0) {
		buf_append_str(out, "NIL");
		return;
	}
	buf_append_c(out, '(');
	for (unsigned int i = 0; i < n; i++) {
		if (i > 0)
			buf_append_c(out, ' ');
		imap_append_nstr(out, p[i].name, utf8);
		buf_append_c(out, ' ');
		imap_append_nstr(out, p[i].value, utf8);
	}
	buf_append_c(out, ')');
}

/* body-fld-dsp SP body-fld-lang SP body-fld-loc */
static void
render_dsp_lang_loc(struct buf *out, const struct mime_part *part, bool utf8)
{
	if (part->disposition == NULL) {
		buf_append_str(out, "NIL");
	} else {
		buf_append_c(out, '(');
		imap_append_nstr(out, part->disposition, utf8);
		buf_append_c(out, ' ');
		render_params(out, part->disp_params, part->ndisp_params, utf8);
		buf_append_c(out, ')');
	}
	buf_append_c(out, ' ');
	if (part->language == NULL) {
		buf_append_str(out, "NIL");
	} else {
		size_t n;
		char **langs = str_split(part->language, ", \t", &n);

		if (n == 0) {
			buf_append_str(out, "NIL");
		} else if (n == 1) {
			imap_append_nstr(out, langs[0], utf8);
		} else {
			buf_append_c(out, '(');
			for (size_t i = 0; i < n; i++) {
				if (i > 0)
					buf_append_c(out, ' ');
				imap_append_nstr(out, langs[i], utf8);
			}
			buf_append_c(out, ')');
		}
		str_array_free(langs);
	}
	buf_append_c(out, ' ');
	imap_append_nstr(out, part->location, utf8);
}

static void render_part(struct buf *out, const struct mime_message *msg,
    const struct mime_part *part, bool extended, bool utf8);

static void
render_multipart(struct buf *out, const struct mime_message *msg,
    const struct mime_part *part, bool extended, bool utf8)
{
	const struct mime_part *c;

	buf_append_c(out, '(');
	for (c = part->children; c != NULL; c = c->next)
		render_part(out, msg, c, extended, utf8);
	buf_append_c(out, ' ');
	imap_append_nstr(out, part->subtype, utf8);
	if (extended) {
		const struct mime_param *p = part->params;
		unsigned int n = part->nparams;

		buf_append_c(out, ' ');
		render_params(out, p, n, utf8);
		buf_append_c(out, ' ');
		render_dsp_lang_loc(out, part, utf8);
	}
	buf_append_c(out, ')');
}

static void
render_single(struct buf *out, const struct mime_message *msg,
    const struct mime_part *part, bool extended, bool utf8)
{
	buf_append_c(out, '(');
	imap_append_nstr(out, part->type, utf8);
	buf_append_c(out, ' ');
	imap_append_nstr(out, part->subtype, utf8);
	buf_append_c(out, ' ');
	render_params(out, part->params, part->nparams, utf8);
	buf_append_c(out, ' ');
	imap_append_nstr(out, part->id, utf8);
	buf_append_c(out, ' ');
	imap_append_nstr(out, part->description, utf8);
	buf_append_c(out, ' ');
	imap_append_nstr(out, part->encoding != NULL ? part->encoding : "7bit",
	    utf8);
	buf_printf(out, " %zu", part->body_vsize);
	if ((part->flags & MIME_PART_MESSAGE) != 0) {
		const struct mime_part *m = part->message;

		buf_append_c(out, ' ');
		imap_envelope_render(out, msg->data, m->hdr_offset,
		    m->hdr_offset + m->hdr_size, utf8);
		buf_append_c(out, ' ');
		render_part(out, msg, m, extended, utf8);
		buf_printf(out, " %u", part->body_lines);
	} else if ((part->flags & MIME_PART_TEXT) != 0) {
		buf_printf(out, " %u", part->body_lines);
	}
	if (extended) {
		buf_append_c(out, ' ');
		imap_append_nstr(out, part->md5, utf8);
		buf_append_c(out, ' ');
		render_dsp_lang_loc(out, part, utf8);
	}
	buf_append_c(out, ')');
}

static void
render_part(struct buf *out, const struct mime_message *msg,
    const struct mime_part *part, bool extended, bool utf8)
{
	if ((part->flags & MIME_PART_MULTIPART) != 0)
		render_multipart(out, msg, part, extended, utf8);
	else
		render_single(out, msg, part, extended, utf8);
}

void
imap_bodystructure_render(struct buf *out, const struct mime_message *msg,
    const struct mime_part *part, bool extended, bool utf8)
{
	render_part(out, msg, part, extended, utf8);
}
