/*
 * The queue envelope parser: anything in, no crash; and whatever it
 * accepts must format back into text that parses to the same text.
 */
#include "queue/spool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spool_envelope env, env2;
	char *err = NULL, *text, *text2;
	size_t len, len2;

	if (spool_envelope_parse((const char *)data, size, &env, &err) < 0) {
		free(err);
		return 0;
	}
	text = spool_envelope_format(&env, &len);
	if (spool_envelope_parse(text, len, &env2, &err) < 0)
		abort();
	text2 = spool_envelope_format(&env2, &len2);
	if (len != len2 || memcmp(text, text2, len) != 0)
		abort();
	free(text);
	free(text2);
	spool_envelope_free(&env);
	spool_envelope_free(&env2);
	return 0;
}
