/*
 * STORE, EXPUNGE, COPY and MOVE (RFC 6851), with UIDPLUS codes; APPEND is
 * in cmd_append.c.
 */
#include "imap/esearch.h"
#include "imap/session-private.h"

#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

void
imap_cmd_store(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	const char *what;
	char op = '=';
	bool silent, conditional = false;
	unsigned int flags, *idx, nidx;
	char *kw;
	size_t wl;
	bool failed = false;
	unsigned long long unchangedsince = 0;
	uint32_t *modified = NULL;
	unsigned int nmodified = 0;
	struct imap_arg shifted[3];
	bool batched = false;
	char *batch_err = NULL;

	if (n == 4) {
		/* RFC 7162 §3.1.3: (UNCHANGEDSINCE <mod-sequence>) */
		if (a[1].type != IMAP_ARG_LIST || a[1].count != 2 ||
		    !imap_arg_is_atom(&a[1].list[0], "UNCHANGEDSINCE") ||
		    a[1].list[1].type != IMAP_ARG_ATOM ||
		    str_to_ullong(a[1].list[1].str, &unchangedsince) < 0) {
			imap_tagged(s, "BAD", "Invalid STORE modifier");
			return;
		}
		conditional = true;
		s->condstore = true;
		/* the rest as without the modifier */
		shifted[0] = a[0];
		shifted[1] = a[2];
		shifted[2] = a[3];
		a = shifted;
		n = 3;
	}
	what = n == 3 && a[1].type == IMAP_ARG_ATOM ? a[1].str : NULL;
	if (what == NULL || a[0].type != IMAP_ARG_ATOM) {
		imap_tagged(s, "BAD", "STORE needs a set, an item and flags");
		return;
	}
	if (*what == '+' || *what == '-')
		op = *what++;
	wl = strlen(what);
	silent = wl == 12 && strcasecmp(what, "FLAGS.SILENT") == 0;
	if (!silent && strcasecmp(what, "FLAGS") != 0) {
		imap_tagged(s, "BAD", "Unknown STORE item");
		return;
	}
	if (imap_parse_flag_list(&a[2], &flags, &kw) < 0) {
		imap_tagged(s, "BAD", "Invalid flags");
		return;
	}
	if (s->readonly) {
		free(kw);
		imap_tagged(s, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	if (imap_resolve_set(s, a[0].str, uid, &idx, &nidx) < 0) {
		free(kw);
		return;
	}
	modified = xcalloc(nidx + 1, sizeof(*modified));
	/* one index transaction for the whole set, not one per message */
	if (nidx > 1 && store_batch_begin(s->box, &batch_err) == 0)
		batched = true;
	x_free(&batch_err);
	for (unsigned int i = 0; i < nidx; i++) {
		unsigned int count;
		const struct store_msg *m = &store_mailbox_msgs(s->box, &count)[idx[i]];
		char *err = NULL;
		int r;
		uint64_t before = m->modseq;

		if (conditional && m->modseq > unchangedsince) {
			modified[nmodified++] = uid ? m->uid : idx[i] + 1;
			continue;
		}

		r = store_msg_change_flags(s->box, idx[i], op, flags, kw, &err);
		if (r < 0) {
			log_warn("event=imap_store_failed error=\"%s\"", err);
			free(err);
			failed = true;
		} else if (r > 0) {
			/* expunged by another session: nothing to store
			   (RFC 9051 7.5.1: the EXPUNGE comes at a later sync) */
			continue;
		}
		m = &store_mailbox_msgs(s->box, &count)[idx[i]];
		/* with CONDSTORE a changed message is reported even when
		   .SILENT, with its new MODSEQ (RFC 7162 §3.1.3) */
		if (!silent || (s->condstore && m->modseq != before)) {
			struct buf b;

			if (!silent)
				imap_keywords_announce(s, m->keywords);
			buf_init(&b, BUF_UNLIMITED);
			buf_printf(&b, "* %u FETCH (", idx[i] + 1);
			/* with CONDSTORE every FETCH a STORE causes names its
			   UID (RFC 7162 3.1) */
			if (uid || s->condstore)
				buf_printf(&b, "UID %u ", m->uid);
			if (!silent) {
				buf_append_str(&b, "FLAGS ");
				imap_append_flags(&b, m, imap_msg_recent(s, m->uid));
			}
			if (s->condstore)
				buf_printf(&b, "%sMODSEQ (%llu)", silent ? "" : " ",
				    (unsigned long long)m->modseq);
			buf_append_str(&b, ")\r\n");
			imap_write(s, b.data, b.len);
			buf_free(&b);
		}
	}
	free(idx);
	free(kw);
	if (batched && store_batch_end(s->box, &batch_err) < 0) {
		log_warn("event=imap_store_failed error=\"%s\"", batch_err);
		free(batch_err);
		failed = true;
	}
	if (failed) {
		imap_tagged(s, "NO", "Some flags could not be stored.");
	} else if (nmodified > 0) {
		struct buf b;

		buf_init(&b, BUF_UNLIMITED);
		imap_append_numset(&b, modified, nmodified);
		imap_tagged(s, "OK", "[MODIFIED %s] Conditional STORE failed",
		    buf_cstr(&b));
		buf_free(&b);
	} else {
		imap_tagged(s, "OK", "Store completed.");
	}
	free(modified);
}

void
imap_cmd_expunge(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	const struct store_msg *msgs;
	unsigned int count, *idx = NULL, nidx = 0, nd = 0;
	uint32_t *uids;
	char *err = NULL;

	if (s->readonly) {
		imap_tagged(s, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	if (uid && (n != 1 || a[0].type != IMAP_ARG_ATOM)) {
		imap_tagged(s, "BAD", "UID EXPUNGE needs a UID set");
		return;
	}
	if (uid && imap_resolve_set(s, a[0].str, true, &idx, &nidx) < 0)
		return;
	msgs = store_mailbox_msgs(s->box, &count);
	uids = xcalloc(count + 1, sizeof(*uids));
	if (uid) {
		for (unsigned int i = 0; i < nidx; i++) {
			if ((msgs[idx[i]].flags & STORE_FLAG_DELETED) != 0)
				uids[nd++] = msgs[idx[i]].uid;
		}
	} else {
		for (unsigned int i = 0; i < count; i++) {
			if ((msgs[i].flags & STORE_FLAG_DELETED) != 0)
				uids[nd++] = msgs[i].uid;
		}
	}
	free(idx);
	if (nd > 0 && store_mailbox_expunge(s->box, uids, nd, &err) < 0) {
		free(uids);
		imap_tagged(s, "NO", "%s", err);
		free(err);
		return;
	}
	free(uids);
	imap_sync_selected(s);
	imap_tagged(s, "OK", "Expunge completed.");
}

static void
copy_common(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid, bool move)
{
	const char *name = n == 2 ? imap_arg_astring(&a[1]) : NULL;
	struct store_mailbox *dst;
	unsigned int *idx, nidx, count;
	uint32_t *src_uids, *dst_uids;
	const struct store_msg *msgs;
	char *err = NULL;
	struct buf code;

	if (name == NULL || a[0].type != IMAP_ARG_ATOM) {
		imap_tagged(s, "BAD", "Invalid arguments");
		return;
	}
	if (move && s->readonly) {
		imap_tagged(s, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	if (imap_resolve_set(s, a[0].str, uid, &idx, &nidx) < 0)
		return;
	if (store_mailbox_open_target(s->acct, name, &dst, &err) < 0) {
		free(idx);
		free(err);
		imap_tagged(s, "NO", "[TRYCREATE] Mailbox doesn't exist");
		return;
	}
	if (nidx == 0) {
		free(idx);
		store_mailbox_close(&dst);
		imap_tagged(s, "OK", "%s completed.", move ? "Move" : "Copy");
		return;
	}
	dst_uids = xcalloc(nidx, sizeof(*dst_uids));
	src_uids = xcalloc(nidx, sizeof(*src_uids));
	msgs = store_mailbox_msgs(s->box, &count);
	{
		uint64_t adding = 0;

		for (unsigned int i = 0; i < nidx; i++) {
			src_uids[i] = msgs[idx[i]].uid;
			adding += msgs[idx[i]].size;
		}
		/* a MOVE inside the account leaves its usage as it was: only a
		   COPY can take it over its quota (RFC 9208 4.4) */
		if (!move && imap_quota_check(s, store_mailbox_name(dst),
		    adding) < 0) {
			imap_tagged(s, "NO", "[OVERQUOTA] Quota exceeded (mailbox "
			    "for user is full)");
			goto out;
		}
	}
	if (store_mailbox_copy(s->box, idx, nidx, dst, dst_uids, &err) < 0) {
		imap_tagged(s, "NO", "%s", err);
		free(err);
		goto out;
	}
	if (s->hooks->on_filed != NULL) {
		/* before MOVE's expunge: the source files still exist */
		char **paths = xcalloc(nidx, sizeof(*paths));

		/* a COPY into the selected folder grew the array msgs was in */
		msgs = store_mailbox_msgs(s->box, &count);

		for (unsigned int i = 0; i < nidx; i++)
			paths[i] = store_msg_full_path(s->box, &msgs[idx[i]]);
		s->hooks->on_filed(s, store_mailbox_name(s->box),
		    store_mailbox_name(dst), (const char *const *)paths, nidx,
		    NULL, 0, s->ctx);
		for (unsigned int i = 0; i < nidx; i++)
			free(paths[i]);
		free(paths);
	}
	buf_init(&code, BUF_UNLIMITED);
	buf_printf(&code, "COPYUID %u ", store_mailbox_uidvalidity(dst));
	imap_append_numset(&code, src_uids, nidx);
	buf_append_c(&code, ' ');
	imap_append_numset(&code, dst_uids, nidx);
	if (move) {
		/* RFC 6851 §4.3: COPYUID untagged, then the EXPUNGEs */
		imap_printf(s, "* OK [%s] Moved\r\n", buf_cstr(&code));
		if (store_mailbox_expunge(s->box, src_uids, nidx, &err) < 0) {
			imap_tagged(s, "NO", "%s", err);
			free(err);
		} else {
			imap_sync_selected(s);
			imap_tagged(s, "OK", "Move completed.");
		}
	} else {
		imap_tagged(s, "OK", "[%s] Copy completed.", buf_cstr(&code));
	}
	buf_free(&code);
out:
	free(idx);
	free(src_uids);
	free(dst_uids);
	store_mailbox_close(&dst);
}

void
imap_cmd_copy(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	copy_common(s, a, n, uid, false);
}

void
imap_cmd_move(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	copy_common(s, a, n, uid, true);
}
