/*
 * RETURN options, ESEARCH responses, the saved result "$" (RFC 5182) and
 * the contexts of RFC 5267 §4: searches the client asked to keep up to
 * date. A context holds its result as UIDs; when the mailbox changed
 * (another modseq, another message count) the program is run again and
 * the difference goes out as ADDTO/REMOVEFROM before the next tagged
 * reply or at the end of a sync (IDLE, NOOP). An expunged message
 * leaves a context just before its EXPUNGE, with the sequence number
 * that EXPUNGE carries.
 */
#include "imap/esearch.h"

#include "imap/bodystructure.h"
#include "imap/search.h"
#include "imap/session-private.h"
#include "imap/sort.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct imap_context {
	struct imap_context *next;
	char *tag;
	bool uid;
	struct imap_search *prog;
	struct imap_sort_program *sort;	/* NULL: a SEARCH */
	uint32_t *uids;			/* in result order */
	unsigned int n;
	/* the mailbox as last looked at */
	uint64_t seen_modseq;
	unsigned int seen_count;
	uint32_t seen_last;
};

/* --- RETURN and ESEARCH ------------------------------------------------------ */

static int
parse_partial(const struct imap_arg *arg, struct imap_return *r)
{
	const char *v = imap_arg_astring(arg), *colon;
	unsigned long long lo, hi;
	char tmp[32];

	if (arg->type != IMAP_ARG_ATOM || v == NULL ||
	    (colon = strchr(v, ':')) == NULL || (size_t)(colon - v) >= sizeof(tmp))
		return -1;
	memcpy(tmp, v, (size_t)(colon - v));
	tmp[colon - v] = '\0';
	if (str_to_ullong(tmp, &lo) < 0 || str_to_ullong(colon + 1, &hi) < 0 ||
	    lo == 0 || hi == 0 || lo > UINT32_MAX || hi > UINT32_MAX)
		return -1;
	r->plo = (uint32_t)(lo < hi ? lo : hi);
	r->phi = (uint32_t)(lo < hi ? hi : lo);
	return 0;
}

int
imap_return_parse(const struct imap_arg *a, unsigned int n, unsigned int *i,
    struct imap_return *r, const char **error_r)
{
	const struct imap_arg *opts;
	unsigned int count;

	memset(r, 0, sizeof(*r));
	if (*i >= n || !imap_arg_is_atom(&a[*i], "RETURN"))
		return 0;
	if (*i + 1 >= n || a[*i + 1].type != IMAP_ARG_LIST) {
		*error_r = "RETURN needs a list of options";
		return -1;
	}
	opts = a[*i + 1].list;
	count = a[*i + 1].count;
	*i += 2;
	r->given = true;
	for (unsigned int k = 0; k < count; k++) {
		const struct imap_arg *o = &opts[k];

		if (imap_arg_is_atom(o, "MIN")) {
			r->min = true;
		} else if (imap_arg_is_atom(o, "MAX")) {
			r->max = true;
		} else if (imap_arg_is_atom(o, "ALL")) {
			r->all = true;
		} else if (imap_arg_is_atom(o, "COUNT")) {
			r->count = true;
		} else if (imap_arg_is_atom(o, "SAVE")) {
			r->save = true;
		} else if (imap_arg_is_atom(o, "UPDATE")) {
			r->update = true;
		} else if (imap_arg_is_atom(o, "CONTEXT")) {
			/* a hint that more will follow (RFC 5267 §4.2) */
		} else if (imap_arg_is_atom(o, "PARTIAL")) {
			if (r->partial || k + 1 >= count ||
			    parse_partial(&opts[k + 1], r) < 0) {
				*error_r = "Invalid PARTIAL range";
				return -1;
			}
			r->partial = true;
			k++;
		} else {
			*error_r = "Unknown RETURN option";
			return -1;
		}
	}
	/* RETURN () means RETURN (ALL) (RFC 4731 §3.1) */
	if (!r->min && !r->max && !r->count && !r->partial && !r->save &&
	    !r->update)
		r->all = true;
	if (r->partial && r->all) {
		*error_r = "PARTIAL and ALL cannot be combined";
		return -1;
	}
	return 0;
}

void
imap_append_numset(struct buf *out, const uint32_t *nums, unsigned int n)
{
	for (unsigned int i = 0; i < n;) {
		unsigned int j = i;

		while (j + 1 < n && nums[j + 1] == nums[j] + 1)
			j++;
		if (i > 0)
			buf_append_c(out, ',');
		if (j > i)
			buf_printf(out, "%u:%u", nums[i], nums[j]);
		else
			buf_printf(out, "%u", nums[i]);
		i = j + 1;
	}
}

static void
append_tag(struct buf *out, const char *tag)
{
	buf_append_str(out, "* ESEARCH (TAG ");
	imap_append_nstr(out, tag, false);
	buf_append_c(out, ')');
}

void
imap_esearch_write(struct imap_session *s, const struct imap_return *r,
    bool uid, const uint32_t *nums, const uint64_t *modseqs, unsigned int n)
{
	struct buf out;
	uint64_t modseq = 0;

	/* SAVE alone answers nothing (RFC 5182 §2.4) */
	if (r->save && !r->min && !r->max && !r->all && !r->count &&
	    !r->partial && !r->update)
		return;
	buf_init(&out, BUF_UNLIMITED);
	append_tag(&out, s->tag);
	if (uid)
		buf_append_str(&out, " UID");
	if (r->min && n > 0) {
		uint32_t v = nums[0];
		unsigned int at = 0;

		/* SEARCH results are ascending; ESORT's MIN is its first */
		buf_printf(&out, " MIN %u", v);
		if (modseqs != NULL && modseqs[at] > modseq)
			modseq = modseqs[at];
	}
	if (r->max && n > 0) {
		buf_printf(&out, " MAX %u", nums[n - 1]);
		if (modseqs != NULL && modseqs[n - 1] > modseq)
			modseq = modseqs[n - 1];
	}
	if (r->all && n > 0) {
		buf_append_str(&out, " ALL ");
		imap_append_numset(&out, nums, n);
	}
	if (r->count)
		buf_printf(&out, " COUNT %u", n);
	if (r->partial) {
		buf_printf(&out, " PARTIAL (%u:%u ", r->plo, r->phi);
		if (r->plo > n)
			buf_append_str(&out, "NIL");
		else
			imap_append_numset(&out, nums + r->plo - 1,
			    (r->phi > n ? n : r->phi) - r->plo + 1);
		buf_append_c(&out, ')');
	}
	if (modseqs != NULL && (r->all || r->count || r->partial)) {
		for (unsigned int i = 0; i < n; i++) {
			if (modseqs[i] > modseq)
				modseq = modseqs[i];
		}
	}
	if (modseq > 0)
		buf_printf(&out, " MODSEQ %llu", (unsigned long long)modseq);
	buf_append_str(&out, "\r\n");
	imap_write(s, out.data, out.len);
	buf_free(&out);
}

/* --- "$" ------------------------------------------------------------------------- */

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

void
imap_searchres_save(struct imap_session *s, const struct imap_return *r,
    const uint32_t *uids, unsigned int n)
{
	x_free(&s->searchres);
	s->nsearchres = 0;
	s->searchres = xcalloc(n + 1, sizeof(*s->searchres));
	if ((r->min || r->max) && !r->all && !r->count) {
		if (r->min && n > 0)
			s->searchres[s->nsearchres++] = uids[0];
		if (r->max && n > 0 && (!r->min || n > 1))
			s->searchres[s->nsearchres++] = uids[n - 1];
	} else {
		memcpy(s->searchres, uids, n * sizeof(*uids));
		s->nsearchres = n;
	}
	/* kept ascending for lookups; SORT gives them in its order */
	qsort(s->searchres, s->nsearchres, sizeof(*s->searchres), cmp_u32);
}

void
imap_searchres_clear(struct imap_session *s)
{
	x_free(&s->searchres);
	s->nsearchres = 0;
}

/* --- contexts ------------------------------------------------------------------------ */

static void
context_free(struct imap_context *c)
{
	imap_search_free(&c->prog);
	free(c->sort);
	free(c->tag);
	free(c->uids);
	free(c);
}

static void
mark_seen(struct imap_session *s, struct imap_context *c)
{
	c->seen_modseq = store_mailbox_highestmodseq(s->box);
	c->seen_count = s->nview;
	c->seen_last = imap_view_last_uid(s);
}

int
imap_context_add(struct imap_session *s, const char *tag, bool uid,
    struct imap_search *prog, struct imap_sort_program *sort,
    const uint32_t *uids, unsigned int n)
{
	struct imap_context *c, **tail = &s->contexts;
	unsigned int count = 0;

	for (c = s->contexts; c != NULL; c = c->next) {
		count++;
		tail = &c->next;
	}
	if (count >= IMAP_CONTEXTS_MAX) {
		imap_search_free(&prog);
		free(sort);
		return -1;
	}
	c = xcalloc(1, sizeof(*c));
	c->tag = xstrdup(tag);
	c->uid = uid;
	c->prog = prog;
	c->sort = sort;
	c->uids = xcalloc(n + 1, sizeof(*c->uids));
	memcpy(c->uids, uids, n * sizeof(*uids));
	c->n = n;
	mark_seen(s, c);
	*tail = c;
	return 0;
}

void
imap_cmd_cancelupdate(struct imap_session *s, const struct imap_arg *a,
    unsigned int n, bool uid)
{
	if (n == 0) {
		imap_tagged(s, "BAD", "CANCELUPDATE needs a tag");
		return;
	}
	for (unsigned int i = 0; i < n; i++) {
		const char *tag = imap_arg_string(&a[i]);
		struct imap_context **pp;

		if (tag == NULL) {
			imap_tagged(s, "BAD", "CANCELUPDATE takes quoted tags");
			return;
		}
		for (pp = &s->contexts; *pp != NULL; pp = &(*pp)->next) {
			if (strcmp((*pp)->tag, tag) == 0)
				break;
		}
		if (*pp == NULL) {
			imap_tagged(s, "BAD", "No such update context");
			return;
		}
		{
			struct imap_context *gone = *pp;

			*pp = gone->next;
			context_free(gone);
		}
	}
	imap_tagged(s, "OK", "Updates cancelled.");
}

void
imap_search_reset(struct imap_session *s)
{
	while (s->contexts != NULL) {
		struct imap_context *c = s->contexts;

		s->contexts = c->next;
		context_free(c);
	}
	imap_searchres_clear(s);
	imap_sortcache_free(&s->sortcache);
}

static void
write_update(struct imap_session *s, const struct imap_context *c,
    const char *what, const char *body)
{
	struct buf out;

	buf_init(&out, BUF_UNLIMITED);
	append_tag(&out, c->tag);
	buf_printf(&out, "%s %s (%s)\r\n", c->uid ? " UID" : "", what, body);
	imap_write(s, out.data, out.len);
	buf_free(&out);
}

void
imap_context_expunged(struct imap_session *s, uint32_t uid, unsigned int seq)
{
	for (struct imap_context *c = s->contexts; c != NULL; c = c->next) {
		char num[16];

		for (unsigned int i = 0; i < c->n; i++) {
			if (c->uids[i] != uid)
				continue;
			memmove(c->uids + i, c->uids + i + 1,
			    (c->n - i - 1) * sizeof(*c->uids));
			c->n--;
			snprintf(num, sizeof(num), "0 %u", c->uid ? uid : seq);
			write_update(s, c, "REMOVEFROM", num);
			break;
		}
	}
}

/* Is uid in sorted[0..n)? */
static bool
has_uid(const uint32_t *sorted, unsigned int n, uint32_t uid)
{
	unsigned int lo = 0, hi = n;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (sorted[mid] == uid)
			return true;
		if (sorted[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* The number the client knows a UID by. */
static uint32_t
client_num(const struct imap_session *s, const struct imap_context *c,
    uint32_t uid)
{
	return c->uid ? uid : (uint32_t)imap_view_find_uid(s, uid) + 1;
}

static uint32_t *
sorted_copy(const uint32_t *uids, unsigned int n)
{
	uint32_t *c = xcalloc(n + 1, sizeof(*c));

	memcpy(c, uids, n * sizeof(*uids));
	qsort(c, n, sizeof(*c), cmp_u32);
	return c;
}

/*
 * The program's result now, as store indexes ascending. A program whose
 * answer for a message can only change with the message (no sequence
 * numbers, "$", \Recent or clock in it) is run only on the messages
 * changed or added since the context last looked; the others keep
 * their old answer (so no file is read for them).
 */
static unsigned int *
context_run(struct imap_session *s, struct imap_context *c,
    const uint32_t *old_sorted, unsigned int *n_r)
{
	const struct store_msg *msgs;
	unsigned int count, n = 0, *idx;

	if (!imap_search_is_stable(c->prog))
		return imap_search_run(s, c->prog, n_r);
	msgs = store_mailbox_msgs(s->box, &count);
	idx = xcalloc(count + 1, sizeof(*idx));
	for (unsigned int i = 0; i < count; i++) {
		bool unchanged = msgs[i].modseq <= c->seen_modseq &&
		    msgs[i].uid <= c->seen_last;

		if (unchanged ? has_uid(old_sorted, c->n, msgs[i].uid) :
		    imap_search_match_one(s, c->prog, i))
			idx[n++] = i;
	}
	*n_r = n;
	return idx;
}

static void
context_update(struct imap_session *s, struct imap_context *c)
{
	const struct store_msg *msgs;
	unsigned int count, n, nrem = 0, nadd = 0, *idx;
	uint32_t *old_sorted = sorted_copy(c->uids, c->n), *now, *now_sorted;
	uint32_t *rem = xcalloc(c->n + 1, sizeof(*rem));
	struct buf b;

	idx = context_run(s, c, old_sorted, &n);
	msgs = store_mailbox_msgs(s->box, &count);
	if (c->sort != NULL)
		imap_sort_indexes(s, c->sort, idx, n);
	now = xcalloc(n + 1, sizeof(*now));
	for (unsigned int i = 0; i < n; i++)
		now[i] = msgs[idx[i]].uid;
	now_sorted = sorted_copy(now, n);
	/* left the result (and still in the mailbox) */
	for (unsigned int i = 0; i < c->n; i++) {
		if (!has_uid(now_sorted, n, c->uids[i]) &&
		    imap_view_find_uid(s, c->uids[i]) >= 0)
			rem[nrem++] = client_num(s, c, c->uids[i]);
	}
	buf_init(&b, BUF_UNLIMITED);
	if (nrem > 0) {
		buf_append_str(&b, "0 ");
		qsort(rem, nrem, sizeof(*rem), cmp_u32);
		imap_append_numset(&b, rem, nrem);
		write_update(s, c, "REMOVEFROM", buf_cstr(&b));
	}
	/* joined it: a SEARCH says where not (0), a SORT says where */
	buf_reset(&b);
	if (c->sort == NULL) {
		uint32_t *add = xcalloc(n + 1, sizeof(*add));

		for (unsigned int i = 0; i < n; i++) {
			if (!has_uid(old_sorted, c->n, now[i]))
				add[nadd++] = client_num(s, c, now[i]);
		}
		if (nadd > 0) {
			buf_append_str(&b, "0 ");
			imap_append_numset(&b, add, nadd);
		}
		free(add);
	} else {
		for (unsigned int i = 0; i < n; i++) {
			if (has_uid(old_sorted, c->n, now[i]))
				continue;
			buf_printf(&b, "%s%u %u", nadd++ > 0 ? " " : "", i + 1,
			    client_num(s, c, now[i]));
		}
	}
	if (nadd > 0)
		write_update(s, c, "ADDTO", buf_cstr(&b));
	buf_free(&b);
	free(c->uids);
	c->uids = now;
	c->n = n;
	free(now_sorted);
	free(old_sorted);
	free(rem);
	free(idx);
	mark_seen(s, c);
}

void
imap_context_notify(struct imap_session *s)
{
	if (s->box == NULL)
		return;
	for (struct imap_context *c = s->contexts; c != NULL; c = c->next) {
		if (c->seen_modseq == store_mailbox_highestmodseq(s->box) &&
		    c->seen_count == s->nview &&
		    c->seen_last == (imap_view_last_uid(s)))
			continue;
		context_update(s, c);
	}
}
