/* IMAP4rev2 SEARCH replies as ESEARCH (esearch_min.h). */
#include "imap/esearch_min.h"

#include "imap/session-private.h"
#include "lib/buf.h"

#include <string.h>

int
esearch_min_parse(const struct imap_arg *a, unsigned int n, unsigned int *i,
    struct esearch_min *r, const char **error_r)
{
	const struct imap_arg *opts;

	memset(r, 0, sizeof(*r));
	if (*i >= n || !imap_arg_is_atom(&a[*i], "RETURN"))
		return 0;
	if (*i + 1 >= n || a[*i + 1].type != IMAP_ARG_LIST) {
		*error_r = "RETURN needs a list of options";
		return -1;
	}
	opts = &a[*i + 1];
	r->given = true;
	for (unsigned int k = 0; k < opts->count; k++) {
		const struct imap_arg *o = &opts->list[k];

		if (imap_arg_is_atom(o, "MIN"))
			r->min = true;
		else if (imap_arg_is_atom(o, "MAX"))
			r->max = true;
		else if (imap_arg_is_atom(o, "COUNT"))
			r->count = true;
		else if (imap_arg_is_atom(o, "ALL"))
			r->all = true;
		else {
			*error_r = "Unsupported RETURN option";
			return -1;
		}
	}
	/* RETURN () is RETURN (ALL) (RFC 4731 3.1) */
	if (!r->min && !r->max && !r->count && !r->all)
		r->all = true;
	*i += 2;
	return 0;
}

void
esearch_min_write(struct imap_session *s, const struct esearch_min *r,
    bool uid, const uint32_t *nums, unsigned int n, bool modseq,
    uint64_t maxmod)
{
	struct esearch_min all = { .all = true };
	struct buf b;

	if (!r->given)
		r = &all;
	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "* ESEARCH (TAG \"");
	buf_append_str(&b, s->tag != NULL ? s->tag : "");
	buf_append_str(&b, "\")");
	if (uid)
		buf_append_str(&b, " UID");
	if (n > 0 && r->min)
		buf_printf(&b, " MIN %u", nums[0]);
	if (n > 0 && r->max)
		buf_printf(&b, " MAX %u", nums[n - 1]);
	if (r->count)
		buf_printf(&b, " COUNT %u", n);
	if (n > 0 && r->all) {
		buf_append_str(&b, " ALL ");
		for (unsigned int i = 0; i < n; i++) {
			unsigned int j = i;

			while (j + 1 < n && nums[j + 1] == nums[j] + 1)
				j++;
			buf_printf(&b, "%s%u", i > 0 ? "," : "", nums[i]);
			if (j > i)
				buf_printf(&b, ":%u", nums[j]);
			i = j;
		}
	}
	if (modseq && n > 0)
		buf_printf(&b, " MODSEQ %llu", (unsigned long long)maxmod);
	buf_append_str(&b, "\r\n");
	imap_write(s, b.data, b.len);
	buf_free(&b);
}
