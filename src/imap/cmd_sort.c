/*
 * SORT and UID SORT (RFC 5256), with SORT=DISPLAY keys (RFC 5957) and
 * the ESORT return options, PARTIAL and UPDATE of RFC 5267:
 *   SORT [RETURN (opts)] (criteria) charset search-keys
 */
#include "imap/esearch.h"
#include "imap/search.h"
#include "imap/session-private.h"
#include "imap/sort.h"

#include "lib/xalloc.h"
#include "mail/charset.h"

#include <stdlib.h>
#include <string.h>

void
imap_cmd_sort(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	struct imap_sort_program *sp;
	struct imap_return ret;
	struct imap_search *prog;
	const struct store_msg *msgs;
	const char *err, *charset;
	unsigned int i = 0, count, nidx, *idx;
	uint32_t *nums, *uids;
	uint64_t *modseqs = NULL;

	if (imap_return_parse(a, n, &i, &ret, &err) < 0) {
		imap_tagged(s, "BAD", "%s", err);
		return;
	}
	sp = xcalloc(1, sizeof(*sp));
	if (i + 3 > n || imap_sort_parse(&a[i], sp, &err) < 0) {
		imap_tagged(s, "BAD", "%s", i + 3 > n ? "SORT needs criteria,"
		    " a charset and search keys" : err);
		goto fail;
	}
	i++;
	/* the charset is not optional here (RFC 5256 §3) */
	if ((charset = imap_arg_astring(&a[i])) == NULL) {
		imap_tagged(s, "BAD", "SORT needs a charset");
		goto fail;
	}
	if (!charset_known(charset)) {
		imap_tagged(s, "NO", "[BADCHARSET (" CHARSET_ADVERTISED
		    ")] Unsupported charset");
		goto fail;
	}
	i++;
	if ((prog = imap_search_compile(s, a, n, i, charset)) == NULL)
		goto fail;
	msgs = store_mailbox_msgs(s->box, &count);
	idx = imap_search_run(s, prog, &nidx);
	imap_sort_indexes(s, sp, idx, nidx);
	nums = xcalloc(nidx + 1, sizeof(*nums));
	uids = xcalloc(nidx + 1, sizeof(*uids));
	if (imap_search_has_modseq(prog)) {
		modseqs = xcalloc(nidx + 1, sizeof(*modseqs));
		imap_condstore_enable(s);
	}
	for (unsigned int k = 0; k < nidx; k++) {
		uids[k] = msgs[idx[k]].uid;
		nums[k] = uid ? uids[k] : idx[k] + 1;
		if (modseqs != NULL)
			modseqs[k] = msgs[idx[k]].modseq;
	}
	if (!ret.given) {
		struct buf out;
		uint64_t maxmod = 0;

		buf_init(&out, BUF_UNLIMITED);
		buf_append_str(&out, "* SORT");
		for (unsigned int k = 0; k < nidx; k++) {
			buf_printf(&out, " %u", nums[k]);
			if (modseqs != NULL && modseqs[k] > maxmod)
				maxmod = modseqs[k];
		}
		if (maxmod > 0)
			buf_printf(&out, " (MODSEQ %llu)", (unsigned long long)maxmod);
		buf_append_str(&out, "\r\n");
		imap_write(s, out.data, out.len);
		buf_free(&out);
	} else {
		imap_esearch_write(s, &ret, uid, nums, modseqs, nidx);
	}
	if (ret.save)
		imap_searchres_save(s, &ret, uids, nidx);
	if (ret.update) {
		if (imap_context_add(s, s->tag, uid, prog, sp, uids, nidx) < 0)
			imap_tagged(s, "NO", "[NOUPDATE \"%s\"] Too many contexts",
			    s->tag);
		else
			imap_tagged(s, "OK", "Sort completed, updates follow.");
		prog = NULL;
		sp = NULL;
	} else {
		imap_tagged(s, "OK", "Sort completed.");
	}
	imap_search_free(&prog);
	free(idx);
	free(nums);
	free(uids);
	free(modseqs);
	free(sp);
	return;
fail:
	if (ret.save)
		imap_searchres_clear(s);
	free(sp);
}
