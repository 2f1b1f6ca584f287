/*
 * Fuzz the PREVIEW text maker: any message gives valid UTF-8 of at most
 * the asked number of characters, with no control character in it.
 */
#include "mail/charset.h"
#include "mail/mime.h"
#include "mail/preview.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct mime_limits lim = {
	.max_depth = 20, .max_parts = 500, .max_params = 16, .max_value = 1024,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_message *m;
	size_t max = size > 0 ? data[0] % 64 : 0, chars = 0, len;
	const unsigned char *p;
	char *text;

	m = mime_parse((const char *)data, size, &lim);
	text = mail_preview(m, max);
	p = (const unsigned char *)text;
	len = strlen(text);
	for (size_t i = 0; i < len; chars++) {
		unsigned int cp;
		size_t n = charset_utf8_next(p + i, len - i, &cp);

		if (n == 0 || cp < 0x20 || cp == 0x7f)
			abort();
		i += n;
	}
	if (chars > max || (len > 0 && (text[0] == ' ' || text[len - 1] == ' ')))
		abort();
	free(text);
	mime_message_free(&m);
	return 0;
}
