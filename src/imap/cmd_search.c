/*
 * SEARCH and UID SEARCH: "[RETURN (...)] [CHARSET x] keys". Without
 * RETURN the answer is "* SEARCH" (RFC 3501); with it "* ESEARCH"
 * (RFC 4731) with MIN MAX ALL COUNT, PARTIAL (RFC 5267), SAVE ("$",
 * RFC 5182) and UPDATE (a context, RFC 5267 §4).
 */
#include "imap/esearch.h"
#include "imap/search.h"
#include "imap/session-private.h"

#include "lib/xalloc.h"
#include "mail/charset.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * The CHARSET argument at a[*i], if any (moving past it). -1: a reply
 * was sent. *charset_r stays NULL (UTF-8) when there is none.
 */
int
imap_search_charset(struct imap_session *s, const struct imap_arg *a,
    unsigned int n, unsigned int *i, const char **charset_r)
{
	*charset_r = NULL;
	if (*i < n && imap_arg_is_atom(&a[*i], "CHARSET")) {
		const char *cs = *i + 1 < n ? imap_arg_astring(&a[*i + 1]) : NULL;

		if (cs == NULL) {
			imap_tagged(s, "BAD", "CHARSET needs a name");
			return -1;
		}
		if (!charset_known(cs)) {
			imap_tagged(s, "NO", "[BADCHARSET (" CHARSET_ADVERTISED
			    ")] Unsupported charset");
			return -1;
		}
		*charset_r = cs;
		*i += 2;
	}
	return 0;
}

/* The program for a[*i..n), or NULL with the reply sent. */
struct imap_search *
imap_search_compile(struct imap_session *s, const struct imap_arg *a,
    unsigned int n, unsigned int i, const char *charset)
{
	struct imap_search *p;
	const char *err = NULL;
	bool badcs;

	/* "SEARCH" with no arguments has no array at all (NULL + 0 is UB) */
	p = imap_search_parse(i < n ? a + i : a, n - i, charset, &err, &badcs);
	if (p == NULL) {
		if (badcs)
			imap_tagged(s, "NO", "[BADCHARSET (" CHARSET_ADVERTISED
			    ")] Unsupported charset");
		else
			imap_tagged(s, "BAD", "%s", err);
	}
	return p;
}

void
imap_search_answer(struct imap_session *s, const char *verb,
    const char *name, const struct imap_return *ret, bool uid, struct imap_search *prog,
    struct imap_sort_program *sort, const unsigned int *idx, unsigned int nidx)
{
	const struct store_msg *msgs;
	unsigned int count;
	uint32_t *nums, *uids;
	uint64_t *modseqs = NULL;

	msgs = store_mailbox_msgs(s->box, &count);
	nums = xcalloc(nidx + 1, sizeof(*nums));
	uids = xcalloc(nidx + 1, sizeof(*uids));
	if (imap_search_has_modseq(prog)) {
		modseqs = xcalloc(nidx + 1, sizeof(*modseqs));
		/* a MODSEQ search turns CONDSTORE on (RFC 7162 §3.1) */
		imap_condstore_enable(s);
	}
	for (unsigned int k = 0; k < nidx; k++) {
		uids[k] = msgs[idx[k]].uid;
		nums[k] = uid ? uids[k] : idx[k] + 1;
		if (modseqs != NULL)
			modseqs[k] = msgs[idx[k]].modseq;
	}
	if (!ret->given) {
		struct buf out;
		uint64_t maxmod = 0;

		buf_init(&out, BUF_UNLIMITED);
		buf_printf(&out, "* %s", verb);
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
		imap_esearch_write(s, ret, uid, nums, modseqs, nidx);
	}
	if (ret->save)
		imap_searchres_save(s, ret, uids, nidx);
	if (ret->update) {
		if (imap_context_add(s, s->tag, uid, prog, sort, uids, nidx) < 0)
			imap_tagged(s, "NO", "[NOUPDATE \"%s\"] Too many contexts",
			    s->tag);
		else
			imap_tagged(s, "OK", "%s completed, updates follow.",
			    name);
	} else {
		imap_tagged(s, "OK", "%s completed.", name);
		imap_search_free(&prog);
		free(sort);
	}
	free(nums);
	free(uids);
	free(modseqs);
}

/* A SEARCH whose files are being read (imap_search_start). */
struct search_cmd {
	struct imap_return ret;
	bool uid;
	struct imap_search *prog;
};

static void
search_done(struct imap_session *s, void *ctx, unsigned int *idx,
    unsigned int nidx)
{
	struct search_cmd *sc = ctx;

	if (s == NULL)
		imap_search_free(&sc->prog);
	else
		imap_search_answer(s, "SEARCH", "Search", &sc->ret, sc->uid,
		    sc->prog, NULL, idx, nidx);
	free(idx);
	free(sc);
}

void
imap_cmd_search(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	struct imap_return ret;
	struct imap_search *prog;
	struct search_cmd *sc;
	const char *charset, *err;
	unsigned int i = 0;

	if (imap_return_parse(a, n, &i, &ret, &err) < 0) {
		imap_tagged(s, "BAD", "%s", err);
		return;
	}
	/* IMAP4rev2 answers every SEARCH with ESEARCH, ALL when no RETURN
	 * was given (RFC 9051 6.4.4) */
	if (s->rev2 && !ret.given) {
		ret.given = true;
		ret.all = true;
	}
	if (imap_search_charset(s, a, n, &i, &charset) < 0 ||
	    (prog = imap_search_compile(s, a, n, i, charset)) == NULL) {
		if (ret.save)
			imap_searchres_clear(s);
		return;
	}
	sc = xcalloc(1, sizeof(*sc));
	sc->ret = ret;
	sc->uid = uid;
	sc->prog = prog;
	imap_search_start(s, prog, search_done, sc);
}
