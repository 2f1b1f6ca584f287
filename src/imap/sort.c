/*
 * SORT criteria, the per-message sort and thread keys and their cache.
 *
 * The cache lives in the session for the selected mailbox, keyed by UID
 * (a message's header never changes under its UID), so repeated SORT and
 * THREAD commands and the CONTEXT=SORT updates read each file once. Only
 * the first HEADER_READ_MAX bytes of a file are read.
 */
#include "imap/sort.h"

#include "imap/bodystructure.h"
#include "imap/session-private.h"
#include "lib/file.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "mail/charset.h"
#include "mail/date.h"
#include "mail/header.h"
#include "mail/subject.h"
#include "mail/thread.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HEADER_READ_MAX (256 * 1024)
#define FIELD_MAX 16384
#define REFS_MAX 100

/* the format of the keys in the index (store_msg_blobs_*); 2: strings
   folded by RFC 5051 in full (with decomposition) */
#define CACHE_KIND "imap-sort-2"

struct imap_sortcache {
	struct imap_msg_keys *e;	/* ascending UIDs */
	unsigned int n, cap;
	bool loaded;			/* the index's rows were read */
	uint32_t *dirty;		/* UIDs read from files, not yet saved */
	unsigned int ndirty;
};

static const struct {
	const char *name;
	enum imap_sort_key key;
} sort_names[] = {
	{ "ARRIVAL", SORT_ARRIVAL }, { "CC", SORT_CC }, { "DATE", SORT_DATE },
	{ "FROM", SORT_FROM }, { "SIZE", SORT_SIZE }, { "SUBJECT", SORT_SUBJECT },
	{ "TO", SORT_TO }, { "DISPLAYFROM", SORT_DISPLAYFROM },
	{ "DISPLAYTO", SORT_DISPLAYTO },
};

int
imap_sort_parse(const struct imap_arg *list, struct imap_sort_program *p,
    const char **error_r)
{
	const struct imap_arg *a;
	unsigned int n;
	bool reverse = false;

	memset(p, 0, sizeof(*p));
	if ((a = imap_arg_list(list, &n)) == NULL || n == 0) {
		*error_r = "SORT needs a list of criteria";
		return -1;
	}
	for (unsigned int i = 0; i < n; i++) {
		bool found = false;

		if (imap_arg_is_atom(&a[i], "REVERSE")) {
			if (reverse)
				break;
			reverse = true;
			continue;
		}
		for (size_t k = 0; k < sizeof(sort_names) / sizeof(sort_names[0]); k++) {
			if (!imap_arg_is_atom(&a[i], sort_names[k].name))
				continue;
			if (p->nkeys == IMAP_SORT_MAX_KEYS) {
				*error_r = "Too many sort criteria";
				return -1;
			}
			p->keys[p->nkeys] = sort_names[k].key;
			p->reverse[p->nkeys++] = reverse;
			found = true;
		}
		if (!found) {
			*error_r = "Unknown sort criterion";
			return -1;
		}
		reverse = false;
	}
	if (reverse || p->nkeys == 0) {
		*error_r = "REVERSE must precede a sort criterion";
		return -1;
	}
	return 0;
}

/* --- the keys of one message ------------------------------------------------- */

static char *
fold(const char *s, size_t len)
{
	struct buf b;

	buf_init(&b, FIELD_MAX * 4);
	buf_append_str(&b, "");
	(void)charset_utf8_fold(s, len, &b);
	return buf_steal(&b);
}

static char *
fold_decoded(const char *s)
{
	struct buf b;
	char *r;

	buf_init(&b, FIELD_MAX * 4);
	buf_append_str(&b, "");
	(void)charset_decode_header(s, strlen(s), &b);
	r = fold(b.data, b.len);
	buf_free(&b);
	return r;
}

/* RFC 5256 FROM/TO/CC and RFC 5957 DISPLAYFROM/DISPLAYTO of one field. */
static void
address_keys(const char *value, char **mailbox_r, char **display_r)
{
	char *name = NULL, *mailbox, *host;

	if (value == NULL || imap_address_first(value, &name, &mailbox, &host) < 0) {
		*mailbox_r = xstrdup("");
		if (display_r != NULL)
			*display_r = xstrdup("");
		return;
	}
	*mailbox_r = fold(mailbox, strlen(mailbox));
	if (display_r != NULL) {
		if (name != NULL && name[0] != '\0') {
			*display_r = fold_decoded(name);
		} else if (host == NULL) {
			/* a group: its name is what a reader sees */
			*display_r = fold_decoded(mailbox);
		} else {
			/* no display name: the addr-spec (RFC 5957 §3) */
			char *spec = xmalloc(strlen(mailbox) + strlen(host) + 2);

			strcpy(spec, mailbox);
			strcat(spec, "@");
			strcat(spec, host);
			*display_r = fold(spec, strlen(spec));
			free(spec);
		}
	}
	free(name);
	free(mailbox);
	free(host);
}

/* The keys from the file at path (also on a pool thread: nothing shared). */
static void
keys_fill_path(const char *path, uint32_t uid, time_t internaldate,
    struct imap_msg_keys *k)
{
	char *data = NULL;
	char *subject = NULL, *from = NULL, *to = NULL, *cc = NULL, *date = NULL;
	char *mid = NULL, *refs = NULL, *irt = NULL;
	size_t len = 0;

	memset(k, 0, sizeof(*k));
	k->uid = uid;
	k->date = internaldate;
	if (file_read_head(path, HEADER_READ_MAX, &data, &len) == 0) {
		size_t end = mail_header_block_end(data, 0, len);

		subject = mail_header_get(data, 0, end, "Subject", FIELD_MAX);
		from = mail_header_get(data, 0, end, "From", FIELD_MAX);
		to = mail_header_get(data, 0, end, "To", FIELD_MAX);
		cc = mail_header_get(data, 0, end, "Cc", FIELD_MAX);
		date = mail_header_get(data, 0, end, "Date", FIELD_MAX);
		mid = mail_header_get(data, 0, end, "Message-ID", FIELD_MAX);
		refs = mail_header_get(data, 0, end, "References", FIELD_MAX);
		irt = mail_header_get(data, 0, end, "In-Reply-To", FIELD_MAX);
	}
	free(data);
	if (date != NULL)
		(void)mail_date_parse(date, strlen(date), &k->date);
	k->subject = mail_base_subject(subject != NULL ? subject : "",
	    subject != NULL ? strlen(subject) : 0, FIELD_MAX, &k->subject_reply);
	address_keys(from, &k->from, &k->dfrom);
	address_keys(to, &k->to, &k->dto);
	address_keys(cc, &k->cc, NULL);
	if (mid != NULL) {
		unsigned int n;
		char **ids = thread_parse_ids(mid, 1, &n);

		if (n == 1) {
			k->message_id = ids[0];
			ids[0] = NULL;
		}
		thread_ids_free(ids, n);
	}
	/* References; without it, the first id of In-Reply-To (RFC 5256) */
	k->refs = thread_parse_ids(refs, REFS_MAX, &k->nrefs);
	if (k->nrefs == 0 && irt != NULL) {
		unsigned int n;
		char **ids = thread_parse_ids(irt, REFS_MAX, &n);

		thread_ids_free(k->refs, 0);
		k->refs = NULL;
		if (n > 0) {
			k->refs = xcalloc(1, sizeof(*k->refs));
			k->refs[0] = ids[0];
			ids[0] = NULL;
			k->nrefs = 1;
		}
		thread_ids_free(ids, n);
	}
	free(subject);
	free(from);
	free(to);
	free(cc);
	free(date);
	free(mid);
	free(refs);
	free(irt);
}

static void
keys_fill(struct imap_session *s, const struct store_msg *m,
    struct imap_msg_keys *k)
{
	char *path = store_msg_full_path(s->box, m);

	keys_fill_path(path, m->uid, m->internaldate, k);
	free(path);
}

static void
keys_free_strings(struct imap_msg_keys *k)
{
	free(k->subject);
	free(k->from);
	free(k->to);
	free(k->cc);
	free(k->dfrom);
	free(k->dto);
	free(k->message_id);
	thread_ids_free(k->refs, k->nrefs);
	memset(k, 0, sizeof(*k));
}

static void
keys_free(struct imap_msg_keys *k)
{
	keys_free_strings(k);
}

void
imap_sortcache_free(struct imap_sortcache **cache)
{
	if (*cache == NULL)
		return;
	for (unsigned int i = 0; i < (*cache)->n; i++)
		keys_free(&(*cache)->e[i]);
	free((*cache)->e);
	free((*cache)->dirty);
	free(*cache);
	*cache = NULL;
}

/* Drops the entries of messages no longer in the mailbox. */
static void
cache_prune(struct imap_session *s, struct imap_sortcache *c)
{
	unsigned int w = 0;

	for (unsigned int i = 0; i < c->n; i++) {
		if (store_mailbox_find_uid(s->box, c->e[i].uid) < 0)
			keys_free(&c->e[i]);
		else
			c->e[w++] = c->e[i];
	}
	c->n = w;
}

/*
 * The index form: 8 bytes of date (little-endian), a reply byte, then
 * NUL-terminated subject, from, to, cc, dfrom, dto, message-id ("" for
 * none) and the references separated by spaces.
 */
static void
keys_pack(const struct imap_msg_keys *k, struct buf *b)
{
	const char *strs[] = { k->subject, k->from, k->to, k->cc, k->dfrom,
	    k->dto, k->message_id != NULL ? k->message_id : "" };
	uint64_t d = (uint64_t)k->date;

	for (int i = 0; i < 8; i++)
		buf_append_c(b, (char)((d >> (8 * i)) & 0xff));
	buf_append_c(b, k->subject_reply ? 1 : 0);
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		buf_append(b, strs[i], strlen(strs[i]) + 1);
	for (unsigned int i = 0; i < k->nrefs; i++) {
		if (i > 0)
			buf_append_c(b, ' ');
		buf_append_str(b, k->refs[i]);
	}
	buf_append_c(b, '\0');
}

/* -1 when the data is not what keys_pack() wrote (then it is re-read). */
static int
keys_unpack(const unsigned char *p, size_t len, struct imap_msg_keys *k)
{
	char **strs[] = { &k->subject, &k->from, &k->to, &k->cc, &k->dfrom,
	    &k->dto, &k->message_id };
	size_t pos = 9;
	uint64_t d = 0;
	const char *end;

	memset(k, 0, sizeof(*k));
	if (len < 9 + 8)
		return -1;
	for (int i = 0; i < 8; i++)
		d |= (uint64_t)p[i] << (8 * i);
	k->date = (time_t)d;
	k->subject_reply = p[8] != 0;
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]) + 1; i++) {
		end = memchr(p + pos, '\0', len - pos);
		if (end == NULL) {
			keys_free_strings(k);
			return -1;
		}
		if (i < sizeof(strs) / sizeof(strs[0])) {
			*strs[i] = xstrdup((const char *)p + pos);
		} else {
			k->refs = thread_parse_ids((const char *)p + pos, REFS_MAX,
			    &k->nrefs);
		}
		pos = (size_t)(end - (const char *)p) + 1;
	}
	if (k->message_id[0] == '\0')
		x_free(&k->message_id);
	return 0;
}

static void
load_row(uint32_t uid, const void *data, size_t len, void *ctx)
{
	struct imap_sortcache *c = ctx;
	struct imap_msg_keys k;

	/* rows come in UID order: appending keeps the array sorted */
	if ((c->n > 0 && c->e[c->n - 1].uid >= uid) ||
	    keys_unpack(data, len, &k) < 0)
		return;
	k.uid = uid;
	if (c->n == c->cap) {
		c->cap = c->cap == 0 ? 64 : c->cap * 2;
		c->e = xreallocarray(c->e, c->cap, sizeof(*c->e));
	}
	c->e[c->n++] = k;
}

static void
cache_load(struct imap_session *s, struct imap_sortcache *c)
{
	char *err = NULL;

	c->loaded = true;
	/* a cache that cannot be read costs time, not correctness */
	if (store_msg_blobs_load(s->box, CACHE_KIND, load_row, c, &err) < 0) {
		log_debug("event=imap_sortcache_load_failed error=\"%s\"", err);
		free(err);
	}
}

void
imap_sortcache_flush(struct imap_session *s)
{
	struct imap_sortcache *c = s->sortcache;
	const void **data;
	size_t *lens;
	struct buf *bufs;
	unsigned int n = 0;
	char *err = NULL;

	if (c == NULL || c->ndirty == 0)
		return;
	data = xcalloc(c->ndirty, sizeof(*data));
	lens = xcalloc(c->ndirty, sizeof(*lens));
	bufs = xcalloc(c->ndirty, sizeof(*bufs));
	for (unsigned int i = 0; i < c->ndirty; i++) {
		unsigned int lo = 0, hi = c->n;

		while (lo < hi) {
			unsigned int mid = lo + (hi - lo) / 2;

			if (c->e[mid].uid < c->dirty[i])
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == c->n || c->e[lo].uid != c->dirty[i])
			continue;	/* pruned meanwhile */
		buf_init(&bufs[n], BUF_UNLIMITED);
		keys_pack(&c->e[lo], &bufs[n]);
		c->dirty[n] = c->dirty[i];
		data[n] = bufs[n].data;
		lens[n] = bufs[n].len;
		n++;
	}
	if (store_msg_blobs_save(s->box, CACHE_KIND, c->dirty, data, lens, n,
	    &err) < 0) {
		log_debug("event=imap_sortcache_save_failed error=\"%s\"", err);
		free(err);
	}
	for (unsigned int i = 0; i < n; i++)
		buf_free(&bufs[i]);
	free(bufs);
	free(data);
	free(lens);
	c->ndirty = 0;
}

static struct imap_sortcache *
cache_get(struct imap_session *s)
{
	unsigned int count;

	(void)store_mailbox_msgs(s->box, &count);
	if (s->sortcache == NULL)
		s->sortcache = xcalloc(1, sizeof(*s->sortcache));
	if (!s->sortcache->loaded)
		cache_load(s, s->sortcache);
	/* more entries than messages: expunged ones linger */
	if (s->sortcache->n > count + 64)
		cache_prune(s, s->sortcache);
	return s->sortcache;
}

/* Where uid is in the cache, or where it would go (*found_r false). */
static unsigned int
cache_find(const struct imap_sortcache *c, uint32_t uid, bool *found_r)
{
	unsigned int lo = 0, hi = c->n;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (c->e[mid].uid == uid) {
			*found_r = true;
			return mid;
		}
		if (c->e[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found_r = false;
	return lo;
}

/* Makes room at lo for keys read from a file (to be saved). */
static struct imap_msg_keys *
cache_insert(struct imap_sortcache *c, unsigned int lo, uint32_t uid)
{
	if (c->n == c->cap) {
		c->cap = c->cap == 0 ? 64 : c->cap * 2;
		c->e = xreallocarray(c->e, c->cap, sizeof(*c->e));
	}
	memmove(&c->e[lo + 1], &c->e[lo], (c->n - lo) * sizeof(*c->e));
	c->n++;
	c->dirty = xreallocarray(c->dirty, c->ndirty + 1, sizeof(*c->dirty));
	c->dirty[c->ndirty++] = uid;
	return &c->e[lo];
}

const struct imap_msg_keys *
imap_msg_keys_get(struct imap_session *s, unsigned int idx)
{
	const struct store_msg *msgs;
	struct imap_sortcache *c;
	unsigned int count, at;
	bool found;

	msgs = store_mailbox_msgs(s->box, &count);
	if (idx >= count)
		panic("imap_msg_keys_get: index %u of %u", idx, count);
	c = cache_get(s);
	at = cache_find(c, msgs[idx].uid, &found);
	if (!found)
		keys_fill(s, &msgs[idx], cache_insert(c, at, msgs[idx].uid));
	return &c->e[at];
}

/* --- reading keys off the loop ------------------------------------------------ */

struct keys_job {
	struct keys_want {
		uint32_t uid;
		time_t internaldate;
		char *path;
		struct imap_msg_keys k;
	} *want;
	unsigned int n;
	void (*done)(struct imap_session *s, void *ctx);
	void *ctx;
};

static void
keys_work(void *arg)
{
	struct keys_job *j = arg;

	for (unsigned int i = 0; i < j->n; i++)
		keys_fill_path(j->want[i].path, j->want[i].uid,
		    j->want[i].internaldate, &j->want[i].k);
}

static void
keys_done(struct imap_session *s, void *arg)
{
	struct keys_job *j = arg;

	for (unsigned int i = 0; i < j->n; i++) {
		struct keys_want *w = &j->want[i];
		struct imap_sortcache *c;
		unsigned int at;
		bool found;

		free(w->path);
		if (s == NULL) {
			keys_free_strings(&w->k);
			continue;
		}
		c = cache_get(s);
		at = cache_find(c, w->uid, &found);
		if (found)
			keys_free_strings(&w->k);
		else
			*cache_insert(c, at, w->uid) = w->k;
	}
	free(j->want);
	j->done(s, j->ctx);
	free(j);
}

void
imap_msg_keys_prefetch(struct imap_session *s, const unsigned int *idx,
    unsigned int n, void (*done)(struct imap_session *s, void *ctx), void *ctx)
{
	const struct store_msg *msgs;
	struct imap_sortcache *c = cache_get(s);
	struct keys_job *j;
	unsigned int count;

	msgs = store_mailbox_msgs(s->box, &count);
	j = xcalloc(1, sizeof(*j));
	j->want = xcalloc(n + 1, sizeof(*j->want));
	j->done = done;
	j->ctx = ctx;
	for (unsigned int i = 0; i < n; i++) {
		const struct store_msg *m = &msgs[idx[i]];
		bool found;

		(void)cache_find(c, m->uid, &found);
		if (found)
			continue;
		j->want[j->n].uid = m->uid;
		j->want[j->n].internaldate = m->internaldate;
		j->want[j->n].path = store_msg_full_path(s->box, m);
		j->n++;
	}
	if (j->n == 0) {
		free(j->want);
		free(j);
		done(s, ctx);
		return;
	}
	imap_run_blocking(s, keys_work, keys_done, j);
}

bool
imap_sort_needs_headers(const struct imap_sort_program *p)
{
	for (unsigned int i = 0; i < p->nkeys; i++) {
		if (p->keys[i] != SORT_ARRIVAL && p->keys[i] != SORT_SIZE)
			return true;
	}
	return false;
}

/* --- sorting ------------------------------------------------------------------------ */

struct sort_item {
	unsigned int idx;
	const struct imap_msg_keys *k;	/* NULL when no key needs headers */
	uint64_t size;
	time_t arrival;
};

static const struct imap_sort_program *sort_prog;

static int
cmp_str(const char *a, const char *b)
{
	int c = strcmp(a != NULL ? a : "", b != NULL ? b : "");

	return c < 0 ? -1 : c > 0;
}

static int
cmp_items(const void *pa, const void *pb)
{
	const struct sort_item *a = pa, *b = pb;

	for (unsigned int i = 0; i < sort_prog->nkeys; i++) {
		int c = 0;

		switch (sort_prog->keys[i]) {
		case SORT_ARRIVAL:
			c = a->arrival < b->arrival ? -1 : a->arrival > b->arrival;
			break;
		case SORT_SIZE:
			c = a->size < b->size ? -1 : a->size > b->size;
			break;
		case SORT_DATE:
			c = a->k->date < b->k->date ? -1 : a->k->date > b->k->date;
			break;
		case SORT_SUBJECT:
			c = cmp_str(a->k->subject, b->k->subject);
			break;
		case SORT_FROM:
			c = cmp_str(a->k->from, b->k->from);
			break;
		case SORT_TO:
			c = cmp_str(a->k->to, b->k->to);
			break;
		case SORT_CC:
			c = cmp_str(a->k->cc, b->k->cc);
			break;
		case SORT_DISPLAYFROM:
			c = cmp_str(a->k->dfrom, b->k->dfrom);
			break;
		case SORT_DISPLAYTO:
			c = cmp_str(a->k->dto, b->k->dto);
			break;
		}
		if (c != 0)
			return sort_prog->reverse[i] ? -c : c;
	}
	/* the sequence number decides, whatever REVERSE said */
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

void
imap_sort_indexes(struct imap_session *s, const struct imap_sort_program *p,
    unsigned int *idx, unsigned int n)
{
	const struct store_msg *msgs;
	struct sort_item *items;
	unsigned int count;
	bool headers = imap_sort_needs_headers(p);

	msgs = store_mailbox_msgs(s->box, &count);
	items = xcalloc(n + 1, sizeof(*items));
	/* first fill the cache (it may move), then take pointers */
	if (headers) {
		for (unsigned int i = 0; i < n; i++)
			(void)imap_msg_keys_get(s, idx[i]);
	}
	for (unsigned int i = 0; i < n; i++) {
		items[i].idx = idx[i];
		items[i].size = msgs[idx[i]].size;
		items[i].arrival = msgs[idx[i]].internaldate;
		items[i].k = headers ? imap_msg_keys_get(s, idx[i]) : NULL;
	}
	sort_prog = p;
	qsort(items, n, sizeof(*items), cmp_items);
	sort_prog = NULL;
	for (unsigned int i = 0; i < n; i++)
		idx[i] = items[i].idx;
	free(items);
	imap_sortcache_flush(s);
}
