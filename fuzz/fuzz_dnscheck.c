/*
 * dnscheck: every check of `tegami check` with published records from the
 * input. Input: lines (LF-separated) that become, in order, the TXT record
 * of example.com, of _dmarc.example.com, of mail._domainkey.example.com,
 * the MX of example.com ("<pref> <name>"), the PTR of the server's
 * address, and an A record of the host name; a line "\0" in a record
 * stands for a NUL byte. The report is printed to memory.
 */
#include "cli/dnscheck.h"
#include "msgauth/test_fake_dns.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* RFC 8463's example key: a valid record to compare against. */
#define KEY "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="

static struct psl *psl;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
address_fn(void *ctx, const char *address, bool *local_r)
{
	*local_r = strstr(address, "@example.com") != NULL;
	return strncmp(address, "postmaster@", 11) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "example.com", "_dmarc.example.com",
	    "mail._domainkey.example.com", "example.com",
	    "10.2.0.192.in-addr.arpa", "mx.example.com" };
	static const char *const types[] = { "TXT", "TXT", "TXT", "MX", "PTR",
	    "A" };
	struct fake_rr rows[8];
	struct fake_zone z = { NULL, 0, rows, 0, 0 };
	struct dnscheck_dkim_key key = { "mail", "keys/example.com/mail.private",
	    KEY, "Ed25519" };
	struct dnscheck_report *rep;
	struct dnscheck_host host;
	struct msgauth_dns dns;
	char *s, *p, *out = NULL, *perr, **addrs;
	const char *why;
	size_t outlen = 0, n = 0;
	FILE *f;

	if (size > 16384)
		return 0;
	if (psl == NULL && psl_parse("com\n*\n", 6, &psl, &perr) < 0)
		abort();
	s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	for (p = s; n < 6; n++) {
		char *nl = strchr(p, '\n');

		rows[n] = (struct fake_rr){ names[n], types[n], p };
		if (nl == NULL) {
			n++;
			break;
		}
		*nl = '\0';
		p = nl + 1;
	}
	rows[n++] = (struct fake_rr){ "mx.example.com", "AAAA", "2001:db8::10" };
	rows[n++] = (struct fake_rr){ "spf.example.com", "TXT", s };
	z.extra_count = n;

	/* the parsers on their own */
	(void)dnscheck_dkim_compare(KEY, rows[0].data, strlen(rows[0].data), &why);
	addrs = dnscheck_mailto_addresses(rows[0].data);
	str_array_free(addrs);
	free(dnscheck_spf_with("v=spf1", 6, rows[0].data));
	free(dnscheck_txt_quoted(rows[0].data));

	fake_dns_init(&dns, &z);
	memset(&host, 0, sizeof(host));
	host.name = "mx.example.com";
	msgauth_ip_parse("192.0.2.10", &host.conf_v4);
	if (size % 2 == 0)
		msgauth_ip_parse("2001:db8::10", &host.conf_v6);
	rep = dnscheck_report_new();
	dnscheck_host(rep, &dns, &host);
	dnscheck_ptr(rep, &dns, &host);
	dnscheck_mx(rep, &dns, "example.com", &host);
	dnscheck_spf(rep, &dns, "example.com", &host, size % 3 == 0);
	dnscheck_dkim(rep, &dns, "example.com", &key);
	dnscheck_dmarc(rep, &dns, psl, size % 5 == 0 ? "sub.example.com" :
	    "example.com", address_fn, NULL);
	f = open_memstream(&out, &outlen);
	if (f != NULL) {
		dnscheck_print(rep, f, size % 7 == 0);
		fclose(f);
	}
	free(out);
	dnscheck_report_free(&rep);
	dnscheck_host_free(&host);
	free(s);
	return 0;
}
