/*
 * DKIM verification: the DKIM-Signature and key record parsers on the
 * input, and dkim_verify() on the input as a message whose selectors all
 * find one fixed Ed25519 key record.
 */
#include "msgauth/dkim_verify.h"
#include "msgauth/test_fake_dns.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct fake_rr zone[] = {
	{ "s._domainkey.example.com", "TXT",
	    "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=" },
	{ "r._domainkey.example.com", "TXT", "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEB" },
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dkim_sig sig;
	struct dkim_key_record key;
	struct dkim_verify_result r;
	struct fake_zone z = { zone, 2, NULL, 0, 0 };
	struct msgauth_dns dns;
	const char *err;

	if (size > 65536)
		return 0;
	if (dkim_sig_parse((const char *)data, size, &sig, &err) == 0)
		dkim_sig_free(&sig);
	if (dkim_key_record_parse((const char *)data, size, &key, &err) == 0)
		dkim_key_record_free(&key);
	dkim_key_record_free(&key);
	fake_dns_init(&dns, &z);
	dkim_verify(&dns, (const char *)data, size, 1700000000, &r);
	return 0;
}
