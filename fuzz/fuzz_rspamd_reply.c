/* rspamd: the JSON reader of /checkv2 replies. */
#include "filter/rspamd.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rspamd_result r;
	const char *err;

	if (rspamd_parse_reply((const char *)data, size, &r, &err) == 0 &&
	    strlen(r.subject) > RSPAMD_SUBJECT_MAX)
		__builtin_trap();
	return 0;
}
