/*
 * SPF: the record parser, macro expansion and check_host() on a small
 * static zone. Input: "<record>\n<macro-string>"; the record also becomes
 * the TXT record of the checked domain.
 */
#include "msgauth/spf.h"
#include "msgauth/test_fake_dns.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const struct fake_rr zone[] = {
	{ "example.com", "A", "192.0.2.10" },
	{ "example.com", "AAAA", "2001:db8::10" },
	{ "example.com", "MX", "10 mx.example.com" },
	{ "mx.example.com", "A", "192.0.2.3" },
	{ "3.2.0.192.in-addr.arpa", "PTR", "mx.example.com" },
	{ "inc.example.com", "TXT", "v=spf1 include:example.com ip4:192.0.2.0/24 -all" },
	{ "exp.example.com", "TXT", "%{i} %{c} %{r} %{t} %{p} %{s} denied" },
	{ "temp.example.com", "TEMPFAIL", "" },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s, *nl, *out = NULL;
	const char *macro = "", *err;
	struct spf_record *rec;
	struct spf_request req = { .sender = "joe@example.com",
	    .helo = "mx.example.com", .receiver = "mx.test", .now = 1 };
	struct fake_rr extra[1];
	struct fake_zone z = { zone, sizeof(zone) / sizeof(zone[0]), extra, 1, 0 };
	struct msgauth_dns dns;
	struct spf_outcome o;

	if (size > 8192)
		return 0;
	s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	nl = strchr(s, '\n');
	if (nl != NULL) {
		*nl = '\0';
		macro = nl + 1;
	}
	if (spf_record_parse(s, strlen(s), &rec, &err) == 0)
		spf_record_free(&rec);

	extra[0].name = "example.com";
	extra[0].type = "TXT";
	extra[0].data = s;
	fake_dns_init(&dns, &z);
	msgauth_ip_parse(size % 2 == 0 ? "192.0.2.3" : "2001:db8::3", &req.ip);
	if (spf_macro_expand(macro, &req, "example.com", req.sender, size % 3 == 0,
	    size % 5 == 0, &dns, &out, &err) == 0)
		free(out);

	spf_check_host(&dns, &req, "example.com", req.sender, &o);
	free(spf_received_spf(&req, &o));
	spf_outcome_free(&o);
	free(s);
	return 0;
}
