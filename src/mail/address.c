/*
 * address: RFC 5321 paths (section 4.1.2), read with a bounds-checked cursor.
 * Every accessor checks pos < len, so a truncated path can only fail, never
 * read past the end.
 */
#include "mail/address.h"

#include "lib/buf.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <arpa/inet.h>
#include <string.h>

struct cursor {
	const unsigned char *p;
	size_t len;
	size_t pos;
};

static int
cur_peek(const struct cursor *c)
{
	return c->pos < c->len ? c->p[c->pos] : -1;
}

static bool
cur_eat(struct cursor *c, int ch)
{
	if (cur_peek(c) == ch) {
		c->pos++;
		return true;
	}
	return false;
}

static bool
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* RFC 5322 atext. */
static bool
is_atext(int c)
{
	return is_alpha(c) || is_digit(c) || (c > 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/*
 * Length of the UTF-8 sequence starting at the cursor when it is valid, else
 * 0. Used only where ADDRESS_ALLOW_UTF8 permits non-ASCII.
 */
static size_t
utf8_len_at(const struct cursor *c)
{
	int b = cur_peek(c);
	size_t n;

	if (b < 0x80)
		return 0;
	if (b >= 0xc2 && b <= 0xdf)
		n = 2;
	else if (b >= 0xe0 && b <= 0xef)
		n = 3;
	else if (b >= 0xf0 && b <= 0xf4)
		n = 4;
	else
		return 0;
	if (c->len - c->pos < n)
		return 0;
	return str_is_utf8(c->p + c->pos, n) ? n : 0;
}

/* Dot-atom local part; returns its length or 0. Sets *utf8 on non-ASCII. */
static size_t
scan_dot_atom(struct cursor *c, bool allow_utf8, bool *utf8)
{
	size_t start = c->pos;
	bool need_atom = true;

	for (;;) {
		int ch = cur_peek(c);
		size_t u;

		if (ch >= 0 && is_atext(ch)) {
			c->pos++;
			need_atom = false;
		} else if (ch == '.' && !need_atom) {
			c->pos++;
			need_atom = true;
		} else if (ch >= 0x80 && allow_utf8 && (u = utf8_len_at(c)) > 0) {
			c->pos += u;
			*utf8 = true;
			need_atom = false;
		} else {
			break;
		}
	}
	if (c->pos == start || need_atom) {
		c->pos = start;
		return 0;
	}
	return c->pos - start;
}

/*
 * Quoted string; appends the unquoted content to *content. Returns the
 * number of bytes consumed (including the quotes) or 0 on a syntax error.
 */
static size_t
scan_quoted(struct cursor *c, bool allow_utf8, bool *utf8, struct buf *content)
{
	size_t start = c->pos;

	if (!cur_eat(c, '"'))
		return 0;
	for (;;) {
		int ch = cur_peek(c);
		size_t u;

		if (ch < 0)
			goto bad;
		if (ch == '"') {
			c->pos++;
			return c->pos - start;
		}
		if (ch == '\\') {
			c->pos++;
			ch = cur_peek(c);
			if (ch < 32 || ch > 126)
				goto bad;
			c->pos++;
			if (buf_append_c(content, (char)ch) < 0)
				goto bad;
		} else if (ch >= 32 && ch <= 126) {
			c->pos++;
			if (buf_append_c(content, (char)ch) < 0)
				goto bad;
		} else if (ch >= 0x80 && allow_utf8 && (u = utf8_len_at(c)) > 0) {
			if (buf_append(content, c->p + c->pos, u) < 0)
				goto bad;
			c->pos += u;
			*utf8 = true;
		} else {
			goto bad;
		}
	}
bad:
	c->pos = start;
	return 0;
}

/* Domain name (LDH labels, or U-labels with UTF-8); returns length or 0. */
static size_t
scan_domain_name(struct cursor *c, bool allow_utf8, bool *utf8)
{
	size_t start = c->pos, label_len = 0;
	int prev = -1;

	for (;;) {
		int ch = cur_peek(c);
		size_t u;

		if (ch >= 0 && (is_alpha(ch) || is_digit(ch))) {
			c->pos++;
			label_len++;
		} else if (ch == '-' && label_len > 0) {
			c->pos++;
			label_len++;
		} else if (ch == '.' && label_len > 0 && prev != '-') {
			c->pos++;
			label_len = 0;
		} else if (ch >= 0x80 && allow_utf8 && (u = utf8_len_at(c)) > 0) {
			c->pos += u;
			label_len += u;
			*utf8 = true;
		} else {
			break;
		}
		if (label_len > ADDRESS_LABEL_MAX)
			goto bad;
		prev = ch;
	}
	/* must end inside a label and not on a hyphen */
	if (c->pos == start || label_len == 0 || prev == '-')
		goto bad;
	if (c->pos - start > ADDRESS_DOMAIN_MAX)
		goto bad;
	return c->pos - start;
bad:
	c->pos = start;
	return 0;
}

/* [IPv4] or [IPv6:...]; returns length including brackets or 0. */
static size_t
scan_address_literal(struct cursor *c)
{
	size_t start = c->pos, n;
	char tmp[64];
	unsigned char addr[16];

	if (!cur_eat(c, '['))
		return 0;
	while (cur_peek(c) >= 0 && cur_peek(c) != ']' && c->pos - start < sizeof(tmp))
		c->pos++;
	if (!cur_eat(c, ']'))
		goto bad;
	n = c->pos - start - 2;
	if (n == 0 || n >= sizeof(tmp))
		goto bad;
	memcpy(tmp, c->p + start + 1, n);
	tmp[n] = '\0';
	if (str_has_prefix_ci(tmp, "IPv6:")) {
		if (inet_pton(AF_INET6, tmp + 5, addr) != 1)
			goto bad;
	} else if (inet_pton(AF_INET, tmp, addr) != 1) {
		goto bad;
	}
	return c->pos - start;
bad:
	c->pos = start;
	return 0;
}

/* Domain or address literal. */
static size_t
scan_domain(struct cursor *c, bool allow_utf8, bool *utf8)
{
	if (cur_peek(c) == '[')
		return scan_address_literal(c);
	return scan_domain_name(c, allow_utf8, utf8);
}

static void
lower_ascii(char *s)
{
	for (; *s != '\0'; s++) {
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
	}
}

/* Is the whole of s (n bytes) a dot-atom? */
static bool
is_dot_atom(const char *s, size_t n, bool allow_utf8)
{
	struct cursor c = { (const unsigned char *)s, n, 0 };
	bool utf8 = false;

	return n > 0 && scan_dot_atom(&c, allow_utf8, &utf8) == n;
}

/* local-part "@" domain at the cursor. */
static int
parse_mailbox(struct cursor *c, unsigned int flags, struct address *addr_r,
    const char **error_r)
{
	bool allow_utf8 = (flags & ADDRESS_ALLOW_UTF8) != 0, utf8 = false;
	size_t lstart = c->pos, llen, dstart, dlen;
	struct buf content;
	char *local;

	buf_init(&content, ADDRESS_PATH_MAX);
	if (cur_peek(c) == '"') {
		llen = scan_quoted(c, allow_utf8, &utf8, &content);
		if (llen == 0) {
			buf_free(&content);
			*error_r = "invalid quoted local part";
			return -1;
		}
		if (is_dot_atom(buf_cstr(&content), content.len, allow_utf8))
			local = buf_steal(&content);
		else
			local = xstrndup((const char *)c->p + lstart, llen);
	} else {
		llen = scan_dot_atom(c, allow_utf8, &utf8);
		if (llen == 0) {
			buf_free(&content);
			*error_r = cur_peek(c) >= 0x80 && !allow_utf8 ?
			    "non-ASCII address without SMTPUTF8" :
			    "invalid local part";
			return -1;
		}
		local = xstrndup((const char *)c->p + lstart, llen);
	}
	buf_free(&content);
	if (llen > ADDRESS_LOCAL_MAX) {
		free(local);
		*error_r = "local part too long";
		return -1;
	}
	if (!cur_eat(c, '@')) {
		free(local);
		*error_r = "missing @domain";
		return -1;
	}
	dstart = c->pos;
	dlen = scan_domain(c, allow_utf8, &utf8);
	if (dlen == 0) {
		free(local);
		*error_r = cur_peek(c) >= 0x80 && !allow_utf8 ?
		    "non-ASCII address without SMTPUTF8" : "invalid domain";
		return -1;
	}
	addr_r->local = local;
	addr_r->domain = xstrndup((const char *)c->p + dstart, dlen);
	lower_ascii(addr_r->domain);
	addr_r->utf8 = utf8;
	return 0;
}

int
address_parse_path(const char *s, size_t len, unsigned int flags,
    struct address *addr_r, size_t *consumed_r, const char **error_r)
{
	struct cursor c = { (const unsigned char *)s, len, 0 };
	bool dummy = false;

	memset(addr_r, 0, sizeof(*addr_r));
	if (!cur_eat(&c, '<')) {
		*error_r = "path must be enclosed in <>";
		return -1;
	}
	if (cur_eat(&c, '>')) {
		if ((flags & ADDRESS_ALLOW_NULL) == 0) {
			*error_r = "null path not allowed here";
			return -1;
		}
		addr_r->local = xstrdup("");
		addr_r->domain = xstrdup("");
		addr_r->null_path = true;
		*consumed_r = c.pos;
		return 0;
	}
	/* source route: @one,@two: -- obsolete, accepted and dropped (RFC 5321 C) */
	if (cur_peek(&c) == '@') {
		do {
			if (!cur_eat(&c, '@') || scan_domain(&c, false, &dummy) == 0) {
				*error_r = "invalid source route";
				return -1;
			}
		} while (cur_eat(&c, ','));
		if (!cur_eat(&c, ':')) {
			*error_r = "invalid source route";
			return -1;
		}
	}
	if ((flags & ADDRESS_ALLOW_POSTMASTER) != 0 && c.len - c.pos >= 11 &&
	    strncasecmp((const char *)c.p + c.pos, "postmaster>", 11) == 0) {
		addr_r->local = xstrndup((const char *)c.p + c.pos, 10);
		addr_r->domain = xstrdup("");
		c.pos += 11;
		*consumed_r = c.pos;
		return 0;
	}
	if (parse_mailbox(&c, flags, addr_r, error_r) < 0)
		return -1;
	if (!cur_eat(&c, '>')) {
		address_free(addr_r);
		*error_r = "missing > after path";
		return -1;
	}
	if (c.pos > ADDRESS_PATH_MAX) {
		address_free(addr_r);
		*error_r = "path too long";
		return -1;
	}
	*consumed_r = c.pos;
	return 0;
}

int
address_parse(const char *s, unsigned int flags, struct address *addr_r,
    const char **error_r)
{
	struct cursor c = { (const unsigned char *)s, strlen(s), 0 };

	memset(addr_r, 0, sizeof(*addr_r));
	if (c.len > ADDRESS_PATH_MAX - 2) {
		*error_r = "address too long";
		return -1;
	}
	if (parse_mailbox(&c, flags, addr_r, error_r) < 0)
		return -1;
	if (c.pos != c.len) {
		address_free(addr_r);
		*error_r = "trailing characters after address";
		return -1;
	}
	return 0;
}

void
address_free(struct address *addr)
{
	x_free(&addr->local);
	x_free(&addr->domain);
	addr->null_path = false;
	addr->utf8 = false;
}

void
address_copy(struct address *dst, const struct address *src)
{
	dst->local = xstrdup(src->local != NULL ? src->local : "");
	dst->domain = xstrdup(src->domain != NULL ? src->domain : "");
	dst->null_path = src->null_path;
	dst->utf8 = src->utf8;
}

char *
address_to_string(const struct address *addr)
{
	if (addr->null_path || addr->local == NULL)
		return xstrdup("");
	if (addr->domain == NULL || addr->domain[0] == '\0')
		return xstrdup(addr->local);
	return xasprintf("%s@%s", addr->local, addr->domain);
}

void
address_lower(struct address *addr)
{
	if (addr->local != NULL)
		lower_ascii(addr->local);
	if (addr->domain != NULL)
		lower_ascii(addr->domain);
}

int
address_split_detail(const char *local, char delimiter, char **base_r,
    char **detail_r)
{
	const char *d = strchr(local, delimiter);

	if (d == NULL || d == local || delimiter == '\0') {
		*base_r = xstrdup(local);
		if (detail_r != NULL)
			*detail_r = NULL;
		return 0;
	}
	*base_r = xstrndup(local, (size_t)(d - local));
	if (detail_r != NULL)
		*detail_r = xstrdup(d + 1);
	return 1;
}

int
esmtp_params_parse(const char *s, size_t len, unsigned int flags,
    struct esmtp_params *params_r, const char **error_r)
{
	struct cursor c = { (const unsigned char *)s, len, 0 };
	bool allow_utf8 = (flags & ADDRESS_ALLOW_UTF8) != 0;

	memset(params_r, 0, sizeof(*params_r));
	for (;;) {
		size_t kstart, klen, vstart = 0, vlen = 0;
		bool has_value = false;
		struct esmtp_param *p;

		while (cur_eat(&c, ' '))
			;
		if (c.pos == c.len)
			return 0;
		if (params_r->count == ESMTP_PARAMS_MAX) {
			*error_r = "too many parameters";
			return -1;
		}
		kstart = c.pos;
		if (!is_alpha(cur_peek(&c)) && !is_digit(cur_peek(&c))) {
			*error_r = "invalid parameter keyword";
			return -1;
		}
		while (is_alpha(cur_peek(&c)) || is_digit(cur_peek(&c)) ||
		    cur_peek(&c) == '-')
			c.pos++;
		klen = c.pos - kstart;
		if (cur_eat(&c, '=')) {
			has_value = true;
			vstart = c.pos;
			for (;;) {
				int ch = cur_peek(&c);
				size_t u;

				if (ch >= 33 && ch <= 126 && ch != '=')
					c.pos++;
				else if (ch >= 0x80 && allow_utf8 &&
				    (u = utf8_len_at(&c)) > 0)
					c.pos += u;
				else
					break;
			}
			vlen = c.pos - vstart;
			if (vlen == 0) {
				*error_r = "empty parameter value";
				return -1;
			}
		}
		if (c.pos < c.len && cur_peek(&c) != ' ') {
			*error_r = "invalid character in parameters";
			return -1;
		}
		if (klen + vlen > ESMTP_PARAM_LEN_MAX) {
			*error_r = "parameter too long";
			return -1;
		}
		p = &params_r->list[params_r->count++];
		p->keyword = xstrndup(s + kstart, klen);
		p->value = has_value ? xstrndup(s + vstart, vlen) : NULL;
	}
}

void
esmtp_params_free(struct esmtp_params *params)
{
	for (unsigned int i = 0; i < params->count; i++) {
		x_free(&params->list[i].keyword);
		x_free(&params->list[i].value);
	}
	params->count = 0;
}

const struct esmtp_param *
esmtp_params_find(const struct esmtp_params *params, const char *keyword)
{
	for (unsigned int i = 0; i < params->count; i++) {
		if (strcasecmp(params->list[i].keyword, keyword) == 0)
			return &params->list[i];
	}
	return NULL;
}
