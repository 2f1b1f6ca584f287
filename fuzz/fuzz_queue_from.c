/* The From-address scan used to pick DKIM keys: anything in, no crash,
 * no read past the input. */
#include "queue/fromaddr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1);
	char *a;

	memcpy(copy, data, size);
	a = queue_header_from(copy, size);
	if (a != NULL && (strlen(a) > FROMADDR_MAX || strchr(a, '@') == NULL))
		abort();
	free(a);
	free(copy);
	return 0;
}
