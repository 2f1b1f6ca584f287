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

/* A SORT whose files are being read (imap_search_start, then the sort
   keys the cache lacks: imap_msg_keys_prefetch). */
struct sort_cmd {
	struct imap_return ret;
	bool uid;
	struct imap_search *prog;
	struct imap_sort_program *sp;
	unsigned int *idx, nidx;
};

static void
sort_keys_done(struct imap_session *s, void *ctx)
{
	struct sort_cmd *sc = ctx;

	if (s == NULL) {
		imap_search_free(&sc->prog);
		free(sc->sp);
	} else {
		imap_sort_indexes(s, sc->sp, sc->idx, sc->nidx);
		imap_search_answer(s, "SORT", "Sort", &sc->ret, sc->uid,
		    sc->prog, sc->sp, sc->idx, sc->nidx);
	}
	free(sc->idx);
	free(sc);
}

static void
sort_done(struct imap_session *s, void *ctx, unsigned int *idx,
    unsigned int nidx)
{
	struct sort_cmd *sc = ctx;

	sc->idx = idx;
	sc->nidx = nidx;
	if (s == NULL || !imap_sort_needs_headers(sc->sp))
		sort_keys_done(s, sc);
	else
		imap_msg_keys_prefetch(s, idx, nidx, sort_keys_done, sc);
}

void
imap_cmd_sort(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	struct imap_sort_program *sp;
	struct imap_return ret;
	struct imap_search *prog;
	struct sort_cmd *sc;
	const char *err, *charset;
	unsigned int i = 0;

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
	sc = xcalloc(1, sizeof(*sc));
	sc->ret = ret;
	sc->uid = uid;
	sc->prog = prog;
	sc->sp = sp;
	imap_search_start(s, prog, sort_done, sc);
	return;
fail:
	if (ret.save)
		imap_searchres_clear(s);
	free(sp);
}
