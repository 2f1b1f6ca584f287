/* The junk filter's tokenizer on a whole message. */
#include "filter/tokenize.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct token_set s;

	token_set_init(&s, 500);
	tokenize_message(&s, (const char *)data, size);
	for (size_t i = 0; i < s.count; i++) {
		if (strlen(s.tokens[i]) > TOKENIZE_TOKEN_MAX)
			__builtin_trap();
	}
	token_set_free(&s);
	return 0;
}
