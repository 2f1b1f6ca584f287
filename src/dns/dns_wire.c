/*
 * Wire-format rdata parsers. Every byte is read through a bufreader, so a
 * hostile or broken answer can only make a parser fail.
 */
#include "dns/dns.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xalloc.h"

/* Reads one uncompressed name at the cursor into out (presentation form). */
static int
read_name(struct bufreader *r, struct buf *out)
{
	size_t wire_len = 0;

	for (;;) {
		uint8_t label_len;
		const unsigned char *label;

		if (bufreader_get_u8(r, &label_len) < 0)
			return -1;
		wire_len += 1 + (size_t)label_len;
		if (wire_len > 255)
			return -1;
		if (label_len == 0)
			return 0;
		/* 0xC0 = compression pointer, 0x40/0x80 = obsolete types. */
		if (label_len > 63)
			return -1;
		if (bufreader_get_bytes(r, label_len, &label) < 0)
			return -1;
		if (out->len > 0 && buf_append_c(out, '.') < 0)
			return -1;
		for (size_t i = 0; i < label_len; i++) {
			unsigned char c = label[i];
			int ret;

			if (c == '.' || c == '\\')
				ret = buf_printf(out, "\\%c", c);
			else if (c <= 0x20 || c >= 0x7f)
				ret = buf_printf(out, "\\%03u", c);
			else
				ret = buf_append_c(out, (char)c);
			if (ret < 0)
				return -1;
		}
	}
}

int
dns_parse_name(const void *rdata, size_t len, char **name_r)
{
	struct bufreader r;
	struct buf out;

	bufreader_init(&r, rdata, len);
	buf_init(&out, DNS_NAME_TEXT_MAX);
	if (read_name(&r, &out) < 0 || bufreader_left(&r) != 0) {
		buf_free(&out);
		return -1;
	}
	buf_append(&out, "", 0);	/* root: make data non-NULL */
	*name_r = buf_steal(&out);
	return 0;
}

int
dns_parse_mx(const void *rdata, size_t len, struct dns_mx *mx_r)
{
	struct bufreader r;
	struct buf out;
	uint16_t pref;

	bufreader_init(&r, rdata, len);
	buf_init(&out, DNS_NAME_TEXT_MAX);
	if (bufreader_get_u16be(&r, &pref) < 0 || read_name(&r, &out) < 0 ||
	    bufreader_left(&r) != 0) {
		buf_free(&out);
		return -1;
	}
	buf_append(&out, "", 0);
	mx_r->preference = pref;
	mx_r->host = buf_steal(&out);
	return 0;
}

int
dns_parse_txt(const void *rdata, size_t len, struct dns_txt *txt_r)
{
	struct bufreader r;
	struct buf out;

	/*
	 * RFC 7208 3.3 and RFC 6376 3.6.2.2: the character-strings of one
	 * record are concatenated with nothing between them.
	 */
	bufreader_init(&r, rdata, len);
	buf_init(&out, DNS_TXT_MAX);
	if (len == 0) {
		buf_free(&out);
		return -1;
	}
	while (bufreader_left(&r) > 0) {
		uint8_t slen;
		const unsigned char *s;

		if (bufreader_get_u8(&r, &slen) < 0 ||
		    bufreader_get_bytes(&r, slen, &s) < 0 ||
		    buf_append(&out, s, slen) < 0) {
			buf_free(&out);
			return -1;
		}
	}
	buf_append(&out, "", 0);
	txt_r->len = out.len;
	txt_r->data = buf_steal(&out);
	return 0;
}

int
dns_parse_a(const void *rdata, size_t len, struct dns_addr *addr_r)
{
	struct bufreader r;
	const unsigned char *p;

	bufreader_init(&r, rdata, len);
	if (len != 4 || bufreader_get_bytes(&r, 4, &p) < 0)
		return -1;
	memset(addr_r, 0, sizeof(*addr_r));
	addr_r->family = AF_INET;
	memcpy(&addr_r->u.v4, p, 4);
	return 0;
}

int
dns_parse_aaaa(const void *rdata, size_t len, struct dns_addr *addr_r)
{
	struct bufreader r;
	const unsigned char *p;

	bufreader_init(&r, rdata, len);
	if (len != 16 || bufreader_get_bytes(&r, 16, &p) < 0)
		return -1;
	memset(addr_r, 0, sizeof(*addr_r));
	addr_r->family = AF_INET6;
	memcpy(&addr_r->u.v6, p, 16);
	return 0;
}

static int
mx_cmp(const void *a, const void *b)
{
	const struct dns_mx *x = a, *y = b;

	return (int)x->preference - (int)y->preference;
}

/* Stable sort by preference: insertion sort (at most DNS_MAX_RECORDS). */
static void
mx_sort(struct dns_mx *mx, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct dns_mx cur = mx[i];
		size_t j = i;

		while (j > 0 && mx_cmp(&mx[j - 1], &cur) > 0) {
			mx[j] = mx[j - 1];
			j--;
		}
		mx[j] = cur;
	}
}

static void
result_clear_records(struct dns_result *res)
{
	for (size_t i = 0; i < res->count; i++) {
		if (res->mx != NULL)
			free(res->mx[i].host);
		if (res->txt != NULL)
			free(res->txt[i].data);
		if (res->names != NULL)
			free(res->names[i]);
	}
	x_free(&res->mx);
	x_free(&res->addrs);
	x_free(&res->txt);
	x_free(&res->names);
	res->count = 0;
}

int
dns_result_fill(struct dns_result *res, char *const *rdata, const int *lens,
    size_t n)
{
	if (n > DNS_MAX_RECORDS)
		n = DNS_MAX_RECORDS;
	result_clear_records(res);
	switch (res->type) {
	case DNS_TYPE_MX:
		res->mx = xcalloc(n + 1, sizeof(*res->mx));
		break;
	case DNS_TYPE_A:
	case DNS_TYPE_AAAA:
		res->addrs = xcalloc(n + 1, sizeof(*res->addrs));
		break;
	case DNS_TYPE_TXT:
		res->txt = xcalloc(n + 1, sizeof(*res->txt));
		break;
	case DNS_TYPE_PTR:
		res->names = xcalloc(n + 1, sizeof(*res->names));
		break;
	default:
		panic("dns_result_fill: type %d", (int)res->type);
	}
	for (size_t i = 0; i < n; i++) {
		size_t len = lens[i] < 0 ? 0 : (size_t)lens[i];
		int ret = -1;

		switch (res->type) {
		case DNS_TYPE_MX:
			ret = dns_parse_mx(rdata[i], len, &res->mx[i]);
			break;
		case DNS_TYPE_A:
			ret = dns_parse_a(rdata[i], len, &res->addrs[i]);
			break;
		case DNS_TYPE_AAAA:
			ret = dns_parse_aaaa(rdata[i], len, &res->addrs[i]);
			break;
		case DNS_TYPE_TXT:
			ret = dns_parse_txt(rdata[i], len, &res->txt[i]);
			break;
		case DNS_TYPE_PTR:
			ret = dns_parse_name(rdata[i], len, &res->names[i]);
			break;
		}
		if (ret < 0) {
			/* Parsed ones so far are freed; count covers them. */
			res->count = i;
			result_clear_records(res);
			res->status = DNS_TEMPFAIL;
			res->error = "malformed record in answer";
			return -1;
		}
		res->count = i + 1;
	}
	if (res->type == DNS_TYPE_MX)
		mx_sort(res->mx, res->count);
	return 0;
}

void
dns_result_free(struct dns_result **resultp)
{
	struct dns_result *res = *resultp;

	if (res == NULL)
		return;
	result_clear_records(res);
	free(res->name);
	free(res);
	*resultp = NULL;
}

const char *
dns_status_name(enum dns_status status)
{
	switch (status) {
	case DNS_FOUND:
		return "found";
	case DNS_NXDOMAIN:
		return "nxdomain";
	case DNS_NODATA:
		return "nodata";
	case DNS_TEMPFAIL:
		return "tempfail";
	}
	return "?";
}

void
dns_ptr_name(const struct dns_addr *addr, char *out, size_t outsize)
{
	static const char hex[] = "0123456789abcdef";
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	if (addr->family == AF_INET) {
		const unsigned char *p = (const unsigned char *)&addr->u.v4;

		buf_printf(&b, "%u.%u.%u.%u.in-addr.arpa", p[3], p[2], p[1], p[0]);
	} else {
		const unsigned char *p = (const unsigned char *)&addr->u.v6;

		for (int i = 15; i >= 0; i--)
			buf_printf(&b, "%c.%c.", hex[p[i] & 0xf], hex[p[i] >> 4]);
		buf_append_str(&b, "ip6.arpa");
	}
	if (outsize > 0) {
		size_t n = b.len < outsize - 1 ? b.len : outsize - 1;

		memcpy(out, b.data, n);
		out[n] = '\0';
	}
	buf_free(&b);
}
