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
	const char *err, *charset;
	unsigned int i = 0, nidx, *idx;

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
	idx = imap_search_run(s, prog, &nidx);
	imap_sort_indexes(s, sp, idx, nidx);
	imap_search_answer(s, "SORT", "Sort", &ret, uid, prog, sp, idx, nidx);
	free(idx);
	return;
fail:
	if (ret.save)
		imap_searchres_clear(s);
	free(sp);
}
