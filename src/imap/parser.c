/*
 * The IMAP command parser. Bytes are gathered a "segment" at a time: the
 * command text up to a line end, which either ends the command or ends in a
 * literal marker. A complete segment is then tokenized into the argument
 * tree; the open lists are a stack, so a list can span literals. Literal
 * data goes straight into its argument. See parser.h for the contract.
 */
#include "imap/parser.h"

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum parser_state {
	PS_LINE,		/* gathering command text up to LF */
	PS_LITERAL,		/* reading literal data into p->lit */
	PS_SKIP_LINE,		/* refusing: dropping text up to LF */
	PS_SKIP_LITERAL,	/* refusing: dropping a {n+} literal */
};

/* A literal marker is at most "~{" + 20 digits + "+}" */
#define TAIL_MAX 26

struct imap_parser {
	struct imap_parser_limits lim;
	enum parser_state state;
	bool finished;		/* DONE or ERROR was returned: reset on feed */

	struct buf line;	/* current segment, without CR LF */
	size_t text_total;	/* command text so far, all segments */
	uint64_t literal_total;
	unsigned int nargs;

	struct imap_command cmd;
	bool have_tag, have_name, tag_bad;
	bool need_sep;		/* a token just ended: SP ) or end next */

	struct imap_arg **stack; /* open lists; stack[0] = &cmd.args */
	unsigned int depth;

	struct imap_arg *lit;	/* literal being read */
	uint64_t lit_left;
	size_t lit_cap;		/* allocated for lit->str */
	uint64_t pending_size;	/* announced size of the last literal */

	uint64_t skip_left;
	char tail[TAIL_MAX];	/* last bytes of a skipped line */
	size_t tail_len;

	struct imap_parse_error err;
	bool err_set;
};

static void
arg_free(struct imap_arg *arg)
{
	for (unsigned int i = 0; i < arg->count; i++)
		arg_free(&arg->list[i]);
	free(arg->list);
	free(arg->str);
	memset(arg, 0, sizeof(*arg));
}

void
imap_parser_reset(struct imap_parser *p)
{
	arg_free(&p->cmd.args);
	x_free(&p->cmd.tag);
	x_free(&p->cmd.name);
	p->cmd.args.type = IMAP_ARG_LIST;
	buf_reset(&p->line);
	p->state = PS_LINE;
	p->finished = false;
	p->text_total = 0;
	p->literal_total = 0;
	p->nargs = 0;
	p->have_tag = p->have_name = p->tag_bad = false;
	p->need_sep = false;
	p->stack[0] = &p->cmd.args;
	p->depth = 0;
	p->lit = NULL;
	p->lit_left = 0;
	p->pending_size = 0;
	p->skip_left = 0;
	p->tail_len = 0;
	memset(&p->err, 0, sizeof(p->err));
	p->err_set = false;
}

void
imap_parser_release(struct imap_parser *p)
{
	if (!p->finished)
		return;
	imap_parser_reset(p);
	buf_free(&p->line);
}

struct imap_parser *
imap_parser_create(const struct imap_parser_limits *limits)
{
	struct imap_parser *p = xcalloc(1, sizeof(*p));

	p->lim = *limits;
	if (p->lim.max_depth == 0)
		p->lim.max_depth = 1;
	buf_init(&p->line, p->lim.max_line + 1);
	p->stack = xcalloc(p->lim.max_depth + 1, sizeof(*p->stack));
	imap_parser_reset(p);
	return p;
}

void
imap_parser_free(struct imap_parser **pp)
{
	struct imap_parser *p = *pp;

	if (p == NULL)
		return;
	arg_free(&p->cmd.args);
	free(p->cmd.tag);
	free(p->cmd.name);
	buf_free(&p->line);
	free(p->stack);
	free(p);
	*pp = NULL;
}

static void
set_error(struct imap_parser *p, const char *text, const char *code)
{
	if (p->err_set)
		return;		/* the first reason is the useful one */
	p->err.text = text;
	p->err.code = code;
	p->err_set = true;
}

static struct imap_arg *
add_arg(struct imap_parser *p, enum imap_arg_type type)
{
	struct imap_arg *list = p->stack[p->depth], *arg;

	if (p->nargs >= p->lim.max_args) {
		set_error(p, "Too many arguments", "LIMIT");
		return NULL;
	}
	p->nargs++;
	if (list->count == list->cap) {
		list->cap = list->cap == 0 ? 4 : list->cap * 2;
		list->list = xreallocarray(list->list, list->cap,
		    sizeof(*list->list));
	}
	arg = &list->list[list->count++];
	memset(arg, 0, sizeof(*arg));
	arg->type = type;
	return arg;
}

/* Tag: 1*<ASTRING-CHAR except "+"> (RFC 9051 §9). */
static bool
is_tag_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return strchr("(){%*\"\\+", c) == NULL;
}

/* Parses "{123}" "{123+}" "~{123}" ending exactly at s+n. */
static bool
parse_literal_marker(const char *s, size_t n, uint64_t *size_r,
    bool *nonsync_r, bool *binary_r, bool *overflow_r)
{
	size_t i = 0;
	uint64_t v = 0;
	bool digits = false;

	*overflow_r = false;
	*binary_r = false;
	if (i < n && s[i] == '~') {
		*binary_r = true;
		i++;
	}
	if (i >= n || s[i] != '{')
		return false;
	i++;
	while (i < n && s[i] >= '0' && s[i] <= '9') {
		if (v > (UINT64_MAX - 9) / 10)
			*overflow_r = true;
		else
			v = v * 10 + (uint64_t)(s[i] - '0');
		digits = true;
		i++;
	}
	if (!digits)
		return false;
	*nonsync_r = false;
	if (i < n && s[i] == '+') {
		*nonsync_r = true;
		i++;
	}
	if (i + 1 != n || s[i] != '}')
		return false;
	*size_r = v;
	return true;
}

/* Does this line end in a literal marker? (for skipping after an error) */
static bool
tail_literal(const char *s, size_t n, uint64_t *size_r, bool *nonsync_r)
{
	bool binary, overflow;

	for (size_t start = n > TAIL_MAX ? n - TAIL_MAX : 0; start < n; start++) {
		if (s[start] != '{' && s[start] != '~')
			continue;
		if (parse_literal_marker(s + start, n - start, size_r,
		    nonsync_r, &binary, &overflow)) {
			if (overflow)
				*size_r = UINT64_MAX;
			return true;
		}
	}
	return false;
}

enum seg_result {
	SEG_END,		/* the command ended at this line end */
	SEG_LITERAL,		/* a literal follows */
	SEG_EMPTY,		/* empty line before any tag: ignored */
	SEG_ERROR,
};

static enum seg_result
parse_tag_and_name(struct imap_parser *p, const char *s, size_t n, size_t *pos)
{
	size_t i = 0, start;

	if (!p->have_tag) {
		if (n == 0)
			return SEG_EMPTY;
		while (i < n && s[i] != ' ')
			i++;
		p->have_tag = true;
		for (size_t j = 0; j < i; j++) {
			if (!is_tag_char((unsigned char)s[j]))
				p->tag_bad = true;
		}
		if (!p->tag_bad)
			p->cmd.tag = xstrndup(s, i);
		if (p->tag_bad) {
			set_error(p, "Invalid tag", NULL);
			return SEG_ERROR;
		}
		if (i == n) {
			set_error(p, "Missing command", NULL);
			return SEG_ERROR;
		}
		i++;		/* SP */
	}
	start = i;
	while (i < n && s[i] != ' ') {
		unsigned char c = (unsigned char)s[i];

		/* command names are atoms of letters, digits and '-' in
		   practice; anything else cannot name a command */
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_')) {
			set_error(p, "Invalid command name", NULL);
			return SEG_ERROR;
		}
		i++;
	}
	if (i == start) {
		set_error(p, "Missing command", NULL);
		return SEG_ERROR;
	}
	p->cmd.name = xstrndup(s + start, i - start);
	p->have_name = true;
	*pos = i;
	return SEG_END;
}

static enum seg_result
parse_quoted(struct imap_parser *p, const char *s, size_t n, size_t *pos)
{
	struct imap_arg *arg;
	struct buf v;
	size_t i = *pos + 1;

	buf_init(&v, BUF_UNLIMITED);
	for (;;) {
		unsigned char c;

		if (i >= n) {
			set_error(p, "Unterminated quoted string", NULL);
			buf_free(&v);
			return SEG_ERROR;
		}
		c = (unsigned char)s[i];
		if (c == '"')
			break;
		if (c == '\\') {
			if (i + 1 >= n || (s[i + 1] != '"' && s[i + 1] != '\\')) {
				set_error(p, "Invalid escape in quoted string",
				    NULL);
				buf_free(&v);
				return SEG_ERROR;
			}
			c = (unsigned char)s[i + 1];
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			set_error(p, "Control character in quoted string",
			    NULL);
			buf_free(&v);
			return SEG_ERROR;
		}
		buf_append_c(&v, (char)c);
		i++;
	}
	arg = add_arg(p, IMAP_ARG_QUOTED);
	if (arg == NULL) {
		buf_free(&v);
		return SEG_ERROR;
	}
	arg->len = v.len;
	arg->str = v.data != NULL ? buf_steal(&v) : xstrdup("");
	*pos = i + 1;
	return SEG_END;
}

static enum seg_result
parse_atom(struct imap_parser *p, const char *s, size_t n, size_t *pos)
{
	struct imap_arg *arg;
	size_t i = *pos;
	unsigned int brackets = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f) {
			set_error(p, "Control character in command", NULL);
			return SEG_ERROR;
		}
		if (brackets == 0 && (c == ' ' || c == '(' || c == ')'))
			break;
		if (brackets == 0 && c == '"') {
			set_error(p, "Unexpected quote in atom", NULL);
			return SEG_ERROR;
		}
		if (c == '[') {
			if (brackets == p->lim.max_depth) {
				set_error(p, "Too deeply nested", "LIMIT");
				return SEG_ERROR;
			}
			brackets++;
		} else if (c == ']' && brackets > 0) {
			brackets--;
		}
		i++;
	}
	arg = add_arg(p, IMAP_ARG_ATOM);
	if (arg == NULL)
		return SEG_ERROR;
	arg->len = i - *pos;
	arg->str = xstrndup(s + *pos, arg->len);
	if (arg->len == 3 && strcasecmp(arg->str, "NIL") == 0)
		arg->type = IMAP_ARG_NIL;
	*pos = i;
	return SEG_END;
}

/* A whole segment (no CR LF) is in p->line: tokenize it. */
static enum seg_result
parse_segment(struct imap_parser *p)
{
	const char *s = p->line.data != NULL ? p->line.data : "";
	size_t n = p->line.len, i = 0;
	enum seg_result r;

	if (!p->have_name) {
		r = parse_tag_and_name(p, s, n, &i);
		if (r != SEG_END)
			return r;
		p->need_sep = true;
	}
	while (i < n) {
		unsigned char c = (unsigned char)s[i];

		if (c == ' ') {
			p->need_sep = false;
			i++;
			continue;
		}
		if (c == ')') {
			if (p->depth == 0) {
				set_error(p, "Unexpected ')'", NULL);
				return SEG_ERROR;
			}
			p->depth--;
			p->need_sep = true;
			i++;
			continue;
		}
		if (p->need_sep) {
			set_error(p, "Missing space between arguments", NULL);
			return SEG_ERROR;
		}
		if (c == '(') {
			struct imap_arg *list;

			if (p->depth >= p->lim.max_depth) {
				set_error(p, "Too deeply nested", "LIMIT");
				return SEG_ERROR;
			}
			list = add_arg(p, IMAP_ARG_LIST);
			if (list == NULL)
				return SEG_ERROR;
			p->stack[++p->depth] = list;
			i++;
			continue;
		}
		if (c == '"') {
			r = parse_quoted(p, s, n, &i);
		} else if (c == '{' || (c == '~' && i + 1 < n && s[i + 1] == '{')) {
			uint64_t size;
			bool nonsync, binary, overflow;

			if (!parse_literal_marker(s + i, n - i, &size, &nonsync,
			    &binary, &overflow)) {
				set_error(p, "Invalid literal", NULL);
				return SEG_ERROR;
			}
			p->pending_size = size;
			if (overflow || size > p->lim.max_literal ||
			    size > p->lim.max_literal_total - p->literal_total) {
				set_error(p, "Literal too big", "TOOBIG");
				return SEG_ERROR;
			}
			p->lit = add_arg(p, IMAP_ARG_LITERAL);
			if (p->lit == NULL)
				return SEG_ERROR;
			p->lit->literal8 = binary;
			p->lit->literal_nonsync = nonsync;
			p->lit_left = size;
			p->literal_total += size;
			p->need_sep = true;
			return SEG_LITERAL;
		} else {
			r = parse_atom(p, s, n, &i);
		}
		if (r != SEG_END)
			return r;
		p->need_sep = true;
	}
	if (p->depth > 0) {
		set_error(p, "Missing ')'", NULL);
		return SEG_ERROR;
	}
	return SEG_END;
}

static void
literal_append(struct imap_parser *p, const char *data, size_t n)
{
	struct imap_arg *a = p->lit;

	/* grown as data arrives: a client that announces a large literal
	   and sends nothing costs us nothing */
	if (a->len + n + 1 > p->lit_cap) {
		size_t cap = p->lit_cap < 256 ? 256 : p->lit_cap;

		while (cap < a->len + n + 1)
			cap *= 2;
		if (cap > a->len + p->lit_left + 1)
			cap = a->len + p->lit_left + 1;
		a->str = xrealloc(a->str, cap);
		p->lit_cap = cap;
	}
	memcpy(a->str + a->len, data, n);
	a->len += n;
	a->str[a->len] = '\0';
}

static void
literal_done(struct imap_parser *p)
{
	if (p->lit->str == NULL)
		p->lit->str = xstrdup("");
	p->lit = NULL;
	p->lit_cap = 0;
	p->state = PS_LINE;
}

static void
tail_add(struct imap_parser *p, const char *data, size_t n)
{
	if (n >= TAIL_MAX) {
		memcpy(p->tail, data + n - TAIL_MAX, TAIL_MAX);
		p->tail_len = TAIL_MAX;
		return;
	}
	if (p->tail_len + n > TAIL_MAX) {
		size_t drop = p->tail_len + n - TAIL_MAX;

		memmove(p->tail, p->tail + drop, p->tail_len - drop);
		p->tail_len -= drop;
	}
	memcpy(p->tail + p->tail_len, data, n);
	p->tail_len += n;
}

/* A line too long to parse still lets us tag the reply. */
static void
salvage_tag(struct imap_parser *p)
{
	const char *s = p->line.data, *sp;

	if (p->have_tag || s == NULL)
		return;
	sp = memchr(s, ' ', p->line.len);
	if (sp == NULL || sp == s)
		return;
	for (const char *c = s; c < sp; c++) {
		if (!is_tag_char((unsigned char)*c))
			return;
	}
	p->cmd.tag = xstrndup(s, (size_t)(sp - s));
	p->have_tag = true;
}

/*
 * The command was refused; the line that just ended is s. Decide what the
 * client sends next: a {n+} literal is skipped, after a {n} the client
 * waits for us, otherwise the command is over.
 */
static bool
skip_after_line(struct imap_parser *p, const char *s, size_t n)
{
	uint64_t size;
	bool nonsync;

	if (tail_literal(s, n, &size, &nonsync) && nonsync) {
		p->skip_left = size;
		p->state = PS_SKIP_LITERAL;
		return true;
	}
	return false;
}

enum imap_parse_result
imap_parser_feed(struct imap_parser *p, const void *data, size_t len,
    size_t *consumed_r)
{
	const char *d = data;
	size_t i = 0;

	if (p->finished)
		imap_parser_reset(p);
	while (i < len) {
		const char *lf;
		size_t chunk;
		uint64_t take;

		switch (p->state) {
		case PS_LINE:
			lf = memchr(d + i, '\n', len - i);
			chunk = lf != NULL ? (size_t)(lf - (d + i)) : len - i;
			/* +1: the CR before LF is not command text */
			if (p->text_total + p->line.len + chunk >
			    p->lim.max_line + 1) {
				size_t room = p->lim.max_line + 1 -
				    p->text_total - p->line.len;

				if (buf_append(&p->line, d + i, room) < 0)
					panic("imap parser: line buffer limit");
				i += room;
				set_error(p, "Command line too long", "TOOBIG");
				p->err.line_too_long = true;
				salvage_tag(p);
				/* said at once: the client may never send the
				   line end, and the session closes anyway */
				buf_reset(&p->line);
				p->finished = true;
				*consumed_r = i;
				return IMAP_PARSE_ERROR;
			}
			if (buf_append(&p->line, d + i, chunk) < 0)
				panic("imap parser: line buffer limit");
			i += chunk;
			if (lf == NULL)
				break;
			i++;
			if (p->line.len > 0 && p->line.data[p->line.len - 1] == '\r')
				buf_truncate(&p->line, p->line.len - 1);
			p->text_total += p->line.len;
			switch (parse_segment(p)) {
			case SEG_EMPTY:
				buf_reset(&p->line);
				break;
			case SEG_END:
				buf_reset(&p->line);
				p->finished = true;
				*consumed_r = i;
				return IMAP_PARSE_DONE;
			case SEG_LITERAL: {
				bool sync = !p->lit->literal_nonsync;

				buf_reset(&p->line);
				p->state = PS_LITERAL;
				if (p->lit_left == 0)
					literal_done(p);
				if (sync) {
					*consumed_r = i;
					return IMAP_PARSE_CONTINUE;
				}
				break;
			}
			case SEG_ERROR:
				if (!skip_after_line(p, p->line.data != NULL ?
				    p->line.data : "", p->line.len)) {
					buf_reset(&p->line);
					p->finished = true;
					*consumed_r = i;
					return IMAP_PARSE_ERROR;
				}
				buf_reset(&p->line);
				break;
			}
			break;
		case PS_LITERAL:
			take = p->lit_left < len - i ? p->lit_left : len - i;
			literal_append(p, d + i, (size_t)take);
			i += (size_t)take;
			p->lit_left -= take;
			if (p->lit_left == 0)
				literal_done(p);
			break;
		case PS_SKIP_LITERAL:
			take = p->skip_left < len - i ? p->skip_left : len - i;
			i += (size_t)take;
			p->skip_left -= take;
			if (p->skip_left == 0) {
				p->state = PS_SKIP_LINE;
				p->tail_len = 0;
			}
			break;
		case PS_SKIP_LINE:
			lf = memchr(d + i, '\n', len - i);
			chunk = lf != NULL ? (size_t)(lf - (d + i)) : len - i;
			tail_add(p, d + i, chunk);
			i += chunk;
			if (lf == NULL)
				break;
			i++;
			if (p->tail_len > 0 && p->tail[p->tail_len - 1] == '\r')
				p->tail_len--;
			if (!skip_after_line(p, p->tail, p->tail_len)) {
				p->finished = true;
				*consumed_r = i;
				return IMAP_PARSE_ERROR;
			}
			break;
		}
	}
	*consumed_r = len;
	return IMAP_PARSE_MORE;
}

void
imap_parser_refuse_literal(struct imap_parser *p)
{
	/* the client waits for our "+" and sends nothing more of it */
	p->state = PS_LINE;
	p->lit = NULL;
	p->lit_left = 0;
	p->finished = true;
}

uint64_t
imap_parser_literal_total(const struct imap_parser *p)
{
	return p->literal_total;
}

const struct imap_command *
imap_parser_command(const struct imap_parser *p)
{
	return &p->cmd;
}

const struct imap_parse_error *
imap_parser_error(const struct imap_parser *p)
{
	return &p->err;
}

const char *
imap_parser_tag(const struct imap_parser *p)
{
	return p->cmd.tag;
}

const char *
imap_parser_name(const struct imap_parser *p)
{
	return p->cmd.name;
}

uint64_t
imap_parser_literal_size(const struct imap_parser *p)
{
	return p->pending_size;
}

bool
imap_arg_is_atom(const struct imap_arg *arg, const char *atom_ci)
{
	if (arg == NULL || (arg->type != IMAP_ARG_ATOM && arg->type != IMAP_ARG_NIL))
		return false;
	return strcasecmp(arg->str, atom_ci) == 0;
}

const char *
imap_arg_astring(const struct imap_arg *arg)
{
	if (arg == NULL || arg->type == IMAP_ARG_LIST)
		return NULL;
	return arg->str;
}

const char *
imap_arg_string(const struct imap_arg *arg)
{
	if (arg == NULL ||
	    (arg->type != IMAP_ARG_QUOTED && arg->type != IMAP_ARG_LITERAL))
		return NULL;
	return arg->str;
}

const struct imap_arg *
imap_arg_list(const struct imap_arg *arg, unsigned int *count_r)
{
	if (arg == NULL || arg->type != IMAP_ARG_LIST)
		return NULL;
	*count_r = arg->count;
	return arg->list;
}

/* nz-number: 1..4294967295, no leading zero. */
static bool
parse_nz_number(const char **sp, uint32_t *v_r)
{
	const char *s = *sp;
	uint64_t v = 0;

	if (*s < '1' || *s > '9')
		return false;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > UINT32_MAX)
			return false;
		s++;
	}
	*v_r = (uint32_t)v;
	*sp = s;
	return true;
}

static bool
parse_seq_number(const char **sp, uint32_t *v_r)
{
	if (**sp == '*') {
		*v_r = IMAP_SEQ_STAR;
		(*sp)++;
		return true;
	}
	return parse_nz_number(sp, v_r);
}

int
imap_seqset_parse(const char *s, unsigned int max_ranges,
    struct imap_seqset *set_r, const char **error_r)
{
	unsigned int cap = 0;

	memset(set_r, 0, sizeof(*set_r));
	if (strcmp(s, "$") == 0) {
		set_r->searchres = true;
		return 0;
	}
	for (;;) {
		struct imap_seq_range r;

		if (!parse_seq_number(&s, &r.lo)) {
			*error_r = "Invalid sequence set";
			goto fail;
		}
		r.hi = r.lo;
		if (*s == ':') {
			s++;
			if (!parse_seq_number(&s, &r.hi)) {
				*error_r = "Invalid sequence range";
				goto fail;
			}
		}
		if (set_r->count == max_ranges) {
			*error_r = "Too many sequence ranges";
			goto fail;
		}
		if (set_r->count == cap) {
			cap = cap == 0 ? 4 : cap * 2;
			set_r->ranges = xreallocarray(set_r->ranges, cap,
			    sizeof(*set_r->ranges));
		}
		set_r->ranges[set_r->count++] = r;
		if (*s == '\0')
			return 0;
		if (*s != ',') {
			*error_r = "Invalid sequence set";
			goto fail;
		}
		s++;
	}
fail:
	imap_seqset_free(set_r);
	return -1;
}

static int
range_cmp(const void *a, const void *b)
{
	const struct imap_seq_range *x = a, *y = b;

	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	if (x->hi != y->hi)
		return x->hi < y->hi ? -1 : 1;
	return 0;
}

void
imap_seqset_normalize(struct imap_seqset *set, uint32_t star)
{
	unsigned int i, out = 0;

	for (i = 0; i < set->count; i++) {
		struct imap_seq_range *r = &set->ranges[i];

		if (r->lo == IMAP_SEQ_STAR)
			r->lo = star;
		if (r->hi == IMAP_SEQ_STAR)
			r->hi = star;
		if (r->lo > r->hi) {
			uint32_t t = r->lo;

			r->lo = r->hi;
			r->hi = t;
		}
		/* with an empty mailbox "*" is 0, which names nothing */
		if (r->lo == 0)
			r->lo = 1;
		if (r->hi == 0)
			continue;
		set->ranges[out++] = *r;
	}
	set->count = out;
	if (out == 0)
		return;
	qsort(set->ranges, set->count, sizeof(*set->ranges), range_cmp);
	out = 0;
	for (i = 1; i < set->count; i++) {
		struct imap_seq_range *last = &set->ranges[out];

		if (last->hi == UINT32_MAX || set->ranges[i].lo <= last->hi + 1) {
			if (set->ranges[i].hi > last->hi)
				last->hi = set->ranges[i].hi;
		} else {
			set->ranges[++out] = set->ranges[i];
		}
	}
	set->count = out + 1;
}

bool
imap_seqset_contains(const struct imap_seqset *set, uint32_t n)
{
	unsigned int lo = 0, hi = set->count;

	/* normalized: sorted and disjoint, so a binary search */
	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (n < set->ranges[mid].lo)
			hi = mid;
		else if (n > set->ranges[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

void
imap_seqset_free(struct imap_seqset *set)
{
	x_free(&set->ranges);
	set->count = 0;
}
