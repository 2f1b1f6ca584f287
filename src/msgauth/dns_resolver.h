/*
 * msgauth/dns_resolver: the msgauth_dns table over dns/'s libunbound
 * resolver (dns_lookup_sync), so the evaluators (SPF, DKIM, DMARC, DNSBL)
 * can run on pool threads against real DNS while their tests keep a
 * static zone. Thread-safe as dns_lookup_sync is.
 */
#ifndef TEGAMI_MSGAUTH_DNS_RESOLVER_H
#define TEGAMI_MSGAUTH_DNS_RESOLVER_H

#include "dns/dns.h"
#include "msgauth/dns_iface.h"

#include <stddef.h>

/* Fills the table; resolver must outlive it. */
void msgauth_dns_resolver_init(struct msgauth_dns *dns,
    struct dns_resolver *resolver);

/* The conversions, apart for tests. Each returns the outcome. */
enum msgauth_dns_rc msgauth_dns_convert_txt(const struct dns_result *res,
    struct msgauth_dns_txt *r);
enum msgauth_dns_rc msgauth_dns_convert_addrs(const struct dns_result *res,
    struct msgauth_dns_addrs *r);
enum msgauth_dns_rc msgauth_dns_convert_names(const struct dns_result *res,
    struct msgauth_dns_names *r);
/* A name as libunbound's presentation format wants it: bytes other than
 * letters, digits, '-', '_' and the '.' between labels become \DDD.
 * -1 if it does not fit. */
int msgauth_dns_escape_name(const char *name, char *out, size_t outsize);

#endif
