/* clamd: the INSTREAM answer ("stream: OK", "stream: <name> FOUND", ...). */
#include "filter/clamd.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *reply, virus[64], *err = NULL;
	enum clamd_verdict v;

	if (size > 4096)
		return 0;	/* clamd_scan reads at most REPLY_MAX */
	reply = malloc(size + 1);
	memcpy(reply, data, size);
	v = clamd_parse_reply(reply, size, virus, sizeof(virus), &err);
	if (v == CLAMD_INFECTED) {
		/* the name is cut to the buffer and printable */
		if (strlen(virus) >= sizeof(virus))
			__builtin_trap();
		for (const char *p = virus; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
				__builtin_trap();
	}
	if (v == CLAMD_ERROR && err == NULL)
		__builtin_trap();
	free(err);
	free(reply);
	return 0;
}
