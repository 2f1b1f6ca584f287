/* The msgauth_dns table on the libunbound resolver. */
#include "msgauth/dns_resolver.h"

#include "lib/str.h"
#include "lib/xalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
msgauth_dns_escape_name(const char *name, char *out, size_t outsize)
{
	size_t n = 0;

	for (const char *p = name; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (isalnum(c) || c == '-' || c == '_' || c == '.') {
			if (n + 1 >= outsize)
				return -1;
			out[n++] = (char)c;
		} else {
			if (n + 4 >= outsize)
				return -1;
			snprintf(out + n, outsize - n, "\\%03u", c);
			n += 4;
		}
	}
	if (n >= outsize)
		return -1;
	out[n] = '\0';
	return 0;
}

static enum msgauth_dns_rc
status(const struct dns_result *res)
{
	switch (res->status) {
	case DNS_FOUND: return MSGAUTH_DNS_FOUND;
	case DNS_NXDOMAIN: return MSGAUTH_DNS_NXDOMAIN;
	case DNS_NODATA: return MSGAUTH_DNS_NODATA;
	case DNS_TEMPFAIL: return MSGAUTH_DNS_TEMPFAIL;
	}
	return MSGAUTH_DNS_TEMPFAIL;
}

enum msgauth_dns_rc
msgauth_dns_convert_txt(const struct dns_result *res, struct msgauth_dns_txt *r)
{
	enum msgauth_dns_rc rc = status(res);

	if (rc != MSGAUTH_DNS_FOUND)
		return rc;
	for (size_t i = 0; i < res->count; i++) {
		if (res->txt[i].len > MSGAUTH_DNS_TXT_MAX)
			continue;
		if (r->count == MSGAUTH_DNS_MAX_RR) {
			r->truncated = true;
			break;
		}
		r->txt[r->count] = xmalloc(res->txt[i].len + 1);
		memcpy(r->txt[r->count], res->txt[i].data, res->txt[i].len);
		r->txt[r->count][res->txt[i].len] = '\0';
		r->len[r->count] = res->txt[i].len;
		r->count++;
	}
	/* only over-long records: as good as none */
	return r->count > 0 ? MSGAUTH_DNS_FOUND : MSGAUTH_DNS_NODATA;
}

enum msgauth_dns_rc
msgauth_dns_convert_addrs(const struct dns_result *res,
    struct msgauth_dns_addrs *r)
{
	enum msgauth_dns_rc rc = status(res);

	if (rc != MSGAUTH_DNS_FOUND)
		return rc;
	for (size_t i = 0; i < res->count; i++) {
		struct msgauth_ip *ip;

		if (r->count == MSGAUTH_DNS_MAX_RR) {
			r->truncated = true;
			break;
		}
		ip = &r->ip[r->count];
		memset(ip, 0, sizeof(*ip));
		if (res->addrs[i].family == AF_INET) {
			ip->family = 4;
			memcpy(ip->addr, &res->addrs[i].u.v4, 4);
		} else if (res->addrs[i].family == AF_INET6) {
			ip->family = 6;
			memcpy(ip->addr, &res->addrs[i].u.v6, 16);
		} else {
			continue;
		}
		r->count++;
	}
	return r->count > 0 ? MSGAUTH_DNS_FOUND : MSGAUTH_DNS_NODATA;
}

enum msgauth_dns_rc
msgauth_dns_convert_names(const struct dns_result *res,
    struct msgauth_dns_names *r)
{
	enum msgauth_dns_rc rc = status(res);

	if (rc != MSGAUTH_DNS_FOUND)
		return rc;
	for (size_t i = 0; i < res->count; i++) {
		const char *name = res->type == DNS_TYPE_MX ? res->mx[i].host :
		    res->names[i];

		if (r->count == MSGAUTH_DNS_MAX_RR) {
			r->truncated = true;
			break;
		}
		if (name == NULL || str_copy(r->name[r->count],
		    MSGAUTH_DNS_NAME_MAX, name) < 0)
			continue;	/* longer than any real name */
		r->pref[r->count] = res->type == DNS_TYPE_MX ?
		    res->mx[i].preference : 0;
		r->count++;
	}
	return r->count > 0 ? MSGAUTH_DNS_FOUND : MSGAUTH_DNS_NODATA;
}

static struct dns_result *
lookup(void *ctx, const char *name, enum dns_type type)
{
	char esc[1024];

	if (msgauth_dns_escape_name(name, esc, sizeof(esc)) < 0)
		str_copy(esc, sizeof(esc), "invalid..name");
	return dns_lookup_sync(ctx, esc, type);
}

static enum msgauth_dns_rc
r_txt(void *ctx, const char *name, struct msgauth_dns_txt *r)
{
	struct dns_result *res = lookup(ctx, name, DNS_TYPE_TXT);
	enum msgauth_dns_rc rc = msgauth_dns_convert_txt(res, r);

	dns_result_free(&res);
	return rc;
}

static enum msgauth_dns_rc
r_a(void *ctx, const char *name, struct msgauth_dns_addrs *r)
{
	struct dns_result *res = lookup(ctx, name, DNS_TYPE_A);
	enum msgauth_dns_rc rc = msgauth_dns_convert_addrs(res, r);

	dns_result_free(&res);
	return rc;
}

static enum msgauth_dns_rc
r_aaaa(void *ctx, const char *name, struct msgauth_dns_addrs *r)
{
	struct dns_result *res = lookup(ctx, name, DNS_TYPE_AAAA);
	enum msgauth_dns_rc rc = msgauth_dns_convert_addrs(res, r);

	dns_result_free(&res);
	return rc;
}

static enum msgauth_dns_rc
r_mx(void *ctx, const char *name, struct msgauth_dns_names *r)
{
	struct dns_result *res = lookup(ctx, name, DNS_TYPE_MX);
	enum msgauth_dns_rc rc = msgauth_dns_convert_names(res, r);

	dns_result_free(&res);
	return rc;
}

static enum msgauth_dns_rc
r_ptr(void *ctx, const struct msgauth_ip *ip, struct msgauth_dns_names *r)
{
	struct dns_addr a;
	char name[128];
	struct dns_result *res;
	enum msgauth_dns_rc rc;

	memset(&a, 0, sizeof(a));
	if (ip->family == 4) {
		a.family = AF_INET;
		memcpy(&a.u.v4, ip->addr, 4);
	} else {
		a.family = AF_INET6;
		memcpy(&a.u.v6, ip->addr, 16);
	}
	dns_ptr_name(&a, name, sizeof(name));
	res = dns_lookup_sync(ctx, name, DNS_TYPE_PTR);
	rc = msgauth_dns_convert_names(res, r);
	dns_result_free(&res);
	return rc;
}

void
msgauth_dns_resolver_init(struct msgauth_dns *dns, struct dns_resolver *resolver)
{
	dns->ctx = resolver;
	dns->txt = r_txt;
	dns->a = r_a;
	dns->aaaa = r_aaaa;
	dns->mx = r_mx;
	dns->ptr = r_ptr;
}
