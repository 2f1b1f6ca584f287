/*
 * Fuzzes the DNS rdata parsers: the first byte picks the record type, the
 * rest is the rdata as libunbound would hand it over. Also runs the whole
 * answer path (dns_result_fill) with the input split into up to 4 records.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "lib/xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum dns_type types[] = {
		DNS_TYPE_MX, DNS_TYPE_TXT, DNS_TYPE_A, DNS_TYPE_AAAA, DNS_TYPE_PTR,
	};
	struct dns_result *res;
	char *rdata[5] = { NULL };
	int lens[4];
	size_t n = 0, pos, part;
	enum dns_type type;

	if (size < 1)
		return 0;
	type = types[data[0] % 5];
	data++;
	size--;

	/* Each record in its own allocation, so ASan sees any overread. */
	part = size / 4 + 1;
	for (pos = 0; pos < size && n < 4; n++) {
		size_t len = size - pos < part ? size - pos : part;

		if (n == 3)
			len = size - pos;
		rdata[n] = xmalloc(len + 1);
		memcpy(rdata[n], data + pos, len);
		lens[n] = (int)len;
		pos += len;
	}
	if (n == 0) {
		rdata[0] = xmalloc(1);
		lens[0] = 0;
		n = 1;
	}

	res = xcalloc(1, sizeof(*res));
	res->type = type;
	res->status = DNS_FOUND;
	(void)dns_result_fill(res, rdata, lens, n);
	if (res->status == DNS_FOUND && type == DNS_TYPE_MX) {
		for (size_t i = 1; i < res->count; i++)
			if (res->mx[i - 1].preference > res->mx[i].preference)
				abort();
	}
	dns_result_free(&res);

	/* Each parser on the whole input too. */
	{
		struct dns_mx mx;
		struct dns_txt txt;
		struct dns_addr addr;
		char *name;
		uint8_t *copy = xmalloc(size + 1);

		memcpy(copy, data, size);
		if (dns_parse_mx(copy, size, &mx) == 0)
			free(mx.host);
		if (dns_parse_txt(copy, size, &txt) == 0)
			free(txt.data);
		if (dns_parse_name(copy, size, &name) == 0)
			free(name);
		(void)dns_parse_a(copy, size, &addr);
		(void)dns_parse_aaaa(copy, size, &addr);
		free(copy);
	}
	for (size_t i = 0; i < n; i++)
		free(rdata[i]);
	return 0;
}
