/*
 * DMARC (RFC 7489). The record is a DKIM-style tag list (RFC 6376
 * §3.2); we are strict about what decides the policy (v= first and
 * exactly DMARC1, p=, no duplicate tags, a well-formed list) and lenient
 * about the rest, as §6.3 asks: a bad pct= or fo= falls back on its
 * default rather than throwing away the sender's policy.
 */
#include "msgauth/dmarc.h"

#include "lib/str.h"
#include "lib/xalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *
dmarc_policy_name(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_POLICY_UNSET: return "unset";
	case DMARC_POLICY_NONE: return "none";
	case DMARC_POLICY_QUARANTINE: return "quarantine";
	case DMARC_POLICY_REJECT: return "reject";
	}
	return "none";
}

const char *
dmarc_result_name(enum dmarc_result r)
{
	switch (r) {
	case DMARC_RESULT_NONE: return "none";
	case DMARC_RESULT_PASS: return "pass";
	case DMARC_RESULT_FAIL: return "fail";
	case DMARC_RESULT_TEMPERROR: return "temperror";
	case DMARC_RESULT_PERMERROR: return "permerror";
	}
	return "permerror";
}

const char *
dmarc_disposition_name(enum dmarc_disposition d)
{
	switch (d) {
	case DMARC_DISP_NONE: return "none";
	case DMARC_DISP_QUARANTINE: return "quarantine";
	case DMARC_DISP_REJECT: return "reject";
	}
	return "none";
}

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
parse_policy(const char *v, size_t len, enum dmarc_policy *p_r)
{
	if (len == 4 && strncasecmp(v, "none", 4) == 0)
		*p_r = DMARC_POLICY_NONE;
	else if (len == 10 && strncasecmp(v, "quarantine", 10) == 0)
		*p_r = DMARC_POLICY_QUARANTINE;
	else if (len == 6 && strncasecmp(v, "reject", 6) == 0)
		*p_r = DMARC_POLICY_REJECT;
	else
		return -1;
	return 0;
}

static int
parse_uint(const char *v, size_t len, unsigned long long max,
    unsigned long long *v_r)
{
	unsigned long long n = 0;

	if (len == 0 || len > 10)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)v[i]))
			return -1;
		n = n * 10 + (unsigned long long)(v[i] - '0');
	}
	if (n > max)
		return -1;
	*v_r = n;
	return 0;
}

/* fo = 0 / 1 / d / s, colon-separated */
static bool
fo_valid(const char *v, size_t len)
{
	bool want_opt = true;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = (char)tolower((unsigned char)v[i]);

		if (want_opt && (c == '0' || c == '1' || c == 'd' || c == 's'))
			want_opt = false;
		else if (!want_opt && c == ':')
			want_opt = true;
		else if (!(c == ' ' || c == '\t'))
			return false;
	}
	return !want_opt;
}

static void
copy_value(char *dst, size_t size, const char *v, size_t len)
{
	if (len >= size)
		len = 0;	/* too long to be kept whole: dropped */
	memcpy(dst, v, len);
	dst[len] = '\0';
}

enum dmarc_tag {
	TAG_V, TAG_P, TAG_SP, TAG_PCT, TAG_ADKIM, TAG_ASPF, TAG_RUA, TAG_RUF,
	TAG_FO, TAG_RF, TAG_RI, TAG_COUNT,
};

static const char *const tag_names[TAG_COUNT] = {
	"v", "p", "sp", "pct", "adkim", "aspf", "rua", "ruf", "fo", "rf", "ri",
};

int
dmarc_record_parse(const char *text, size_t len, struct dmarc_record *rec,
    const char **error_r)
{
	bool seen[TAG_COUNT] = { false };
	bool p_bad = false, p_seen = false;
	size_t pos = 0, ntags = 0;

	memset(rec, 0, sizeof(*rec));
	rec->pct = 100;
	rec->ri = 86400;
	str_copy(rec->fo, sizeof(rec->fo), "0");
	str_copy(rec->rf, sizeof(rec->rf), "afrf");
	if (len > DMARC_RECORD_MAX) {
		*error_r = "record too long";
		return -1;
	}
	if (memchr(text, '\0', len) != NULL) {
		*error_r = "NUL in record";
		return -1;
	}

	while (pos < len) {
		size_t nstart, nlen, vstart, vend, semi;
		int tag = -1;

		/* tag-spec = [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS] */
		for (semi = pos; semi < len && text[semi] != ';'; semi++)
			;
		while (pos < semi && is_wsp(text[pos]))
			pos++;
		if (pos == semi) {
			/* only a trailing ";" (and white space) may end the list */
			if (semi == len && ntags > 0)
				break;
			*error_r = "empty tag list entry";
			return -1;
		}
		nstart = pos;
		if (!isalpha((unsigned char)text[pos])) {
			*error_r = "malformed tag name";
			return -1;
		}
		while (pos < semi && (isalnum((unsigned char)text[pos]) ||
		    text[pos] == '_'))
			pos++;
		nlen = pos - nstart;
		while (pos < semi && is_wsp(text[pos]))
			pos++;
		if (pos == semi || text[pos] != '=') {
			*error_r = "tag without '='";
			return -1;
		}
		pos++;
		while (pos < semi && is_wsp(text[pos]))
			pos++;
		vstart = pos;
		vend = semi;
		while (vend > vstart && is_wsp(text[vend - 1]))
			vend--;
		for (size_t i = vstart; i < vend; i++) {
			unsigned char c = (unsigned char)text[i];

			if (!(c >= 0x21 && c <= 0x7e) && !is_wsp((char)c)) {
				*error_r = "invalid character in tag value";
				return -1;
			}
		}
		for (int t = 0; t < TAG_COUNT; t++) {
			if (strlen(tag_names[t]) == nlen &&
			    strncasecmp(text + nstart, tag_names[t], nlen) == 0)
				tag = t;
		}
		if (ntags == 0 && tag != TAG_V) {
			*error_r = "v= is not the first tag";
			return -1;
		}
		if (tag >= 0) {
			const char *v = text + vstart;
			size_t vl = vend - vstart;
			unsigned long long n;

			if (seen[tag]) {
				*error_r = "duplicate tag";
				return -1;
			}
			seen[tag] = true;
			switch ((enum dmarc_tag)tag) {
			case TAG_V:
				if (vl != 6 || memcmp(v, "DMARC1", 6) != 0) {
					*error_r = "v= is not DMARC1";
					return -1;
				}
				break;
			case TAG_P:
				p_seen = true;
				if (parse_policy(v, vl, &rec->p) < 0)
					p_bad = true;
				break;
			case TAG_SP:
				if (parse_policy(v, vl, &rec->sp) < 0)
					rec->sp = DMARC_POLICY_UNSET;
				break;
			case TAG_PCT:
				if (parse_uint(v, vl, 100, &n) == 0)
					rec->pct = (unsigned int)n;
				break;
			case TAG_ADKIM:
			case TAG_ASPF: {
				enum dmarc_align *a = tag == TAG_ADKIM ?
				    &rec->adkim : &rec->aspf;

				if (vl == 1 && (v[0] == 's' || v[0] == 'S'))
					*a = DMARC_ALIGN_STRICT;
				break;
			}
			case TAG_RUA:
				copy_value(rec->rua, sizeof(rec->rua), v, vl);
				break;
			case TAG_RUF:
				copy_value(rec->ruf, sizeof(rec->ruf), v, vl);
				break;
			case TAG_FO:
				if (fo_valid(v, vl))
					copy_value(rec->fo, sizeof(rec->fo), v, vl);
				break;
			case TAG_RF:
				copy_value(rec->rf, sizeof(rec->rf), v, vl);
				if (rec->rf[0] == '\0')
					str_copy(rec->rf, sizeof(rec->rf), "afrf");
				break;
			case TAG_RI:
				if (parse_uint(v, vl, UINT32_MAX, &n) == 0)
					rec->ri = (uint32_t)n;
				break;
			case TAG_COUNT:
				break;
			}
		}
		ntags++;
		pos = semi < len ? semi + 1 : len;
	}
	if (ntags == 0) {
		*error_r = "empty record";
		return -1;
	}
	if (!p_seen || p_bad) {
		/* §6.6.3: a record without a valid p= but with a usable rua=
		 * is taken as p=none */
		if (strchr(rec->rua, ':') == NULL) {
			*error_r = p_seen ? "invalid p= policy" : "no p= policy";
			return -1;
		}
		rec->p = DMARC_POLICY_NONE;
	}
	return 0;
}

/* Does this TXT record claim to be DMARC ("v" WSP* "=" WSP* "DMARC1")? */
static bool
is_dmarc_record(const char *t, size_t len)
{
	size_t i = 0;

	while (i < len && is_wsp(t[i]))
		i++;
	if (i >= len || t[i] != 'v')
		return false;
	i++;
	while (i < len && is_wsp(t[i]))
		i++;
	if (i >= len || t[i] != '=')
		return false;
	i++;
	while (i < len && is_wsp(t[i]))
		i++;
	if (len - i < 6 || memcmp(t + i, "DMARC1", 6) != 0)
		return false;
	i += 6;
	return i == len || t[i] == ';' || is_wsp(t[i]);
}

static bool
name_valid(const char *name)
{
	size_t len = strlen(name), label = 0;

	if (len == 0 || len > 253 || name[len - 1] == '.')
		return false;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)name[i] : '.';

		if (c == '.') {
			if (label == 0 || label > 63)
				return false;
			label = 0;
		} else if (c <= 0x20 || c == 0x7f) {
			return false;
		} else {
			label++;
		}
	}
	return true;
}

bool
dmarc_aligned(const struct psl *psl, const char *a, const char *b,
    enum dmarc_align mode)
{
	char oa[MSGAUTH_DNS_NAME_MAX], ob[MSGAUTH_DNS_NAME_MAX];

	if (a == NULL || b == NULL || a[0] == '\0' || b[0] == '\0')
		return false;
	if (strcasecmp(a, b) == 0)
		return true;
	if (mode == DMARC_ALIGN_STRICT)
		return false;
	if (psl_org_domain(psl, a, oa, sizeof(oa)) < 0 ||
	    psl_org_domain(psl, b, ob, sizeof(ob)) < 0)
		return false;
	return strcmp(oa, ob) == 0;
}

/* 1 = record found (in *rec), 0 = none, 2 = several (no policy),
 * -1 = *res_r says why not. */
static int
fetch_policy(const struct msgauth_dns *dns, const char *domain,
    struct dmarc_record *rec, struct dmarc_outcome *out,
    enum dmarc_result *res_r)
{
	struct msgauth_dns_txt *txt = xcalloc(1, sizeof(*txt));
	char name[MSGAUTH_DNS_NAME_MAX + 8];
	enum msgauth_dns_rc rc;
	const char *found = NULL, *err;
	size_t found_len = 0, n = 0;
	int ret = 0;

	if ((size_t)snprintf(name, sizeof(name), "_dmarc.%s", domain) >= 254) {
		free(txt);
		return 0;	/* no such name can exist */
	}
	rc = dns->txt(dns->ctx, name, txt);
	if (rc == MSGAUTH_DNS_TEMPFAIL) {
		snprintf(out->problem, sizeof(out->problem),
		    "DNS failure looking up %.80s", name);
		*res_r = DMARC_RESULT_TEMPERROR;
		ret = -1;
		goto done;
	}
	for (size_t i = 0; rc == MSGAUTH_DNS_FOUND && i < txt->count; i++) {
		if (is_dmarc_record(txt->txt[i], txt->len[i])) {
			found = txt->txt[i];
			found_len = txt->len[i];
			n++;
		}
	}
	/* §6.6.3: several records mean no policy at all, and the search
	 * stops there (2); none at all sends it on to the org domain (0) */
	if (n != 1) {
		ret = n > 1 ? 2 : 0;
		goto done;
	}
	if (dmarc_record_parse(found, found_len, rec, &err) < 0) {
		snprintf(out->problem, sizeof(out->problem),
		    "DMARC record of %.80s: %s", domain, err);
		*res_r = DMARC_RESULT_PERMERROR;
		ret = -1;
		goto done;
	}
	ret = 1;
done:
	msgauth_dns_txt_free(txt);
	free(txt);
	return ret;
}

enum dmarc_result
dmarc_evaluate(const struct msgauth_dns *dns, const struct psl *psl,
    const struct dmarc_input *in, struct dmarc_outcome *out)
{
	char from[MSGAUTH_DNS_NAME_MAX];
	enum dmarc_result res = DMARC_RESULT_NONE;
	const struct dmarc_record *rec = &out->record;
	int found;

	memset(out, 0, sizeof(*out));
	if (in->from_domain == NULL ||
	    str_copy(from, sizeof(from), in->from_domain) < 0) {
		str_copy(out->problem, sizeof(out->problem), "bad From domain");
		goto done;
	}
	str_lower(from);
	if (from[0] != '\0' && from[strlen(from) - 1] == '.')
		from[strlen(from) - 1] = '\0';
	if (!name_valid(from) ||
	    psl_org_domain(psl, from, out->org_domain, sizeof(out->org_domain)) < 0) {
		str_copy(out->problem, sizeof(out->problem),
		    "From domain is malformed or a public suffix");
		goto done;
	}

	/* §6.6.3: the From domain, then its organizational domain */
	found = fetch_policy(dns, from, &out->record, out, &res);
	if (found == 1) {
		str_copy(out->policy_domain, sizeof(out->policy_domain), from);
	} else if (found == 0 && strcmp(from, out->org_domain) != 0) {
		found = fetch_policy(dns, out->org_domain, &out->record, out, &res);
		if (found == 1)
			str_copy(out->policy_domain, sizeof(out->policy_domain),
			    out->org_domain);
	}
	if (found != 1)
		goto done;	/* none, temperror or permerror */
	out->have_record = true;

	out->spf_aligned = in->spf_result == SPF_RESULT_PASS &&
	    dmarc_aligned(psl, in->spf_domain, from, rec->aspf);
	for (size_t i = 0; i < in->dkim_count && !out->dkim_aligned; i++) {
		if (in->dkim[i].pass && dmarc_aligned(psl, in->dkim[i].domain,
		    from, rec->adkim))
			out->dkim_aligned = true;
	}
	out->policy = strcmp(out->policy_domain, from) != 0 &&
	    rec->sp != DMARC_POLICY_UNSET ? rec->sp : rec->p;
	if (out->spf_aligned || out->dkim_aligned) {
		res = DMARC_RESULT_PASS;
		goto done;
	}
	res = DMARC_RESULT_FAIL;
	out->disposition = out->policy == DMARC_POLICY_REJECT ? DMARC_DISP_REJECT :
	    out->policy == DMARC_POLICY_QUARANTINE ? DMARC_DISP_QUARANTINE :
	    DMARC_DISP_NONE;
	if (rec->pct < 100 && out->disposition != DMARC_DISP_NONE) {
		unsigned int r = in->random_pct != NULL ?
		    in->random_pct(in->random_ctx) % 100 : 0;

		/* §6.3 pct: outside the sample, the next policy down */
		if (r >= rec->pct) {
			out->sampled_out = true;
			out->disposition = out->disposition == DMARC_DISP_REJECT ?
			    DMARC_DISP_QUARANTINE : DMARC_DISP_NONE;
		}
	}
done:
	out->result = res;
	return res;
}

/* ------------------------------------------------------------------ */
/* The From domain.                                                    */

#define FROM_FIELD_MAX 8192
#define COMMENT_DEPTH_MAX 16

/*
 * Reduces an address-list to its addr-specs, one per entry: quoted
 * strings and comments are dropped, "name <addr>" keeps addr, group
 * names ("team:") are dropped. Appends "addr\n" lines to out.
 */
static void
from_addresses(const char *v, size_t len, char *out, size_t outsize)
{
	char cur[FROM_FIELD_MAX];
	size_t n = 0, o = strlen(out);
	bool in_angle = false, had_angle = false;

	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? v[i] : ',';

		if (c == '"') {
			/* a quoted local part counts; a display name does not,
			 * and is followed by '<' */
			size_t start = i;

			for (i++; i < len && v[i] != '"'; i++) {
				if (v[i] == '\\' && i + 1 < len)
					i++;
			}
			if (n + (i - start + 1) < sizeof(cur)) {
				memcpy(cur + n, v + start, i < len ? i - start + 1 :
				    i - start);
				n += i < len ? i - start + 1 : i - start;
			}
			continue;
		}
		if (c == '(') {
			int depth = 0;

			for (; i < len; i++) {
				if (v[i] == '\\' && i + 1 < len) {
					i++;
					continue;
				}
				if (v[i] == '(' && ++depth > COMMENT_DEPTH_MAX)
					break;
				if (v[i] == ')' && --depth == 0)
					break;
			}
			continue;
		}
		if (c == '<') {
			in_angle = had_angle = true;
			n = 0;	/* what came before was a display name */
			continue;
		}
		if (c == '>') {
			in_angle = false;
			continue;
		}
		if (c == ':' && !in_angle) {
			n = 0;	/* "group:" */
			continue;
		}
		if ((c == ',' || c == ';') && !in_angle) {
			while (n > 0 && is_wsp(cur[n - 1]))
				n--;
			if (n > 0 && o + n + 2 < outsize) {
				size_t s = 0;

				while (s < n && is_wsp(cur[s]))
					s++;
				memcpy(out + o, cur + s, n - s);
				o += n - s;
				out[o++] = '\n';
				out[o] = '\0';
			}
			n = 0;
			had_angle = false;
			continue;
		}
		if (had_angle && !in_angle)
			continue;	/* junk after "<addr>" */
		if (n + 1 < sizeof(cur))
			cur[n++] = c;
	}
}

int
dmarc_from_domain(const char *hdr, size_t len, char *out, size_t outsize,
    const char **error_r)
{
	const char *from = NULL;
	size_t from_len = 0, pos = 0, nfrom = 0;
	char addrs[FROM_FIELD_MAX], *line, *save = NULL;
	bool found = false;

	while (pos < len) {
		size_t end = pos;

		if (hdr[pos] == '\n' || (hdr[pos] == '\r' && pos + 1 < len &&
		    hdr[pos + 1] == '\n'))
			break;	/* end of the header */
		do {
			const char *nl = memchr(hdr + end, '\n', len - end);

			end = nl != NULL ? (size_t)(nl - hdr) + 1 : len;
		} while (end < len && (hdr[end] == ' ' || hdr[end] == '\t'));
		if (end - pos > 5 && strncasecmp(hdr + pos, "from", 4) == 0) {
			size_t k = pos + 4;

			while (k < end && (hdr[k] == ' ' || hdr[k] == '\t'))
				k++;
			if (k < end && hdr[k] == ':') {
				nfrom++;
				from = hdr + k + 1;
				from_len = end - k - 1;
			}
		}
		pos = end;
	}
	if (nfrom == 0) {
		*error_r = "no From header field";
		return -1;
	}
	if (nfrom > 1) {
		*error_r = "more than one From header field";
		return -1;
	}
	if (from_len >= FROM_FIELD_MAX) {
		*error_r = "From header field too long";
		return -1;
	}
	addrs[0] = '\0';
	from_addresses(from, from_len, addrs, sizeof(addrs));
	for (line = strtok_r(addrs, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char *at = strrchr(line, '@');
		char dom[MSGAUTH_DNS_NAME_MAX];
		size_t dl;

		if (at == NULL || at[1] == '\0') {
			*error_r = "From address without a domain";
			return -1;
		}
		if (str_copy(dom, sizeof(dom), at + 1) < 0) {
			*error_r = "From domain too long";
			return -1;
		}
		/* white space and a final dot are no part of the domain */
		dl = 0;
		for (size_t i = 0; dom[i] != '\0'; i++) {
			if (!is_wsp(dom[i]))
				dom[dl++] = (char)tolower((unsigned char)dom[i]);
		}
		dom[dl] = '\0';
		if (dl > 0 && dom[dl - 1] == '.')
			dom[--dl] = '\0';
		if (!name_valid(dom)) {
			*error_r = "malformed From domain";
			return -1;
		}
		if (!found) {
			if (str_copy(out, outsize, dom) < 0) {
				*error_r = "From domain too long";
				return -1;
			}
			found = true;
		} else if (strcmp(out, dom) != 0) {
			*error_r = "From addresses in more than one domain";
			return -1;
		}
	}
	if (!found) {
		*error_r = "no address in the From header field";
		return -1;
	}
	return 0;
}
