/* Authentication-Results: stripping our forged fields from a header block. */
#include "msgauth/authres.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out;
	char id[256];
	int n;

	buf_init(&out, size + 1);
	n = authres_strip_ours((const char *)data, size, "mx.tegami.test", &out);
	/* stripping only ever removes bytes */
	if (n < 0 || out.len > size)
		__builtin_trap();
	buf_free(&out);
	authres_authserv_id((const char *)data, size, id, sizeof(id));
	return 0;
}
