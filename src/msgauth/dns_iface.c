/* msgauth_dns helpers: result freeing and IP addresses. */
#include "msgauth/dns_iface.h"

#include "lib/str.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

void
msgauth_dns_txt_free(struct msgauth_dns_txt *r)
{
	for (size_t i = 0; i < r->count && i < MSGAUTH_DNS_MAX_RR; i++)
		free(r->txt[i]);
	memset(r, 0, sizeof(*r));
}

/* Dotted quad, each part 0-255 without leading zeros (RFC 7208 qnum). */
static int
parse_ip4(const char *s, uint8_t out[4])
{
	for (int part = 0; part < 4; part++) {
		unsigned int v = 0;
		int digits = 0;

		if (*s == '0' && s[1] >= '0' && s[1] <= '9')
			return -1;
		while (*s >= '0' && *s <= '9') {
			v = v * 10 + (unsigned int)(*s - '0');
			if (++digits > 3 || v > 255)
				return -1;
			s++;
		}
		if (digits == 0)
			return -1;
		out[part] = (uint8_t)v;
		if (part < 3 && *s++ != '.')
			return -1;
	}
	return *s == '\0' ? 0 : -1;
}

int
msgauth_ip_parse(const char *s, struct msgauth_ip *ip_r)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	struct in6_addr a6;

	memset(ip_r, 0, sizeof(*ip_r));
	if (parse_ip4(s, ip_r->addr) == 0) {
		ip_r->family = 4;
		return 0;
	}
	if (strchr(s, ':') == NULL || inet_pton(AF_INET6, s, &a6) != 1)
		return -1;
	if (memcmp(a6.s6_addr, mapped, 12) == 0) {
		ip_r->family = 4;
		memcpy(ip_r->addr, a6.s6_addr + 12, 4);
		return 0;
	}
	ip_r->family = 6;
	memcpy(ip_r->addr, a6.s6_addr, 16);
	return 0;
}

void
msgauth_ip_format(const struct msgauth_ip *ip, char *out, size_t outsize)
{
	if (inet_ntop(ip->family == 4 ? AF_INET : AF_INET6, ip->addr, out,
	    (socklen_t)outsize) == NULL)
		str_copy(out, outsize, "?");
}

bool
msgauth_ip_equal(const struct msgauth_ip *a, const struct msgauth_ip *b)
{
	return a->family == b->family &&
	    memcmp(a->addr, b->addr, a->family == 4 ? 4 : 16) == 0;
}

bool
msgauth_ip_match_prefix(const struct msgauth_ip *a, const struct msgauth_ip *b,
    unsigned int bits)
{
	unsigned int max = a->family == 4 ? 32 : 128;

	if (a->family != b->family)
		return false;
	if (bits > max)
		bits = max;
	for (unsigned int i = 0; i < bits / 8; i++) {
		if (a->addr[i] != b->addr[i])
			return false;
	}
	if (bits % 8 != 0) {
		uint8_t mask = (uint8_t)(0xff << (8 - bits % 8));

		if ((a->addr[bits / 8] & mask) != (b->addr[bits / 8] & mask))
			return false;
	}
	return true;
}
