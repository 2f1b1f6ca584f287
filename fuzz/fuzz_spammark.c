/*
 * filter/spammark: the header rewrite of a received message (X-Spam
 * fields replaced, the subject prefixed), on the input as the message,
 * for a spam and a clean verdict.
 */
#include "filter/spammark.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spammark_settings set = {
		.move_to_junk = true, .mark_read = true, .subject_prefix = "[SPAM]",
	};
	struct spammark_verdict v = { .spam = true, .score = 0.97,
	    .reason = "bayes" };
	struct buf out;

	for (int i = 0; i < 2; i++) {
		buf_init(&out, 4 * size + 4096);
		/* our verdict always comes first, whatever came in */
		if (spammark_rewrite((const char *)data, size, &set, &v, &out) == 0 &&
		    (out.len < 9 || memcmp(out.data, v.spam ? "X-Spam: Y" :
		    "X-Spam: N", 9) != 0))
			__builtin_trap();
		buf_free(&out);
		v.spam = false;
		v.score = -1;
	}
	return 0;
}
