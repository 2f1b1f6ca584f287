/* Authentication-Results (RFC 8601). */
#include "msgauth/authres.h"

#include "lib/str.h"
#include "lib/xalloc.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define AUTHRES_VALUE_MAX 512
#define COMMENT_DEPTH_MAX 16

/* RFC 2045 token characters. */
static bool
is_token_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* A bare value: a token, or local-part@domain made of token characters
 * and dots (RFC 8601 pvalue). */
static bool
is_bare_value(const char *s)
{
	bool at = false;

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '@' && !at) {
			at = true;
			continue;
		}
		if (!is_token_char(c))
			return false;
	}
	return true;
}

static void
append_quoted(struct buf *b, const char *s)
{
	buf_append_c(b, '"');
	for (size_t i = 0; s[i] != '\0' && i < AUTHRES_VALUE_MAX; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			c = '?';
		if (c == '"' || c == '\\')
			buf_append_c(b, '\\');
		buf_append_c(b, (char)c);
	}
	buf_append_c(b, '"');
}

static void
append_value(struct buf *b, const char *s)
{
	if (strlen(s) <= AUTHRES_VALUE_MAX && is_bare_value(s))
		buf_append_str(b, s);
	else
		append_quoted(b, s);
}

void
authres_init(struct authres *ar, const char *authserv_id)
{
	memset(ar, 0, sizeof(*ar));
	buf_init(&ar->b, AUTHRES_MAX);
	buf_append_str(&ar->b, "Authentication-Results: ");
	append_value(&ar->b, authserv_id);
}

static void
authres_vadd(struct authres *ar, const char *method, const char *result,
    const char *reason, va_list ap)
{
	struct buf one;
	const char *prop;

	buf_init(&one, AUTHRES_MAX);
	/* the separator and fold are added by finish: "\x01" marks them */
	buf_printf(&one, ";\x01%s=%s", method, result);
	if (reason != NULL) {
		buf_append_str(&one, " reason=");
		append_quoted(&one, reason);
	}
	while ((prop = va_arg(ap, const char *)) != NULL) {
		const char *value = va_arg(ap, const char *);

		buf_printf(&one, " %s=", prop);
		append_value(&one, value != NULL ? value : "");
	}
	if (one.len >= AUTHRES_MAX || buf_append(&ar->b, one.data, one.len) < 0)
		ar->overflow = true;
	else
		ar->count++;
	buf_free(&one);
}

void
authres_add(struct authres *ar, const char *method, const char *result,
    const char *reason, ...)
{
	va_list ap;

	va_start(ap, reason);
	authres_vadd(ar, method, result, reason, ap);
	va_end(ap);
}

void
authres_add_spf(struct authres *ar, const struct spf_outcome *o,
    const struct spf_request *req)
{
	const char *result = spf_result_name(o->result);
	const char *reason = o->problem[0] != '\0' ? o->problem : NULL;

	if (o->identity == SPF_IDENTITY_HELO || req->sender == NULL ||
	    req->sender[0] == '\0')
		authres_add(ar, "spf", result, reason, "smtp.helo",
		    req->helo != NULL ? req->helo : "", (const char *)NULL);
	else
		authres_add(ar, "spf", result, reason, "smtp.mailfrom",
		    req->sender, (const char *)NULL);
}

void
authres_add_dkim(struct authres *ar, const struct dkim_sig_result *r)
{
	if (r == NULL) {
		authres_add(ar, "dkim", "none", NULL, (const char *)NULL);
		return;
	}
	if (r->domain[0] == '\0') {
		authres_add(ar, "dkim", dkim_result_name(r->result),
		    r->problem[0] != '\0' ? r->problem : NULL, (const char *)NULL);
		return;
	}
	authres_add(ar, "dkim", dkim_result_name(r->result),
	    r->problem[0] != '\0' ? r->problem : NULL,
	    "header.d", r->domain, "header.s", r->selector,
	    "header.i", r->identity, "header.a", r->algorithm,
	    "header.b", r->b_text, (const char *)NULL);
}

void
authres_add_dmarc(struct authres *ar, const struct dmarc_outcome *o,
    const char *from_domain)
{
	char result[64];

	/* the policy as a comment, as receivers commonly show it */
	if (o->have_record)
		snprintf(result, sizeof(result), "%s (p=%s dis=%s)",
		    dmarc_result_name(o->result), dmarc_policy_name(o->policy),
		    dmarc_disposition_name(o->disposition));
	else
		str_copy(result, sizeof(result), dmarc_result_name(o->result));
	authres_add(ar, "dmarc", result, NULL, "header.from",
	    from_domain != NULL ? from_domain : "", (const char *)NULL);
}

char *
authres_finish(struct authres *ar, const char *eol)
{
	struct buf out;
	char *ret;

	buf_init(&out, AUTHRES_MAX * 2);
	for (size_t i = 0; i < ar->b.len; i++) {
		if (ar->b.data[i] == '\x01') {
			buf_append_str(&out, eol);
			buf_append_c(&out, '\t');
		} else {
			buf_append_c(&out, ar->b.data[i]);
		}
	}
	if (ar->count == 0)
		buf_append_str(&out, "; none");
	ret = buf_steal(&out);
	authres_free(ar);
	return ret;
}

void
authres_free(struct authres *ar)
{
	buf_free(&ar->b);
	ar->count = 0;
}

/* Skips white space, line breaks and (nested) comments. */
static size_t
skip_cfws(const char *s, size_t len, size_t i)
{
	while (i < len) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n') {
			i++;
		} else if (s[i] == '(') {
			int depth = 0;

			while (i < len) {
				if (s[i] == '\\' && i + 1 < len) {
					i += 2;
					continue;
				}
				if (s[i] == '(' && ++depth > COMMENT_DEPTH_MAX)
					return len;
				if (s[i] == ')' && --depth == 0) {
					i++;
					break;
				}
				i++;
			}
			if (depth > 0)
				return len;
		} else {
			break;
		}
	}
	return i;
}

int
authres_authserv_id(const char *body, size_t len, char *out, size_t outsize)
{
	size_t i = skip_cfws(body, len, 0), n = 0;

	if (i >= len || outsize == 0)
		return -1;
	if (body[i] == '"') {
		for (i++; i < len && body[i] != '"'; i++) {
			if (body[i] == '\\' && i + 1 < len)
				i++;
			if (n + 1 >= outsize)
				return -1;
			out[n++] = body[i];
		}
		if (i >= len)
			return -1;
	} else {
		/* a token; '@' is not one, but a domain never has it */
		for (; i < len && is_token_char((unsigned char)body[i]); i++) {
			if (n + 1 >= outsize)
				return -1;
			out[n++] = body[i];
		}
	}
	out[n] = '\0';
	return n > 0 ? 0 : -1;
}

int
authres_strip_ours(const char *hdr, size_t len, const char *authserv_id,
    struct buf *out)
{
	static const char name[] = "Authentication-Results";
	size_t pos = 0, removed = 0;

	while (pos < len) {
		size_t end = pos, colon;
		bool ours = false;

		/* the blank line ends the header: copy the rest as it is */
		if (hdr[pos] == '\n' || (hdr[pos] == '\r' && pos + 1 < len &&
		    hdr[pos + 1] == '\n'))
			break;
		/* one field: its line and every continuation line */
		do {
			const char *nl = memchr(hdr + end, '\n', len - end);

			end = nl != NULL ? (size_t)(nl - hdr) + 1 : len;
		} while (end < len && (hdr[end] == ' ' || hdr[end] == '\t'));

		for (colon = pos; colon < end && hdr[colon] != ':' &&
		    hdr[colon] != '\n'; colon++)
			;
		if (colon < end && hdr[colon] == ':') {
			size_t nlen = colon - pos;

			/* field names may be followed by white space (obs) */
			while (nlen > 0 && (hdr[pos + nlen - 1] == ' ' ||
			    hdr[pos + nlen - 1] == '\t'))
				nlen--;
			if (nlen == sizeof(name) - 1 &&
			    strncasecmp(hdr + pos, name, nlen) == 0) {
				char id[256];

				ours = authres_authserv_id(hdr + colon + 1,
				    end - colon - 1, id, sizeof(id)) == 0 &&
				    strcasecmp(id, authserv_id) == 0;
			}
		}
		if (ours)
			removed++;
		else if (buf_append(out, hdr + pos, end - pos) < 0)
			return -1;
		pos = end;
	}
	if (pos < len && buf_append(out, hdr + pos, len - pos) < 0)
		return -1;
	return (int)removed;
}
