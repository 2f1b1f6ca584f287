/*
 * SPF (RFC 7208). The record is parsed completely before anything is
 * evaluated, because a syntax error anywhere makes the result permerror
 * even when an earlier mechanism would have matched (§4.6). Evaluation
 * walks the terms left to right, recursing for include and redirect; the
 * 10-term and 2-void limits are counted over the whole evaluation, which
 * also bounds the recursion depth.
 */
#include "msgauth/spf.h"

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SPF_SENDER_MAX 512

const char *
spf_result_name(enum spf_result result)
{
	switch (result) {
	case SPF_RESULT_NONE: return "none";
	case SPF_RESULT_NEUTRAL: return "neutral";
	case SPF_RESULT_PASS: return "pass";
	case SPF_RESULT_FAIL: return "fail";
	case SPF_RESULT_SOFTFAIL: return "softfail";
	case SPF_RESULT_TEMPERROR: return "temperror";
	case SPF_RESULT_PERMERROR: return "permerror";
	}
	return "permerror";
}

/* ------------------------------------------------------------------ */
/* Evaluation state, shared by macro expansion and check_host().       */

struct spf_eval {
	const struct msgauth_dns *dns;
	const struct spf_request *req;
	char *sender;		/* normalized: local part never empty */
	const char *local;	/* points into sender_parts */
	const char *sdomain;
	char *sender_parts;	/* "local\0domain" */
	unsigned int lookups;
	unsigned int voids;
	/* %{p} and "ptr": validated host names of the client, found once */
	bool ptr_done;
	size_t valid_count;
	char valid[SPF_PTR_NAME_LIMIT][MSGAUTH_DNS_NAME_MAX];
	struct spf_outcome *out;
};

static void
eval_problem(struct spf_eval *ev, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
eval_problem(struct spf_eval *ev, const char *fmt, ...)
{
	va_list ap;

	if (ev->out == NULL || ev->out->problem[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(ev->out->problem, sizeof(ev->out->problem), fmt, ap);
	va_end(ap);
}

/* Is name a usable multi-label domain name (RFC 7208 §4.3)? */
static bool
domain_valid(const char *name)
{
	size_t len = strlen(name), label = 0, labels = 0;
	bool all_digits = true;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)name[i] : '.';

		if (c == '.') {
			if (label == 0 || label > 63)
				return false;
			labels++;
			if (i < len) {
				label = 0;
				all_digits = true;
			}
			continue;
		}
		/* "%_" can put a space in a name, and DNS allows it */
		if (c < 0x20 || c == 0x7f)
			return false;
		if (!isdigit(c))
			all_digits = false;
		label++;
	}
	/* the top label of a name is never numeric: "1.2.3.4" is no domain */
	return labels >= 2 && !all_digits;
}

/* Copies name into out without a trailing dot; false if it does not fit. */
static bool
domain_copy(char *out, size_t outsize, const char *name)
{
	size_t len = strlen(name);

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len >= outsize)
		return false;
	memcpy(out, name, len);
	out[len] = '\0';
	return true;
}

/* Is name equal to domain or a subdomain of it (case-insensitive)? */
static bool
domain_within(const char *name, const char *domain)
{
	size_t nlen = strlen(name), dlen = strlen(domain);

	if (nlen > 0 && name[nlen - 1] == '.')
		nlen--;
	if (dlen > 0 && domain[dlen - 1] == '.')
		dlen--;
	if (dlen == 0 || nlen < dlen)
		return false;
	if (strncasecmp(name + nlen - dlen, domain, dlen) != 0)
		return false;
	return nlen == dlen || name[nlen - dlen - 1] == '.';
}

static enum msgauth_dns_rc
lookup_addrs(const struct spf_eval *ev, const char *name, uint8_t family,
    struct msgauth_dns_addrs *r)
{
	memset(r, 0, sizeof(*r));
	if (family == 4)
		return ev->dns->a(ev->dns->ctx, name, r);
	return ev->dns->aaaa(ev->dns->ctx, name, r);
}

/* The validated names of the client address (RFC 7208 §5.5): PTR names
 * whose own A/AAAA records lead back to the address. DNS errors only
 * shorten the list. */
static void
ptr_validate(struct spf_eval *ev)
{
	struct msgauth_dns_names *names;
	struct msgauth_dns_addrs addrs;

	if (ev->ptr_done)
		return;
	ev->ptr_done = true;
	names = xcalloc(1, sizeof(*names));
	if (ev->dns->ptr(ev->dns->ctx, &ev->req->ip, names) == MSGAUTH_DNS_FOUND) {
		size_t n = names->count < SPF_PTR_NAME_LIMIT ?
		    names->count : SPF_PTR_NAME_LIMIT;

		for (size_t i = 0; i < n; i++) {
			if (!domain_valid(names->name[i]))
				continue;
			if (lookup_addrs(ev, names->name[i], ev->req->ip.family,
			    &addrs) != MSGAUTH_DNS_FOUND)
				continue;
			for (size_t j = 0; j < addrs.count; j++) {
				if (msgauth_ip_equal(&addrs.ip[j], &ev->req->ip)) {
					domain_copy(ev->valid[ev->valid_count++],
					    MSGAUTH_DNS_NAME_MAX, names->name[i]);
					break;
				}
			}
		}
	}
	free(names);
}

/* ------------------------------------------------------------------ */
/* Macros (RFC 7208 §7).                                               */

static bool
is_delimiter(char c)
{
	return c != '\0' && strchr(".-+,/_=", c) != NULL;
}

static int
url_escape_append(struct buf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
			if (buf_append_c(out, (char)c) < 0)
				return -1;
		} else {
			char esc[3] = { '%', hex[c >> 4], hex[c & 15] };

			if (buf_append(out, esc, 3) < 0)
				return -1;
		}
	}
	return 0;
}

/* Splits val on delims, optionally reverses, keeps the `keep` rightmost
 * parts (0 = all) and joins them with '.' (RFC 7208 §7.3). */
static int
macro_transform(struct buf *out, const char *val, size_t vlen,
    unsigned int keep, bool reverse, const char *delims, bool escape)
{
	struct part { const char *p; size_t len; } *parts;
	size_t count = 1, n = 0, first;
	struct buf joined;
	int ret = 0;

	for (size_t i = 0; i < vlen; i++) {
		if (strchr(delims, val[i]) != NULL)
			count++;
	}
	parts = xreallocarray(NULL, count, sizeof(*parts));
	parts[0].p = val;
	parts[0].len = 0;
	for (size_t i = 0; i < vlen; i++) {
		if (strchr(delims, val[i]) != NULL) {
			n++;
			parts[n].p = val + i + 1;
			parts[n].len = 0;
		} else {
			parts[n].len++;
		}
	}
	if (reverse) {
		for (size_t i = 0; i < count / 2; i++) {
			struct part t = parts[i];

			parts[i] = parts[count - 1 - i];
			parts[count - 1 - i] = t;
		}
	}
	first = keep != 0 && keep < count ? count - keep : 0;
	buf_init(&joined, SPF_EXPAND_MAX);
	for (size_t i = first; i < count && ret == 0; i++) {
		if (i > first && buf_append_c(&joined, '.') < 0)
			ret = -1;
		else if (buf_append(&joined, parts[i].p, parts[i].len) < 0)
			ret = -1;
	}
	if (ret == 0) {
		if (escape)
			ret = url_escape_append(out, joined.data != NULL ?
			    joined.data : "", joined.len);
		else
			ret = buf_append(out, joined.data != NULL ?
			    joined.data : "", joined.len);
	}
	buf_free(&joined);
	free(parts);
	return ret;
}

struct macro_env {
	struct spf_eval *ev;	/* NULL: syntax check only */
	const char *domain;
};

/* The value of one macro letter (lower-case) into val. */
static int
macro_letter_value(const struct macro_env *env, char letter, struct buf *val)
{
	struct spf_eval *ev = env->ev;
	const struct spf_request *req = ev->req;
	char tmp[64];

	switch (letter) {
	case 's':
		return buf_append_str(val, ev->sender);
	case 'l':
		return buf_append_str(val, ev->local);
	case 'o':
		return buf_append_str(val, ev->sdomain);
	case 'd':
		return buf_append_str(val, env->domain);
	case 'i':
		if (req->ip.family == 4) {
			snprintf(tmp, sizeof(tmp), "%u.%u.%u.%u", req->ip.addr[0],
			    req->ip.addr[1], req->ip.addr[2], req->ip.addr[3]);
			return buf_append_str(val, tmp);
		}
		for (int i = 0; i < 16; i++) {
			if (buf_printf(val, "%s%x.%x", i == 0 ? "" : ".",
			    req->ip.addr[i] >> 4, req->ip.addr[i] & 15) < 0)
				return -1;
		}
		return 0;
	case 'p': {
		const char *best = NULL;

		if (ev->dns != NULL)
			ptr_validate(ev);
		/* the domain itself, else a subdomain of it, else any */
		for (size_t i = 0; i < ev->valid_count && best == NULL; i++) {
			if (strcasecmp(ev->valid[i], env->domain) == 0)
				best = ev->valid[i];
		}
		for (size_t i = 0; i < ev->valid_count && best == NULL; i++) {
			if (domain_within(ev->valid[i], env->domain))
				best = ev->valid[i];
		}
		if (best == NULL && ev->valid_count > 0)
			best = ev->valid[0];
		return buf_append_str(val, best != NULL ? best : "unknown");
	}
	case 'v':
		return buf_append_str(val, req->ip.family == 4 ? "in-addr" : "ip6");
	case 'h':
		return buf_append_str(val, req->helo != NULL && req->helo[0] != '\0' ?
		    req->helo : "unknown");
	case 'c':
		msgauth_ip_format(&req->ip, tmp, sizeof(tmp));
		return buf_append_str(val, tmp);
	case 'r':
		return buf_append_str(val, req->receiver != NULL &&
		    req->receiver[0] != '\0' ? req->receiver : "unknown");
	case 't':
		return buf_printf(val, "%" PRIdMAX, (intmax_t)req->now);
	}
	return -1;
}

/*
 * Walks a macro-string: checks its syntax and, when env->ev is set,
 * appends the expansion to out. *tail_r is the offset just after the
 * last macro-expand (for the domain-end rule).
 */
static int
macro_walk(const char *s, size_t len, bool is_exp, const struct macro_env *env,
    struct buf *out, size_t *tail_r, const char **error_r)
{
	size_t i = 0;

	*tail_r = 0;
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		char letter, delims[8];
		unsigned int keep = 0;
		bool reverse = false, upper, digits = false;
		size_t nd = 0;

		delims[0] = '\0';
		if (c != '%') {
			if (!(c >= 0x21 && c <= 0x7e) && !(is_exp && c == ' ')) {
				*error_r = "invalid character in macro-string";
				return -1;
			}
			if (out != NULL && buf_append_c(out, (char)c) < 0)
				goto toolong;
			i++;
			continue;
		}
		if (i + 1 >= len) {
			*error_r = "'%' at the end of a macro-string";
			return -1;
		}
		c = (unsigned char)s[i + 1];
		if (c == '%' || c == '_' || c == '-') {
			const char *lit = c == '%' ? "%" : c == '_' ? " " : "%20";

			if (out != NULL && buf_append_str(out, lit) < 0)
				goto toolong;
			i += 2;
			*tail_r = i;
			continue;
		}
		if (c != '{') {
			*error_r = "'%' not followed by '{', '%', '_' or '-'";
			return -1;
		}
		i += 2;
		if (i >= len) {
			*error_r = "unterminated macro";
			return -1;
		}
		letter = s[i++];
		upper = isupper((unsigned char)letter) != 0;
		letter = (char)tolower((unsigned char)letter);
		if (strchr("slodiphv", letter) == NULL &&
		    !(is_exp && strchr("crt", letter) != NULL)) {
			*error_r = "unknown macro letter";
			return -1;
		}
		while (i < len && isdigit((unsigned char)s[i])) {
			digits = true;
			keep = keep * 10 + (unsigned int)(s[i] - '0');
			if (keep > 1000)
				keep = 1000;	/* "all parts" anyway */
			i++;
		}
		if (digits && keep == 0) {
			*error_r = "macro transformer of 0 parts";
			return -1;
		}
		if (i < len && (s[i] == 'r' || s[i] == 'R')) {
			reverse = true;
			i++;
		}
		while (i < len && is_delimiter(s[i])) {
			if (strchr(delims, s[i]) == NULL && nd < sizeof(delims) - 1)
				delims[nd++] = s[i];
			delims[nd] = '\0';
			i++;
		}
		delims[nd] = '\0';
		if (i >= len || s[i] != '}') {
			*error_r = "malformed macro";
			return -1;
		}
		i++;
		*tail_r = i;
		if (out != NULL) {
			struct buf val;
			int ret;

			buf_init(&val, SPF_EXPAND_MAX);
			ret = macro_letter_value(env, letter, &val);
			if (ret == 0)
				ret = macro_transform(out, val.data != NULL ?
				    val.data : "", val.len, keep, reverse,
				    nd > 0 ? delims : ".", upper);
			buf_free(&val);
			if (ret < 0)
				goto toolong;
		}
	}
	return 0;
toolong:
	*error_r = "macro expansion too long";
	return -1;
}

/* RFC 7208 toplabel: alphanumerics and '-', not all digits, no '-' at
 * either end. */
static bool
toplabel_valid(const char *s, size_t len)
{
	bool alpha = false;

	if (len == 0 || s[0] == '-' || s[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (isalpha(c))
			alpha = true;
		else if (!isdigit(c) && c != '-')
			return false;
	}
	/* "1-2" is a toplabel too by the grammar's second branch */
	return alpha || memchr(s, '-', len) != NULL;
}

/* domain-spec = macro-string domain-end (RFC 7208 §7.1). */
static int
domain_spec_check(const char *s, size_t len, const char **error_r)
{
	struct macro_env env = { NULL, NULL };
	size_t tail, end = len, dot;

	if (len == 0) {
		*error_r = "empty domain-spec";
		return -1;
	}
	if (macro_walk(s, len, false, &env, NULL, &tail, error_r) < 0)
		return -1;
	if (tail == len)
		return 0;	/* ends with a macro-expand */
	if (end > tail && s[end - 1] == '.')
		end--;
	for (dot = end; dot > tail && s[dot - 1] != '.'; dot--)
		;
	if (dot == tail || !toplabel_valid(s + dot, end - dot)) {
		*error_r = "domain-spec does not end in a valid top label";
		return -1;
	}
	return 0;
}

static int
expand(struct spf_eval *ev, const char *macro, const char *domain,
    bool is_exp, bool is_domain, char **out_r, const char **error_r)
{
	struct macro_env env = { ev, domain };
	struct buf out;
	size_t tail, len;
	char *s, *p;

	*out_r = NULL;
	buf_init(&out, SPF_EXPAND_MAX);
	if (macro_walk(macro, strlen(macro), is_exp, &env, &out, &tail,
	    error_r) < 0) {
		buf_free(&out);
		return -1;
	}
	s = buf_steal(&out);
	if (s == NULL)
		s = xstrdup("");
	if (is_domain) {
		/* §7.3: cut labels on the left until it fits in 253 */
		len = strlen(s);
		if (len > 0 && s[len - 1] == '.')
			s[--len] = '\0';
		p = s;
		while (len > 253) {
			char *dot = strchr(p, '.');

			if (dot == NULL) {
				free(s);
				*error_r = "expanded domain too long";
				return -1;
			}
			len -= (size_t)(dot + 1 - p);
			p = dot + 1;
		}
		memmove(s, p, len + 1);
	}
	*out_r = s;
	return 0;
}

/* Splits the sender into local part and domain; an empty local part
 * (or none at all) becomes "postmaster" (RFC 7208 §4.3). */
static int
eval_init(struct spf_eval *ev, const struct msgauth_dns *dns,
    const struct spf_request *req, const char *sender,
    struct spf_outcome *out)
{
	const char *at;
	size_t llen;

	memset(ev, 0, sizeof(*ev));
	ev->dns = dns;
	ev->req = req;
	ev->out = out;
	if (sender == NULL)
		sender = "";
	if (strlen(sender) > SPF_SENDER_MAX)
		return -1;
	at = strrchr(sender, '@');
	if (at == NULL) {
		ev->sender_parts = xasprintf("postmaster%c%s", '\0', sender);
		llen = 10;
	} else if (at == sender) {
		ev->sender_parts = xasprintf("postmaster%c%s", '\0', at + 1);
		llen = 10;
	} else {
		llen = (size_t)(at - sender);
		ev->sender_parts = xmalloc(strlen(sender) + 1);
		memcpy(ev->sender_parts, sender, llen);
		ev->sender_parts[llen] = '\0';
		strcpy(ev->sender_parts + llen + 1, at + 1);
	}
	ev->local = ev->sender_parts;
	ev->sdomain = ev->sender_parts + llen + 1;
	ev->sender = xasprintf("%s@%s", ev->local, ev->sdomain);
	return 0;
}

static void
eval_deinit(struct spf_eval *ev)
{
	free(ev->sender);
	free(ev->sender_parts);
}

int
spf_macro_expand(const char *macro, const struct spf_request *req,
    const char *domain, const char *sender, bool is_exp, bool is_domain,
    const struct msgauth_dns *dns, char **out_r, const char **error_r)
{
	struct spf_eval ev;
	int ret;

	*out_r = NULL;
	if (eval_init(&ev, dns, req, sender, NULL) < 0) {
		*error_r = "sender too long";
		return -1;
	}
	ret = expand(&ev, macro, domain, is_exp, is_domain, out_r, error_r);
	eval_deinit(&ev);
	return ret;
}

/* ------------------------------------------------------------------ */
/* Record parser (RFC 7208 §4.6.1, §5, §6, §12).                       */

bool
spf_record_is_spf1(const char *text, size_t len)
{
	return len >= 6 && strncasecmp(text, "v=spf1", 6) == 0 &&
	    (len == 6 || text[6] == ' ');
}

void
spf_record_free(struct spf_record **recp)
{
	struct spf_record *rec = *recp;

	if (rec == NULL)
		return;
	for (size_t i = 0; i < rec->mech_count; i++) {
		free(rec->mechs[i].domain_spec);
		free(rec->mechs[i].text);
	}
	free(rec->mechs);
	free(rec->redirect);
	free(rec->exp);
	free(rec);
	*recp = NULL;
}

/* "/" cidr-length: "0" or a number without leading zero, <= max. */
static int
parse_cidr(const char *s, size_t len, unsigned int max, unsigned int *v_r)
{
	unsigned int v = 0;

	if (len == 0 || len > 3 || (s[0] == '0' && len > 1))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (unsigned int)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*v_r = v;
	return 0;
}

/* dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ] */
static int
parse_dual_cidr(const char *s, size_t len, struct spf_mech *m)
{
	const char *dd;

	if (len == 0)
		return 0;
	if (s[0] != '/')
		return -1;
	if (len >= 2 && s[1] == '/')
		return parse_cidr(s + 2, len - 2, 128, &m->cidr6);
	dd = memmem(s + 1, len - 1, "//", 2);
	if (dd == NULL)
		return parse_cidr(s + 1, len - 1, 32, &m->cidr4);
	if (parse_cidr(s + 1, (size_t)(dd - s - 1), 32, &m->cidr4) < 0)
		return -1;
	return parse_cidr(dd + 2, len - (size_t)(dd + 2 - s), 128, &m->cidr6);
}

/* Length of a run of 1-3 digits ending at s[end], 0 if none. */
static size_t
digits_before(const char *s, size_t end)
{
	size_t n = 0;

	while (n < end && n < 4 && isdigit((unsigned char)s[end - n - 1]))
		n++;
	return n >= 1 && n <= 3 ? n : 0;
}

/*
 * Where the dual-cidr-length at the end of "domain-spec[cidr]" starts
 * (len if there is none). A domain-spec may itself hold '/' ("a:foo/bar
 * .example.com" is valid), so only a trailing "/N", "//N" or "/N//M"
 * counts as the cidr part.
 */
static size_t
find_cidr_start(const char *s, size_t len)
{
	size_t d = digits_before(s, len), start;

	if (d == 0 || len - d < 1 || s[len - d - 1] != '/')
		return len;
	start = len - d - 1;
	if (start >= 1 && s[start - 1] == '/') {
		/* "//M": maybe preceded by "/N" */
		size_t v6 = start - 1, d4 = digits_before(s, v6);

		if (d4 > 0 && v6 - d4 >= 1 && s[v6 - d4 - 1] == '/' &&
		    !(v6 - d4 >= 2 && s[v6 - d4 - 2] == '/'))
			return v6 - d4 - 1;
		return v6;
	}
	return start;
}

static int
parse_ip_net(const char *s, size_t len, uint8_t family, struct spf_mech *m,
    const char **error_r)
{
	size_t slash = len;
	char addr[64];

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '/') {
			slash = i;
			break;
		}
	}
	if (slash == 0 || slash >= sizeof(addr)) {
		*error_r = "bad ip4/ip6 network";
		return -1;
	}
	memcpy(addr, s, slash);
	addr[slash] = '\0';
	if (msgauth_ip_parse(addr, &m->net) < 0 ||
	    (family == 4 && strchr(addr, ':') != NULL) ||
	    (family == 6 && strchr(addr, ':') == NULL)) {
		*error_r = "bad ip4/ip6 network";
		return -1;
	}
	if (family == 6 && m->net.family == 4) {
		/* ip6:::ffff:1.2.3.4 stays an IPv6 network for matching */
		struct msgauth_ip v4 = m->net;

		memset(&m->net, 0, sizeof(m->net));
		m->net.family = 6;
		m->net.addr[10] = m->net.addr[11] = 0xff;
		memcpy(m->net.addr + 12, v4.addr, 4);
	}
	if (slash < len && parse_cidr(s + slash + 1, len - slash - 1,
	    family == 4 ? 32 : 128, family == 4 ? &m->cidr4 : &m->cidr6) < 0) {
		*error_r = "bad cidr length";
		return -1;
	}
	return 0;
}

static const struct {
	const char *name;
	enum spf_mech_type type;
} mech_names[] = {
	{ "all", SPF_MECH_ALL },
	{ "include", SPF_MECH_INCLUDE },
	{ "a", SPF_MECH_A },
	{ "mx", SPF_MECH_MX },
	{ "ptr", SPF_MECH_PTR },
	{ "ip4", SPF_MECH_IP4 },
	{ "ip6", SPF_MECH_IP6 },
	{ "exists", SPF_MECH_EXISTS },
};

static int
parse_directive(const char *t, size_t len, struct spf_mech *m,
    const char **error_r)
{
	size_t i = 0, nlen;
	const char *rest;
	size_t rlen;
	bool found = false;

	m->qualifier = '+';
	m->cidr4 = 32;
	m->cidr6 = 128;
	if (len > 0 && strchr("+-~?", t[0]) != NULL) {
		m->qualifier = t[0];
		i++;
	}
	nlen = 0;
	while (i + nlen < len && isalnum((unsigned char)t[i + nlen]))
		nlen++;
	for (size_t k = 0; k < sizeof(mech_names) / sizeof(mech_names[0]); k++) {
		if (strlen(mech_names[k].name) == nlen &&
		    strncasecmp(t + i, mech_names[k].name, nlen) == 0) {
			m->type = mech_names[k].type;
			found = true;
			break;
		}
	}
	if (!found) {
		*error_r = "unknown mechanism";
		return -1;
	}
	rest = t + i + nlen;
	rlen = len - i - nlen;
	if (rlen > 0 && rest[0] != ':' && rest[0] != '/') {
		*error_r = "unknown mechanism";
		return -1;
	}

	switch (m->type) {
	case SPF_MECH_ALL:
		if (rlen != 0) {
			*error_r = "\"all\" takes no argument";
			return -1;
		}
		return 0;
	case SPF_MECH_IP4:
	case SPF_MECH_IP6:
		if (rlen == 0 || rest[0] != ':') {
			*error_r = "ip4/ip6 needs a network";
			return -1;
		}
		return parse_ip_net(rest + 1, rlen - 1,
		    m->type == SPF_MECH_IP4 ? 4 : 6, m, error_r);
	case SPF_MECH_INCLUDE:
	case SPF_MECH_EXISTS:
		if (rlen < 2 || rest[0] != ':') {
			*error_r = "include/exists needs a domain-spec";
			return -1;
		}
		if (domain_spec_check(rest + 1, rlen - 1, error_r) < 0)
			return -1;
		m->domain_spec = xstrndup(rest + 1, rlen - 1);
		return 0;
	case SPF_MECH_PTR:
		if (rlen == 0)
			return 0;
		if (rest[0] != ':') {
			*error_r = "\"ptr\" takes no cidr-length";
			return -1;
		}
		if (domain_spec_check(rest + 1, rlen - 1, error_r) < 0)
			return -1;
		m->domain_spec = xstrndup(rest + 1, rlen - 1);
		return 0;
	case SPF_MECH_A:
	case SPF_MECH_MX: {
		size_t cidr = 0;

		if (rlen > 0 && rest[0] == ':') {
			cidr = 1 + find_cidr_start(rest + 1, rlen - 1);
			if (domain_spec_check(rest + 1, cidr - 1, error_r) < 0)
				return -1;
			m->domain_spec = xstrndup(rest + 1, cidr - 1);
		}
		if (parse_dual_cidr(rest + cidr, rlen - cidr, m) < 0) {
			*error_r = "bad cidr length";
			return -1;
		}
		return 0;
	}
	}
	panic("spf: mechanism type %d", (int)m->type);
}

static bool
is_name_char(char c, bool first)
{
	if (isalpha((unsigned char)c))
		return true;
	return !first && (isdigit((unsigned char)c) || c == '-' || c == '_' ||
	    c == '.');
}

static int
parse_term(struct spf_record *rec, const char *t, size_t len,
    const char **error_r)
{
	size_t n = 0;
	struct spf_mech *m;

	while (n < len && is_name_char(t[n], n == 0))
		n++;
	if (n > 0 && n < len && t[n] == '=') {
		const char *val = t + n + 1;
		size_t vlen = len - n - 1;
		char **slot = NULL;
		size_t tail;

		if (n == 8 && strncasecmp(t, "redirect", 8) == 0)
			slot = &rec->redirect;
		else if (n == 3 && strncasecmp(t, "exp", 3) == 0)
			slot = &rec->exp;
		if (slot == NULL) {
			/* unknown modifiers are ignored, but must parse */
			struct macro_env env = { NULL, NULL };

			return macro_walk(val, vlen, false, &env, NULL, &tail,
			    error_r);
		}
		if (*slot != NULL) {
			*error_r = "duplicate redirect or exp modifier";
			return -1;
		}
		if (domain_spec_check(val, vlen, error_r) < 0)
			return -1;
		*slot = xstrndup(val, vlen);
		return 0;
	}
	if (rec->mech_count == SPF_TERMS_MAX) {
		*error_r = "too many terms";
		return -1;
	}
	m = &rec->mechs[rec->mech_count];
	memset(m, 0, sizeof(*m));
	if (parse_directive(t, len, m, error_r) < 0) {
		free(m->domain_spec);
		m->domain_spec = NULL;
		return -1;
	}
	m->text = xstrndup(t, len);
	if (m->type == SPF_MECH_ALL)
		rec->has_all = true;
	rec->mech_count++;
	return 0;
}

int
spf_record_parse(const char *text, size_t len, struct spf_record **rec_r,
    const char **error_r)
{
	struct spf_record *rec;
	size_t pos = 6;

	*rec_r = NULL;
	if (len > SPF_RECORD_MAX) {
		*error_r = "record too long";
		return -1;
	}
	if (memchr(text, '\0', len) != NULL) {
		*error_r = "NUL byte in record";
		return -1;
	}
	if (!spf_record_is_spf1(text, len)) {
		*error_r = "not an SPF version 1 record";
		return -1;
	}
	rec = xcalloc(1, sizeof(*rec));
	rec->mechs = xreallocarray(NULL, SPF_TERMS_MAX, sizeof(*rec->mechs));
	while (pos < len) {
		size_t end;

		/* terms = *( 1*SP ( directive / modifier ) ) */
		if (text[pos] != ' ') {
			*error_r = "terms must be separated by spaces";
			goto fail;
		}
		while (pos < len && text[pos] == ' ')
			pos++;
		if (pos == len)
			break;
		for (end = pos; end < len && text[end] != ' '; end++)
			;
		if (parse_term(rec, text + pos, end - pos, error_r) < 0)
			goto fail;
		pos = end;
	}
	*rec_r = rec;
	return 0;
fail:
	spf_record_free(&rec);
	return -1;
}

/* ------------------------------------------------------------------ */
/* check_host() (RFC 7208 §4).                                         */

static enum spf_result check_host_rec(struct spf_eval *ev, const char *domain,
    bool in_include);

/* Counts a DNS-querying term; false (and a problem) past the limit. */
static bool
count_lookup(struct spf_eval *ev)
{
	if (++ev->lookups > SPF_DNS_LOOKUP_LIMIT) {
		eval_problem(ev, "more than %d DNS-querying terms",
		    SPF_DNS_LOOKUP_LIMIT);
		return false;
	}
	return true;
}

/* Counts a lookup that found nothing; false past the limit. */
static bool
count_void(struct spf_eval *ev)
{
	if (++ev->voids > SPF_VOID_LOOKUP_LIMIT) {
		eval_problem(ev, "more than %d void DNS lookups",
		    SPF_VOID_LOOKUP_LIMIT);
		return false;
	}
	return true;
}

static bool
addrs_match(const struct spf_eval *ev, const struct msgauth_dns_addrs *r,
    const struct spf_mech *m)
{
	unsigned int bits = ev->req->ip.family == 4 ? m->cidr4 : m->cidr6;

	for (size_t i = 0; i < r->count; i++) {
		if (msgauth_ip_match_prefix(&r->ip[i], &ev->req->ip, bits))
			return true;
	}
	return false;
}

/* 1 = match, 0 = no match, -1 = *res_r is temperror/permerror. */
static int
mech_match(struct spf_eval *ev, const struct spf_mech *m, const char *domain,
    enum spf_result *res_r)
{
	char *target = NULL;
	const char *err;
	enum msgauth_dns_rc rc;
	int ret = 0;

	switch (m->type) {
	case SPF_MECH_ALL:
		return 1;
	case SPF_MECH_IP4:
	case SPF_MECH_IP6:
		return msgauth_ip_match_prefix(&m->net, &ev->req->ip,
		    m->net.family == 4 ? m->cidr4 : m->cidr6) ? 1 : 0;
	default:
		break;
	}

	if (!count_lookup(ev)) {
		*res_r = SPF_RESULT_PERMERROR;
		return -1;
	}
	if (m->domain_spec == NULL) {
		target = xstrdup(domain);
	} else if (expand(ev, m->domain_spec, domain, false, true, &target,
	    &err) < 0) {
		eval_problem(ev, "%s in \"%s\"", err, m->text);
		*res_r = SPF_RESULT_PERMERROR;
		return -1;
	}

	switch (m->type) {
	case SPF_MECH_INCLUDE: {
		enum spf_result r;

		if (!domain_valid(target)) {
			eval_problem(ev, "include of a malformed domain");
			*res_r = SPF_RESULT_PERMERROR;
			ret = -1;
			break;
		}
		r = check_host_rec(ev, target, true);
		switch (r) {
		case SPF_RESULT_PASS:
			ret = 1;
			break;
		case SPF_RESULT_FAIL:
		case SPF_RESULT_SOFTFAIL:
		case SPF_RESULT_NEUTRAL:
			ret = 0;
			break;
		case SPF_RESULT_TEMPERROR:
			*res_r = SPF_RESULT_TEMPERROR;
			ret = -1;
			break;
		case SPF_RESULT_NONE:
			eval_problem(ev, "included domain %.100s has no SPF record",
			    target);
			/* fall through */
		case SPF_RESULT_PERMERROR:
			*res_r = SPF_RESULT_PERMERROR;
			ret = -1;
			break;
		}
		break;
	}
	case SPF_MECH_A:
	case SPF_MECH_EXISTS: {
		struct msgauth_dns_addrs *r = xcalloc(1, sizeof(*r));
		uint8_t family = m->type == SPF_MECH_EXISTS ? 4 :
		    ev->req->ip.family;

		if (!domain_valid(target)) {
			free(r);
			break;	/* a name that cannot exist matches nothing */
		}
		rc = lookup_addrs(ev, target, family, r);
		if (rc == MSGAUTH_DNS_TEMPFAIL) {
			eval_problem(ev, "DNS failure looking up %.100s", target);
			*res_r = SPF_RESULT_TEMPERROR;
			ret = -1;
		} else if (rc != MSGAUTH_DNS_FOUND) {
			if (!count_void(ev)) {
				*res_r = SPF_RESULT_PERMERROR;
				ret = -1;
			}
		} else if (m->type == SPF_MECH_EXISTS) {
			ret = 1;
		} else {
			ret = addrs_match(ev, r, m) ? 1 : 0;
		}
		free(r);
		break;
	}
	case SPF_MECH_MX: {
		struct msgauth_dns_names *mx = xcalloc(1, sizeof(*mx));
		struct msgauth_dns_addrs *r = xcalloc(1, sizeof(*r));

		if (!domain_valid(target)) {
			free(mx);
			free(r);
			break;
		}
		rc = ev->dns->mx(ev->dns->ctx, target, mx);
		if (rc == MSGAUTH_DNS_TEMPFAIL) {
			eval_problem(ev, "DNS failure looking up MX %.100s", target);
			*res_r = SPF_RESULT_TEMPERROR;
			ret = -1;
		} else if (rc != MSGAUTH_DNS_FOUND) {
			if (!count_void(ev)) {
				*res_r = SPF_RESULT_PERMERROR;
				ret = -1;
			}
		} else if (mx->count > SPF_MX_NAME_LIMIT || mx->truncated) {
			eval_problem(ev, "more than %d MX names for %.100s",
			    SPF_MX_NAME_LIMIT, target);
			*res_r = SPF_RESULT_PERMERROR;
			ret = -1;
		} else {
			for (size_t i = 0; i < mx->count && ret == 0; i++) {
				if (!domain_valid(mx->name[i]))
					continue;	/* null MX "." and junk */
				rc = lookup_addrs(ev, mx->name[i],
				    ev->req->ip.family, r);
				if (rc == MSGAUTH_DNS_TEMPFAIL) {
					eval_problem(ev, "DNS failure looking up %.100s",
					    mx->name[i]);
					*res_r = SPF_RESULT_TEMPERROR;
					ret = -1;
				} else if (rc == MSGAUTH_DNS_FOUND &&
				    addrs_match(ev, r, m)) {
					ret = 1;
				}
			}
		}
		free(mx);
		free(r);
		break;
	}
	case SPF_MECH_PTR: {
		struct msgauth_dns_names *names = xcalloc(1, sizeof(*names));

		/* the void-lookup rule needs the PTR answer itself */
		rc = ev->dns->ptr(ev->dns->ctx, &ev->req->ip, names);
		free(names);
		if ((rc == MSGAUTH_DNS_NXDOMAIN || rc == MSGAUTH_DNS_NODATA) &&
		    !count_void(ev)) {
			*res_r = SPF_RESULT_PERMERROR;
			ret = -1;
			break;
		}
		ptr_validate(ev);
		for (size_t i = 0; i < ev->valid_count; i++) {
			if (domain_within(ev->valid[i], target)) {
				ret = 1;
				break;
			}
		}
		break;
	}
	default:
		panic("spf: unexpected mechanism %d", (int)m->type);
	}
	free(target);
	return ret;
}

static enum spf_result
qualifier_result(char q)
{
	switch (q) {
	case '-': return SPF_RESULT_FAIL;
	case '~': return SPF_RESULT_SOFTFAIL;
	case '?': return SPF_RESULT_NEUTRAL;
	default: return SPF_RESULT_PASS;
	}
}

/* Finds and parses the one SPF record of domain. On anything but
 * SPF_RESULT_PASS (used here as "found"), that is the result. */
static enum spf_result
fetch_record(struct spf_eval *ev, const char *domain, struct spf_record **rec_r)
{
	struct msgauth_dns_txt *txt = xcalloc(1, sizeof(*txt));
	enum msgauth_dns_rc rc;
	const char *err, *found = NULL;
	size_t found_len = 0, n = 0;
	enum spf_result res = SPF_RESULT_PASS;

	*rec_r = NULL;
	rc = ev->dns->txt(ev->dns->ctx, domain, txt);
	if (rc == MSGAUTH_DNS_TEMPFAIL) {
		eval_problem(ev, "DNS failure looking up TXT %.100s", domain);
		res = SPF_RESULT_TEMPERROR;
		goto out;
	}
	for (size_t i = 0; rc == MSGAUTH_DNS_FOUND && i < txt->count; i++) {
		if (spf_record_is_spf1(txt->txt[i], txt->len[i])) {
			found = txt->txt[i];
			found_len = txt->len[i];
			n++;
		}
	}
	if (n == 0) {
		res = SPF_RESULT_NONE;
	} else if (n > 1) {
		eval_problem(ev, "%.100s has more than one SPF record", domain);
		res = SPF_RESULT_PERMERROR;
	} else if (spf_record_parse(found, found_len, rec_r, &err) < 0) {
		eval_problem(ev, "SPF record of %.100s: %s", domain, err);
		res = SPF_RESULT_PERMERROR;
	}
out:
	msgauth_dns_txt_free(txt);
	free(txt);
	return res;
}

/* The exp= explanation (RFC 7208 §6.2); any trouble means none. */
static void
explain(struct spf_eval *ev, const struct spf_record *rec, const char *domain)
{
	struct msgauth_dns_txt *txt;
	char *name = NULL, *text = NULL;
	const char *err;

	if (rec->exp == NULL || ev->out == NULL || ev->out->explanation != NULL)
		return;
	if (expand(ev, rec->exp, domain, false, true, &name, &err) < 0)
		return;
	txt = xcalloc(1, sizeof(*txt));
	if (domain_valid(name) &&
	    ev->dns->txt(ev->dns->ctx, name, txt) == MSGAUTH_DNS_FOUND &&
	    txt->count == 1 && strlen(txt->txt[0]) == txt->len[0] &&
	    expand(ev, txt->txt[0], domain, true, false, &text, &err) == 0)
		ev->out->explanation = text;
	msgauth_dns_txt_free(txt);
	free(txt);
	free(name);
}

static enum spf_result
check_host_rec(struct spf_eval *ev, const char *domain, bool in_include)
{
	struct spf_record *rec;
	enum spf_result res;
	char *target;
	const char *err;

	if (!domain_valid(domain))
		return SPF_RESULT_NONE;
	res = fetch_record(ev, domain, &rec);
	if (rec == NULL)
		return res;

	for (size_t i = 0; i < rec->mech_count; i++) {
		const struct spf_mech *m = &rec->mechs[i];
		int match = mech_match(ev, m, domain, &res);

		if (match < 0)
			goto done;
		if (match == 0)
			continue;
		res = qualifier_result(m->qualifier);
		if (!in_include && ev->out != NULL)
			str_copy(ev->out->mechanism, sizeof(ev->out->mechanism),
			    m->text);
		if (res == SPF_RESULT_FAIL && !in_include)
			explain(ev, rec, domain);
		goto done;
	}

	/* §6.1: redirect only when nothing matched and there is no "all" */
	if (rec->redirect == NULL || rec->has_all) {
		res = SPF_RESULT_NEUTRAL;
		if (!in_include && ev->out != NULL)
			str_copy(ev->out->mechanism, sizeof(ev->out->mechanism),
			    "default");
		goto done;
	}
	if (!count_lookup(ev)) {
		res = SPF_RESULT_PERMERROR;
		goto done;
	}
	if (expand(ev, rec->redirect, domain, false, true, &target, &err) < 0) {
		eval_problem(ev, "redirect: %s", err);
		res = SPF_RESULT_PERMERROR;
		goto done;
	}
	if (!domain_valid(target)) {
		eval_problem(ev, "redirect to a malformed domain");
		res = SPF_RESULT_PERMERROR;
	} else {
		res = check_host_rec(ev, target, in_include);
		if (res == SPF_RESULT_NONE) {
			eval_problem(ev, "redirect target %.100s has no SPF record",
			    target);
			res = SPF_RESULT_PERMERROR;
		}
	}
	free(target);
done:
	spf_record_free(&rec);
	return res;
}

void
spf_outcome_free(struct spf_outcome *o)
{
	x_free(&o->explanation);
}

void
spf_outcome_copy(struct spf_outcome *dst, const struct spf_outcome *src)
{
	*dst = *src;
	dst->explanation = src->explanation != NULL ?
	    xstrdup(src->explanation) : NULL;
}

enum spf_result
spf_check_host(const struct msgauth_dns *dns, const struct spf_request *req,
    const char *domain, const char *sender, struct spf_outcome *out)
{
	struct spf_eval ev;
	enum spf_result res;

	memset(out, 0, sizeof(*out));
	if (!domain_copy(out->domain, sizeof(out->domain), domain))
		out->domain[0] = '\0';
	if (eval_init(&ev, dns, req, sender, out) < 0) {
		str_copy(out->problem, sizeof(out->problem), "sender too long");
		out->result = SPF_RESULT_NONE;
		return out->result;
	}
	res = check_host_rec(&ev, out->domain, false);
	if (res != SPF_RESULT_FAIL)
		x_free(&out->explanation);
	out->dns_lookups = ev.lookups;
	out->void_lookups = ev.voids;
	out->result = res;
	eval_deinit(&ev);
	return res;
}

enum spf_result
spf_check_helo(const struct msgauth_dns *dns, const struct spf_request *req,
    struct spf_outcome *out)
{
	const char *helo = req->helo != NULL ? req->helo : "";
	char *sender;
	enum spf_result res;

	if (!domain_valid(helo)) {
		memset(out, 0, sizeof(*out));
		out->identity = SPF_IDENTITY_HELO;
		out->result = SPF_RESULT_NONE;
		return out->result;
	}
	sender = xasprintf("postmaster@%s", helo);
	res = spf_check_host(dns, req, helo, sender, out);
	out->identity = SPF_IDENTITY_HELO;
	free(sender);
	return res;
}

enum spf_result
spf_check_mailfrom(const struct msgauth_dns *dns, const struct spf_request *req,
    struct spf_outcome *out)
{
	const char *sender = req->sender != NULL ? req->sender : "";
	const char *at = strrchr(sender, '@');
	enum spf_result res;

	if (sender[0] == '\0')
		return spf_check_helo(dns, req, out);
	res = spf_check_host(dns, req, at != NULL ? at + 1 : sender, sender, out);
	out->identity = SPF_IDENTITY_MAILFROM;
	return res;
}

/* ------------------------------------------------------------------ */
/* Received-SPF (RFC 7208 §9.1).                                       */

static bool
is_dot_atom(const char *s)
{
	bool prev_dot = true;

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '.') {
			if (prev_dot)
				return false;
			prev_dot = true;
			continue;
		}
		prev_dot = false;
		if (!isalnum(c) && strchr("!#$%&'*+-/=?^_`{|}~", c) == NULL)
			return false;
	}
	return !prev_dot;
}

/* Appends s, cut to max bytes, with control and non-ASCII bytes as '?'
 * and the given specials backslash-escaped. */
static void
append_clean(struct buf *b, const char *s, size_t max, const char *specials)
{
	for (size_t i = 0; s[i] != '\0' && i < max; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f)
			c = '?';
		if (strchr(specials, c) != NULL)
			buf_append_c(b, '\\');
		buf_append_c(b, (char)c);
	}
}

static void
append_kv(struct buf *b, const char *key, const char *value)
{
	buf_printf(b, " %s=", key);
	if (is_dot_atom(value) && strlen(value) <= 255) {
		buf_append_str(b, value);
	} else {
		buf_append_c(b, '"');
		append_clean(b, value, 255, "\"\\");
		buf_append_c(b, '"');
	}
	buf_append_c(b, ';');
}

char *
spf_received_spf(const struct spf_request *req, const struct spf_outcome *o)
{
	const char *receiver = req->receiver != NULL && req->receiver[0] != '\0' ?
	    req->receiver : "unknown";
	const char *helo = req->helo != NULL ? req->helo : "";
	char ip[64], *who;
	struct buf b;
	const char *pre, *mid, *post;
	struct buf w;

	msgauth_ip_format(&req->ip, ip, sizeof(ip));
	if (o->identity == SPF_IDENTITY_HELO || req->sender == NULL ||
	    req->sender[0] == '\0')
		who = xasprintf("postmaster@%s", helo);
	else
		who = xstrdup(req->sender);

	buf_init(&b, 4096);
	buf_printf(&b, "Received-SPF: %s (", spf_result_name(o->result));
	append_clean(&b, receiver, 255, "()\\");
	buf_append_str(&b, ": ");
	pre = "domain of ";
	switch (o->result) {
	case SPF_RESULT_PASS:
		mid = " designates ";
		post = " as permitted sender";
		break;
	case SPF_RESULT_FAIL:
		mid = " does not designate ";
		post = " as permitted sender";
		break;
	case SPF_RESULT_SOFTFAIL:
		mid = " discourages use of ";
		post = " as sender";
		break;
	case SPF_RESULT_NEUTRAL:
		mid = " makes no statement about ";
		post = "";
		break;
	case SPF_RESULT_NONE:
		mid = " publishes no SPF policy; client ";
		post = "";
		break;
	case SPF_RESULT_TEMPERROR:
		pre = "temporary DNS error checking ";
		mid = "; client ";
		post = "";
		break;
	default:
		mid = " has an invalid SPF policy; client ";
		post = "";
		break;
	}
	/* the sender is untrusted: cleaned like the receiver */
	buf_init(&w, 1024);
	append_clean(&w, who, 300, "()\\");
	buf_printf(&b, "%s%s%s%s%s", pre, w.data != NULL ? w.data : "", mid,
	    ip, post);
	buf_free(&w);
	buf_append_str(&b, ")");
	append_kv(&b, "client-ip", ip);
	append_kv(&b, "envelope-from", req->sender != NULL ? req->sender : "");
	append_kv(&b, "helo", helo);
	append_kv(&b, "receiver", receiver);
	append_kv(&b, "identity", o->identity == SPF_IDENTITY_HELO ?
	    "helo" : "mailfrom");
	if (o->mechanism[0] != '\0')
		append_kv(&b, "mechanism", o->mechanism);
	if (o->problem[0] != '\0')
		append_kv(&b, "problem", o->problem);
	/* drop the final ';' */
	buf_truncate(&b, b.len - 1);
	free(who);
	return buf_steal(&b);
}
