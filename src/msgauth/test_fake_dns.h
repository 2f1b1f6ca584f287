/*
 * A static DNS zone behind struct msgauth_dns, for unit tests and fuzz
 * targets. Records are { name, type, data } rows:
 *   TXT  data is the record text ("\\0" stands for a NUL byte)
 *   A / AAAA  data is an address
 *   MX   data is "<pref> <name>"
 *   PTR  name is the reverse name ("3.2.0.192.in-addr.arpa")
 *   TEMPFAIL  any lookup of this name fails temporarily
 * A name with rows of other types only answers NODATA; an unknown name
 * NXDOMAIN. Two tables are searched (base, then the test's own rows).
 */
#ifndef TEGAMI_MSGAUTH_TEST_FAKE_DNS_H
#define TEGAMI_MSGAUTH_TEST_FAKE_DNS_H

#include "lib/str.h"
#include "lib/xalloc.h"
#include "msgauth/dns_iface.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct fake_rr {
	const char *name;
	const char *type;
	const char *data;
};

struct fake_zone {
	const struct fake_rr *base;
	size_t base_count;
	const struct fake_rr *extra;
	size_t extra_count;
	unsigned int queries;
};

/* Calls fn(ctx-arg, data) for every matching row; returns the outcome. */
static inline enum msgauth_dns_rc
fake_lookup(struct fake_zone *z, const char *name, const char *type,
    void (*fn)(void *, const char *), void *arg)
{
	bool exists = false, found = false;
	size_t nlen = strlen(name);

	z->queries++;
	if (nlen > 0 && name[nlen - 1] == '.')
		nlen--;
	for (int t = 0; t < 2; t++) {
		const struct fake_rr *rr = t == 0 ? z->base : z->extra;
		size_t n = t == 0 ? z->base_count : z->extra_count;

		for (size_t i = 0; i < n; i++) {
			if (strlen(rr[i].name) != nlen ||
			    strncasecmp(rr[i].name, name, nlen) != 0)
				continue;
			exists = true;
			if (strcmp(rr[i].type, "TEMPFAIL") == 0)
				return MSGAUTH_DNS_TEMPFAIL;
			if (strcmp(rr[i].type, type) == 0) {
				found = true;
				fn(arg, rr[i].data);
			}
		}
	}
	if (found)
		return MSGAUTH_DNS_FOUND;
	return exists ? MSGAUTH_DNS_NODATA : MSGAUTH_DNS_NXDOMAIN;
}

static inline void
fake_add_txt(void *arg, const char *data)
{
	struct msgauth_dns_txt *r = arg;

	if (r->count == MSGAUTH_DNS_MAX_RR) {
		r->truncated = true;
		return;
	}
	/* the two characters "\\0" stand for a NUL byte in the record */
	char *t = xstrdup(data);
	size_t n = 0;

	for (size_t i = 0; data[i] != '\0'; i++) {
		if (data[i] == '\\' && data[i + 1] == '0') {
			t[n++] = '\0';
			i++;
		} else {
			t[n++] = data[i];
		}
	}
	t[n] = '\0';
	r->len[r->count] = n;
	r->txt[r->count++] = t;
}

static inline void
fake_add_addr(void *arg, const char *data)
{
	struct msgauth_dns_addrs *r = arg;

	if (r->count == MSGAUTH_DNS_MAX_RR) {
		r->truncated = true;
		return;
	}
	if (msgauth_ip_parse(data, &r->ip[r->count]) == 0)
		r->count++;
}

static inline void
fake_add_name(void *arg, const char *data)
{
	struct msgauth_dns_names *r = arg;
	const char *name = data;
	unsigned int pref = 0;

	if (r->count == MSGAUTH_DNS_MAX_RR) {
		r->truncated = true;
		return;
	}
	/* "<pref> <name>"; a name that merely starts with a digit has no space */
	if (data[0] >= '0' && data[0] <= '9' && strchr(data, ' ') != NULL) {
		pref = (unsigned int)strtoul(data, NULL, 10);
		name = strchr(data, ' ') + 1;
	}
	r->pref[r->count] = (uint16_t)pref;
	str_copy(r->name[r->count++], MSGAUTH_DNS_NAME_MAX, name);
}

static inline enum msgauth_dns_rc
fake_txt(void *ctx, const char *name, struct msgauth_dns_txt *r)
{
	enum msgauth_dns_rc rc = fake_lookup(ctx, name, "TXT", fake_add_txt, r);

	if (rc != MSGAUTH_DNS_FOUND)
		msgauth_dns_txt_free(r);
	return rc;
}

static inline enum msgauth_dns_rc
fake_a(void *ctx, const char *name, struct msgauth_dns_addrs *r)
{
	return fake_lookup(ctx, name, "A", fake_add_addr, r);
}

static inline enum msgauth_dns_rc
fake_aaaa(void *ctx, const char *name, struct msgauth_dns_addrs *r)
{
	return fake_lookup(ctx, name, "AAAA", fake_add_addr, r);
}

static inline enum msgauth_dns_rc
fake_mx(void *ctx, const char *name, struct msgauth_dns_names *r)
{
	return fake_lookup(ctx, name, "MX", fake_add_name, r);
}

static inline enum msgauth_dns_rc
fake_ptr(void *ctx, const struct msgauth_ip *ip, struct msgauth_dns_names *r)
{
	char name[128];
	size_t off = 0;

	if (ip->family == 4) {
		snprintf(name, sizeof(name), "%u.%u.%u.%u.in-addr.arpa",
		    ip->addr[3], ip->addr[2], ip->addr[1], ip->addr[0]);
	} else {
		for (int i = 15; i >= 0; i--)
			off += (size_t)snprintf(name + off, sizeof(name) - off,
			    "%x.%x.", ip->addr[i] & 15, ip->addr[i] >> 4);
		str_copy(name + off, sizeof(name) - off, "ip6.arpa");
	}
	return fake_lookup(ctx, name, "PTR", fake_add_name, r);
}

static inline void
fake_dns_init(struct msgauth_dns *dns, struct fake_zone *z)
{
	dns->ctx = z;
	dns->txt = fake_txt;
	dns->a = fake_a;
	dns->aaaa = fake_aaaa;
	dns->mx = fake_mx;
	dns->ptr = fake_ptr;
}

#endif
