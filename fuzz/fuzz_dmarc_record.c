/*
 * DMARC: the record parser, the From-domain extractor (the input read as
 * a header block), and the whole evaluation with the input as the
 * published record of example.com (and a tiny built-in suffix list).
 */
#include "msgauth/dmarc.h"
#include "msgauth/test_fake_dns.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static struct psl *psl;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned int
rnd(void *ctx)
{
	return (unsigned int)(uintptr_t)ctx;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char list[] = "com\n*.ck\n!www.ck\nco.uk\n";
	struct dmarc_record rec;
	const char *err;
	char *s, *perr;
	struct fake_rr extra[1];
	struct fake_zone z = { NULL, 0, extra, 1, 0 };
	struct msgauth_dns dns;
	struct dmarc_dkim_sig sig = { "mail.example.com", true };
	struct dmarc_input in = { .from_domain = "sub.example.com",
	    .spf_result = SPF_RESULT_PASS, .spf_domain = "other.example.com",
	    .dkim = &sig, .dkim_count = size % 2, .random_pct = rnd,
	    .random_ctx = (void *)(uintptr_t)(size % 100) };
	struct dmarc_outcome out;

	if (psl == NULL && psl_parse(list, strlen(list), &psl, &perr) < 0)
		abort();
	if (size > 8192)
		return 0;
	s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	dmarc_record_parse(s, size, &rec, &err);
	{
		char dom[256];

		/* the same bytes as a header block, for the From domain */
		dmarc_from_domain(s, size, dom, sizeof(dom), &err);
	}

	extra[0].name = "_dmarc.example.com";
	extra[0].type = "TXT";
	extra[0].data = s;
	fake_dns_init(&dns, &z);
	dmarc_evaluate(&dns, psl, &in, &out);
	free(s);
	return 0;
}
