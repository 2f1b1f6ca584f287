/*
 * Fuzzes the SMTP client's reply parser and EHLO keyword parser: the input
 * is split into lines as the client splits them (CRLF), each line is fed
 * to the parser; complete EHLO-like replies are run through the keyword
 * parser too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_reply_parser p;
	size_t pos = 0;

	smtp_reply_parser_init(&p);
	while (pos < size) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t raw = nl != NULL ? (size_t)(nl - (data + pos)) : size - pos;
		size_t len = raw;
		char *line = malloc(len + 1);
		uint64_t sz;
		int ret;

		memcpy(line, data + pos, len);
		line[len] = '\0';
		if (len > 0 && line[len - 1] == '\r')
			len--;
		(void)smtp_ehlo_keyword(line, len, &sz);
		if (len > 4)
			(void)smtp_ehlo_keyword(line + 4, len - 4, &sz);
		ret = smtp_reply_parser_line(&p, line, len);
		free(line);
		if (ret != 0) {
			if (ret == 1 && strlen(p.reply.text) >= sizeof(p.reply.text))
				abort();
			smtp_reply_parser_init(&p);
		}
		pos += raw + (nl != NULL ? 1 : 0);
	}
	return 0;
}
