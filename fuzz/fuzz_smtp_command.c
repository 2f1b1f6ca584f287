/*
 * libFuzzer target: the SMTP command-line reader, the command splitter, the
 * path and ESMTP parameter parsers, the DATA reader and base64, all fed
 * the same hostile bytes. The first byte picks the feed step and parser
 * flags so that byte-at-a-time paths are covered too.
 */
#include "mail/address.h"
#include "smtp/parser.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
parse_line(const char *line, size_t len, unsigned int flags)
{
	const char *args, *rest, *error;
	char verb[16];
	struct address a;
	struct esmtp_params params;
	size_t consumed;

	(void)smtp_command_chars_ok(line, len);
	if (smtp_command_split(line, verb, &args) < 0)
		return;
	if (strcasecmp(verb, "MAIL") == 0 && strncasecmp(args, "FROM:", 5) == 0)
		rest = args + 5;
	else if (strcasecmp(verb, "RCPT") == 0 && strncasecmp(args, "TO:", 3) == 0)
		rest = args + 3;
	else
		rest = args;
	if (address_parse_path(rest, strlen(rest), flags, &a, &consumed,
	    &error) == 0) {
		char *s = address_to_string(&a), *base, *detail;

		if (consumed > strlen(rest))
			abort();
		address_split_detail(a.local, '+', &base, &detail);
		free(base);
		free(detail);
		address_lower(&a);
		free(s);
		address_free(&a);
		rest += consumed;
	}
	if (esmtp_params_parse(rest, strlen(rest), flags, &params, &error) == 0)
		(void)esmtp_params_find(&params, "SIZE");
	esmtp_params_free(&params);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_line_reader lr;
	struct smtp_data_reader dr;
	unsigned char *out, dec[512];
	size_t step, pos = 0, out_len;
	unsigned int flags;
	char *copy;
	struct address a;
	const char *error;

	if (size < 1)
		return 0;
	step = (data[0] & 0x0f) + 1;
	if (step == 16)
		step = size;
	flags = (data[0] >> 4) & 7;
	data++;
	size--;

	/* command lines, with a small limit to reach the overflow path */
	smtp_line_reader_init(&lr, size > 0 && (data[0] & 1) ? 64 : 512);
	while (pos < size) {
		size_t n = size - pos < step ? size - pos : step, used;
		enum smtp_line_result r = smtp_line_reader_feed(&lr, data + pos,
		    n, &used);

		if (used > n)
			abort();
		pos += used;
		if (r == SMTP_LINE_OK)
			parse_line(lr.line.data != NULL ? lr.line.data : "",
			    lr.line.len, flags);
		if (r != SMTP_LINE_MORE)
			smtp_line_reader_next(&lr);
	}
	smtp_line_reader_free(&lr);

	/* the same bytes as a DATA body */
	out = malloc(step + 1);
	smtp_data_reader_init(&dr, 80);
	for (pos = 0; pos < size && !dr.done;) {
		size_t n = size - pos < step ? size - pos : step;
		size_t used = smtp_data_reader_feed(&dr, data + pos, n, out, &out_len);

		if (used > n || out_len > n + 1)
			abort();
		pos += used;
	}
	free(out);
	smtp_data_reader_init(&dr, 80);
	smtp_data_reader_scan_binary(&dr, data, size);
	smtp_data_reader_finish_binary(&dr);

	/* whole input as a bare address and as base64 */
	copy = malloc(size + 1);
	memcpy(copy, data, size);
	copy[size] = '\0';
	if (address_parse(copy, flags, &a, &error) == 0)
		address_free(&a);
	{
		long n = smtp_base64_decode(copy, size, dec, sizeof(dec) - 1);
		const char *z, *l;
		char *p;

		if (n >= 0)
			(void)smtp_sasl_plain_split(dec, (size_t)n, &z, &l, &p);
		/* and the raw bytes as a decoded response */
		if (size < sizeof(dec)) {
			memcpy(dec, data, size);
			(void)smtp_sasl_plain_split(dec, size, &z, &l, &p);
		}
	}
	free(copy);
	return 0;
}
