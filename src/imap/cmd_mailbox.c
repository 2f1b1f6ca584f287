/*
 * Mailbox commands: SELECT, EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE,
 * UNSUBSCRIBE, LIST, LSUB, STATUS, CLOSE, UNSELECT.
 */
#include "imap/session-private.h"

#include "imap/bodystructure.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Sends the reply for a store error text that may start with "[CODE]". */
static void
store_error(struct imap_session *s, char *err)
{
	imap_tagged(s, "NO", "%s", err != NULL ? err : "Failed");
	free(err);
}

static const char *
mailbox_arg(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    unsigned int want)
{
	const char *name = n == want ? imap_arg_astring(&a[0]) : NULL;

	if (name == NULL)
		imap_tagged(s, "BAD", "Invalid arguments");
	return name;
}

static void
deselect(struct imap_session *s)
{
	/* "$" and the contexts belong to the mailbox (RFC 5182, 5267) */
	imap_search_reset(s);
	imap_watch_selected(s, false);
	store_mailbox_close(&s->box);
	x_free(&s->keywords_known);
	x_free(&s->recent);
	s->nrecent = 0;
	s->nview = 0;
	if (s->state == IMAP_STATE_SELECTED)
		s->state = IMAP_STATE_AUTH;
}

/* SELECT (QRESYNC (uidvalidity modseq [known-uids [seq-match-data]])) */
struct qresync_params {
	bool on;
	uint32_t uidvalidity;
	uint64_t modseq;
	bool have_known;
	struct imap_seqset known;	/* known-uids */
};

static bool
arg_number(const struct imap_arg *a, unsigned long long max,
    unsigned long long *v_r)
{
	return a->type == IMAP_ARG_ATOM && str_to_ullong(a->str, v_r) == 0 &&
	    *v_r > 0 && *v_r <= max;
}

static bool
arg_seqset(const struct imap_arg *a, struct imap_seqset *set)
{
	const char *err;

	return a->type == IMAP_ARG_ATOM &&
	    imap_seqset_parse(a->str, 10000, set, &err) == 0 && !set->searchres;
}

/*
 * The select parameters: CONDSTORE (RFC 7162 3.1.8) and QRESYNC (3.2.5),
 * which needs ENABLE QRESYNC first. -1: BAD sent.
 */
static int
parse_select_params(struct imap_session *s, const struct imap_arg *list,
    struct qresync_params *qr)
{
	if (list->type != IMAP_ARG_LIST || list->count == 0)
		goto bad;
	for (unsigned int i = 0; i < list->count; i++) {
		const struct imap_arg *p = &list->list[i], *q;
		unsigned long long v;

		if (imap_arg_is_atom(p, "CONDSTORE")) {
			s->condstore = true;
			continue;
		}
		if (!imap_arg_is_atom(p, "QRESYNC") || i + 1 >= list->count)
			goto bad;
		if (!s->qresync) {
			imap_tagged(s, "BAD", "QRESYNC is not enabled");
			return -1;
		}
		q = &list->list[++i];
		if (q->type != IMAP_ARG_LIST || q->count < 2 || q->count > 4 ||
		    !arg_number(&q->list[0], UINT32_MAX, &v))
			goto bad;
		qr->uidvalidity = (uint32_t)v;
		if (!arg_number(&q->list[1], (1ULL << 63) - 1, &v))
			goto bad;
		qr->modseq = v;
		if (q->count >= 3) {
			if (!arg_seqset(&q->list[2], &qr->known))
				goto bad;
			imap_seqset_normalize(&qr->known, UINT32_MAX);
			qr->have_known = true;
		}
		if (q->count == 4) {
			/* (known-sequence-set known-uid-set): checked, not
			   needed (the expunge log, or its fallback, is exact
			   enough) */
			const struct imap_arg *m = &q->list[3];
			struct imap_seqset a1, a2;
			bool ok;

			if (m->type != IMAP_ARG_LIST || m->count != 2)
				goto bad;
			memset(&a1, 0, sizeof(a1));
			memset(&a2, 0, sizeof(a2));
			ok = arg_seqset(&m->list[0], &a1) && arg_seqset(&m->list[1], &a2);
			imap_seqset_free(&a1);
			imap_seqset_free(&a2);
			if (!ok)
				goto bad;
		}
		qr->on = true;
	}
	return 0;
bad:
	imap_tagged(s, "BAD", "Invalid SELECT parameters");
	return -1;
}

/*
 * After SELECT (QRESYNC ...) with the right UIDVALIDITY: what vanished and
 * what changed since the client's modseq (RFC 7162 3.2.5.1), within its
 * known UIDs when it gave them.
 */
static void
qresync_select(struct imap_session *s, const struct qresync_params *qr)
{
	const struct imap_seqset *known = qr->have_known ? &qr->known : NULL;
	const struct store_msg *msgs;
	unsigned int count;

	imap_send_vanished_earlier(s, known, qr->modseq);
	msgs = store_mailbox_msgs(s->box, &count);
	for (unsigned int i = 0; i < count; i++) {
		const struct store_msg *m = &msgs[i];
		struct buf b;

		if (m->modseq <= qr->modseq ||
		    (known != NULL && !imap_seqset_contains(known, m->uid)))
			continue;
		buf_init(&b, BUF_UNLIMITED);
		buf_printf(&b, "* %u FETCH (UID %u FLAGS ", i + 1, m->uid);
		imap_append_flags(&b, m, imap_msg_recent(s, m->uid));
		buf_printf(&b, " MODSEQ (%llu))\r\n", (unsigned long long)m->modseq);
		imap_write(s, b.data, b.len);
		buf_free(&b);
	}
}

static void
select_common(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool readonly)
{
	const char *name = n >= 1 && n <= 2 ? imap_arg_astring(&a[0]) : NULL;
	const struct store_msg *msgs;
	unsigned int count, unseen = 0;
	char *err = NULL;
	struct buf b;
	struct qresync_params qr;

	memset(&qr, 0, sizeof(qr));
	if (name == NULL) {
		imap_tagged(s, "BAD", "Invalid arguments");
		return;
	}
	if (n == 2 && parse_select_params(s, &a[1], &qr) < 0) {
		imap_seqset_free(&qr.known);
		return;
	}
	/* RFC 9051 7.1 and RFC 7162 3.2.11: the client learns where the
	   old mailbox's responses end */
	if (s->box != NULL && (s->rev2 || s->qresync))
		imap_printf(s, "* OK [CLOSED] Previous mailbox closed.\r\n");
	deselect(s);
	if (store_mailbox_open(s->acct, name, readonly, &s->box, &err) < 0) {
		imap_seqset_free(&qr.known);
		store_error(s, err);
		return;
	}
	s->readonly = readonly;
	s->state = IMAP_STATE_SELECTED;
	imap_watch_selected(s, true);
	msgs = store_mailbox_msgs(s->box, &count);
	for (unsigned int i = 0; i < count; i++) {
		(void)imap_keywords_learn(s, msgs[i].keywords);
		if (unseen == 0 && (msgs[i].flags & STORE_FLAG_SEEN) == 0)
			unseen = i + 1;
	}
	s->nview = count;
	imap_write_flags(s);
	buf_init(&b, BUF_UNLIMITED);
	{
		unsigned int recent = imap_recent_update(s);

		buf_printf(&b, "* %u EXISTS\r\n", count);
		/* IMAP4rev2: no RECENT, no UNSEEN, but the mailbox's LIST
		   line (RFC 9051 6.3.2) */
		if (s->rev2) {
			buf_append_str(&b, "* LIST () \".\" ");
			imap_append_nstr(&b, store_mailbox_name(s->box), false);
			buf_append_str(&b, "\r\n");
		} else {
			buf_printf(&b, "* %u RECENT\r\n", recent);
			if (unseen > 0)
				buf_printf(&b, "* OK [UNSEEN %u] First unseen.\r\n",
				    unseen);
		}
	}
	buf_printf(&b, "* OK [UIDVALIDITY %u] UIDs valid\r\n"
	    "* OK [UIDNEXT %u] Predicted next UID\r\n"
	    "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
	    store_mailbox_uidvalidity(s->box), store_mailbox_uidnext(s->box),
	    (unsigned long long)store_mailbox_highestmodseq(s->box));
	imap_write(s, b.data, b.len);
	buf_free(&b);
	if (qr.on && qr.uidvalidity == store_mailbox_uidvalidity(s->box))
		qresync_select(s, &qr);
	imap_seqset_free(&qr.known);
	imap_tagged(s, "OK", "[%s] %s completed.", readonly ? "READ-ONLY" : "READ-WRITE",
	    readonly ? "Examine" : "Select");
}

void
imap_cmd_select(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	select_common(s, a, n, false);
}

void
imap_cmd_examine(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	select_common(s, a, n, true);
}

void
imap_cmd_unselect(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	deselect(s);
	imap_tagged(s, "OK", "Unselect completed.");
}

void
imap_cmd_close(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	if (!s->readonly) {
		const struct store_msg *msgs;
		unsigned int count, nd = 0;
		uint32_t *uids;
		char *err = NULL;

		/* CLOSE expunges silently (RFC 9051 §6.4.2) */
		msgs = store_mailbox_msgs(s->box, &count);
		uids = xcalloc(count + 1, sizeof(*uids));
		for (unsigned int i = 0; i < count; i++) {
			if ((msgs[i].flags & STORE_FLAG_DELETED) != 0)
				uids[nd++] = msgs[i].uid;
		}
		if (nd > 0 && store_mailbox_expunge(s->box, uids, nd, &err) < 0) {
			log_warn("event=imap_close_expunge_failed error=\"%s\"", err);
			free(err);
		}
		free(uids);
	}
	deselect(s);
	imap_tagged(s, "OK", "Close completed.");
}

/*
 * CREATE name [(USE (\Archive ...))] (RFC 6154 CREATE-SPECIAL-USE). The
 * attributes end up space-separated in *use_r (malloc'd, NULL if none).
 * -1 after the reply (BAD syntax, NO [USEATTR]).
 */
static int
create_params(struct imap_session *s, const struct imap_arg *p, char **use_r)
{
	const struct imap_arg *attrs;
	struct buf b;

	*use_r = NULL;
	if (p->type != IMAP_ARG_LIST || p->count != 2 ||
	    !imap_arg_is_atom(&p->list[0], "USE") ||
	    p->list[1].type != IMAP_ARG_LIST) {
		imap_tagged(s, "BAD", "Unknown CREATE parameters");
		return -1;
	}
	attrs = &p->list[1];
	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "");
	for (unsigned int i = 0; i < attrs->count; i++) {
		const char *name = attrs->list[i].type == IMAP_ARG_ATOM ?
		    store_special_use_name(attrs->list[i].str) : NULL;

		if (name == NULL) {
			buf_free(&b);
			imap_tagged(s, "NO", "[USEATTR] Special-use attribute "
			    "not supported");
			return -1;
		}
		if (strstr(buf_cstr(&b), name) != NULL)
			continue;
		if (b.len > 0)
			buf_append_c(&b, ' ');
		buf_append_str(&b, name);
	}
	if (b.len > 0)
		*use_r = buf_steal(&b);
	else
		buf_free(&b);
	return 0;
}

void
imap_cmd_create(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	const char *name = n >= 1 && n <= 2 ? imap_arg_astring(&a[0]) : NULL;
	char *err = NULL, *clean, *use = NULL;
	size_t len;

	if (name == NULL) {
		imap_tagged(s, "BAD", "Invalid arguments");
		return;
	}
	if (n == 2 && create_params(s, &a[1], &use) < 0)
		return;
	/* "Foo." means "Foo" which may hold children (RFC 9051 §6.3.4) */
	clean = xstrdup(name);
	len = strlen(clean);
	if (len > 1 && clean[len - 1] == '.')
		clean[len - 1] = '\0';
	if (store_folder_create_special(s->acct, clean, use, &err) < 0) {
		store_error(s, err);
	} else {
		imap_notify_mailbox_change(s, NOTIFY_CHANGE_CREATE, clean, NULL);
		imap_tagged(s, "OK", "Create completed.");
	}
	free(clean);
	free(use);
}

void
imap_cmd_delete(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	const char *name = mailbox_arg(s, a, n, 1);
	char *err = NULL;

	if (name == NULL)
		return;
	if (s->box != NULL && strcmp(name, store_mailbox_name(s->box)) == 0)
		deselect(s);
	if (store_folder_delete(s->acct, name, &err) < 0) {
		store_error(s, err);
	} else {
		imap_notify_mailbox_change(s, NOTIFY_CHANGE_DELETE, name, NULL);
		imap_tagged(s, "OK", "Delete completed.");
	}
}

void
imap_cmd_rename(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	const char *from = n == 2 ? imap_arg_astring(&a[0]) : NULL;
	const char *to = n == 2 ? imap_arg_astring(&a[1]) : NULL;
	char *err = NULL;

	if (from == NULL || to == NULL) {
		imap_tagged(s, "BAD", "Invalid arguments");
		return;
	}
	if (store_folder_rename(s->acct, from, to, &err) < 0) {
		store_error(s, err);
	} else {
		imap_notify_mailbox_change(s, NOTIFY_CHANGE_RENAME, to, from);
		imap_tagged(s, "OK", "Rename completed.");
	}
}

static void
subscribe_common(struct imap_session *s, const struct imap_arg *a,
    unsigned int n, bool on)
{
	const char *name = mailbox_arg(s, a, n, 1);
	char *err = NULL;

	if (name == NULL)
		return;
	if (store_subscribe(s->acct, name, on, &err) < 0) {
		store_error(s, err);
	} else {
		imap_notify_mailbox_change(s, on ? NOTIFY_CHANGE_SUBSCRIBE :
		    NOTIFY_CHANGE_UNSUBSCRIBE, name, NULL);
		imap_tagged(s, "OK", "%s completed.", on ? "Subscribe" : "Unsubscribe");
	}
}

void
imap_cmd_subscribe(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	subscribe_common(s, a, n, true);
}

void
imap_cmd_unsubscribe(struct imap_session *s, const struct imap_arg *a,
    unsigned int n, bool uid)
{
	subscribe_common(s, a, n, false);
}

#define MAX_PATTERN 1024

/*
 * LIST wildcards: '*' matches anything, '%' anything but the separator.
 * Dynamic programming over (pattern, name) positions, so a hostile
 * pattern like "*%*%*%...x" costs O(pattern * name), not exponential time.
 */
static bool
wildmatch(const char *p, const char *s)
{
	size_t pl = strlen(p), sl = strlen(s);
	bool *prev, *cur, r;

	if (pl > MAX_PATTERN)
		return false;
	prev = xcalloc(sl + 1, sizeof(bool));
	cur = xcalloc(sl + 1, sizeof(bool));
	prev[0] = true;		/* empty pattern matches the empty name */
	for (size_t i = 1; i <= pl; i++) {
		char pc = p[i - 1];
		bool *t;

		cur[0] = prev[0] && (pc == '*' || pc == '%');
		for (size_t j = 1; j <= sl; j++) {
			if (pc == '*')
				cur[j] = prev[j] || cur[j - 1];
			else if (pc == '%')
				cur[j] = prev[j] || (cur[j - 1] && s[j - 1] != '.');
			else
				cur[j] = prev[j - 1] && s[j - 1] == pc;
		}
		t = prev;
		prev = cur;
		cur = t;
	}
	r = prev[sl];
	free(prev);
	free(cur);
	return r;
}

bool
imap_list_match(const char *pattern, const char *name)
{
	/* INBOX is case-insensitive: match it as "INBOX" */
	if (strncasecmp(pattern, "INBOX", 5) == 0 &&
	    (pattern[5] == '\0' || pattern[5] == '.')) {
		char *p = xstrdup(pattern);
		bool r;

		memcpy(p, "INBOX", 5);
		r = wildmatch(p, name);
		free(p);
		return r;
	}
	return wildmatch(pattern, name);
}

static bool
folder_subscribed(const struct store_folder *list, unsigned int count,
    const char *name)
{
	for (unsigned int i = 0; i < count; i++) {
		if (list[i].subscribed && strcmp(list[i].name, name) == 0)
			return true;
	}
	return false;
}

/*
 * LSUB with "%": a parent of a subscribed folder that the pattern matches
 * but that is not subscribed itself is listed as \Noselect (RFC 3501
 * 6.3.9), once: only for the first subscribed child that leads to it.
 */
static void
lsub_parents(struct imap_session *s, struct buf *b,
    const struct store_folder *list, unsigned int count, const char *pattern,
    const char *name)
{
	const char *dot;

	for (dot = strchr(name, '.'); dot != NULL; dot = strchr(dot + 1, '.')) {
		char *parent = xstrndup(name, (size_t)(dot - name));
		bool first = true;

		if (imap_list_match(pattern, parent) &&
		    !folder_subscribed(list, count, parent)) {
			size_t pl = strlen(parent);

			/* an earlier subscribed folder under it has listed it */
			for (unsigned int i = 0; i < count && first; i++) {
				if (strcmp(list[i].name, name) == 0)
					break;
				if (list[i].subscribed &&
				    strncmp(list[i].name, parent, pl) == 0 &&
				    list[i].name[pl] == '.')
					first = false;
			}
			if (first) {
				buf_append_str(b, "* LSUB (\\Noselect) \".\" ");
				imap_append_mailbox(s, b, parent);
				buf_append_str(b, "\r\n");
			}
		}
		free(parent);
	}
}

static void
list_common(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool lsub)
{
	const char *ref = n == 2 ? imap_arg_astring(&a[0]) : NULL;
	const char *pat = n == 2 ? imap_arg_astring(&a[1]) : NULL;
	struct store_folder *list;
	unsigned int count;
	char *err = NULL, *pattern;
	struct buf b;

	if (ref == NULL || pat == NULL) {
		imap_tagged(s, "BAD", "Invalid arguments");
		return;
	}
	if (!lsub && *pat == '\0') {
		imap_printf(s, "* LIST (\\Noselect) \".\" \"\"\r\n");
		imap_tagged(s, "OK", "List completed.");
		return;
	}
	if (store_folder_list(s->acct, &list, &count, &err) < 0) {
		store_error(s, err);
		return;
	}
	pattern = xasprintf("%s%s", ref, pat);
	if (!lsub)
		imap_folders_add_parents(&list, &count);
	buf_init(&b, BUF_UNLIMITED);
	for (unsigned int i = 0; i < count; i++) {
		const struct store_folder *f = &list[i];

		if (lsub && !f->subscribed)
			continue;
		if (!f->exists && !f->subscribed) {
			/* a level with no folder: "a" of "a.b" (RFC 3501 6.3.8) */
			if (imap_list_parent_match(&pattern, 1, f->name)) {
				buf_append_str(&b, "* LIST (\\Noselect \\HasChildren) \".\" ");
				imap_append_nstr(&b, f->name, false);
				buf_append_str(&b, "\r\n");
			}
			continue;
		}
		if (!imap_list_match(pattern, f->name)) {
			if (lsub)
				lsub_parents(s, &b, list, count, pattern, f->name);
			continue;
		}
		buf_printf(&b, "* %s (", lsub ? "LSUB" : "LIST");
		if (!f->exists)
			buf_append_str(&b, lsub ? "\\Noselect" : "\\NonExistent");
		else
			buf_append_str(&b, f->has_children ? "\\HasChildren" :
			    "\\HasNoChildren");
		if (f->special_use != NULL && !lsub)
			buf_printf(&b, " %s", f->special_use);
		if (f->subscribed && !lsub)
			buf_append_str(&b, " \\Subscribed");
		buf_append_str(&b, ") \".\" ");
		imap_append_mailbox(s, &b, f->name);
		buf_append_str(&b, "\r\n");
	}
	imap_write(s, b.data, b.len);
	buf_free(&b);
	free(pattern);
	store_folders_free(list, count);
	imap_tagged(s, "OK", "%s completed.", lsub ? "Lsub" : "List");
}

void
imap_cmd_list(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	/* selection options, a pattern list or RETURN: RFC 5258 (cmd_list.c) */
	if (n != 2 || a[0].type == IMAP_ARG_LIST || a[1].type == IMAP_ARG_LIST) {
		imap_list_extended(s, a, n);
		return;
	}
	list_common(s, a, n, false);
}

void
imap_cmd_lsub(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	list_common(s, a, n, true);
}

/* STATUS items (RFC 9051 6.3.11, RFC 7162, RFC 7889, RFC 8438, RFC 9208) */
static const char *const status_items[] = {
	"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN",
	"HIGHESTMODSEQ", "SIZE", "DELETED", "DELETED-STORAGE", "APPENDLIMIT",
};

bool
imap_status_items_valid(const struct imap_arg *items, unsigned int n)
{
	if (items == NULL || n == 0)
		return false;
	for (unsigned int i = 0; i < n; i++) {
		bool known = false;

		for (size_t j = 0; j < sizeof(status_items) / sizeof(status_items[0]); j++)
			known = known || imap_arg_is_atom(&items[i], status_items[j]);
		if (!known)
			return false;
	}
	return true;
}

int
imap_status_write(struct imap_session *s, const char *name,
    const struct imap_arg *items, unsigned int nitems, char **error_r)
{
	struct store_mailbox *box;
	const struct store_msg *msgs;
	unsigned int count, unseen = 0, deleted = 0, recent = 0;
	uint64_t size = 0, deleted_size = 0;
	uint32_t first_recent;
	char *err = NULL;
	struct buf b;

	if (store_mailbox_open(s->acct, name, true, &box, error_r) < 0)
		return -1;
	if (store_mailbox_recent(box, false, &first_recent, &err) < 0) {
		log_warn("event=imap_recent_failed error=\"%s\"", err);
		x_free(&err);
		first_recent = UINT32_MAX;
	}
	msgs = store_mailbox_msgs(box, &count);
	for (unsigned int i = 0; i < count; i++) {
		recent += msgs[i].uid >= first_recent;
		if ((msgs[i].flags & STORE_FLAG_SEEN) == 0)
			unseen++;
		if ((msgs[i].flags & STORE_FLAG_DELETED) != 0) {
			deleted++;
			deleted_size += msgs[i].size;
		}
		size += msgs[i].size;
	}
	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "* STATUS ");
	imap_append_mailbox(s, &b, name);
	buf_append_str(&b, " (");
	for (unsigned int i = 0; i < nitems; i++) {
		const struct imap_arg *it = &items[i];

		if (i > 0)
			buf_append_c(&b, ' ');
		if (imap_arg_is_atom(it, "MESSAGES"))
			buf_printf(&b, "MESSAGES %u", count);
		else if (imap_arg_is_atom(it, "RECENT"))
			buf_printf(&b, "RECENT %u", s->rev2 ? 0 : recent);
		else if (imap_arg_is_atom(it, "UIDNEXT"))
			buf_printf(&b, "UIDNEXT %u", store_mailbox_uidnext(box));
		else if (imap_arg_is_atom(it, "UIDVALIDITY"))
			buf_printf(&b, "UIDVALIDITY %u", store_mailbox_uidvalidity(box));
		else if (imap_arg_is_atom(it, "UNSEEN"))
			buf_printf(&b, "UNSEEN %u", unseen);
		else if (imap_arg_is_atom(it, "HIGHESTMODSEQ"))
			buf_printf(&b, "HIGHESTMODSEQ %llu",
			    (unsigned long long)store_mailbox_highestmodseq(box));
		else if (imap_arg_is_atom(it, "SIZE"))
			buf_printf(&b, "SIZE %llu", (unsigned long long)size);
		else if (imap_arg_is_atom(it, "DELETED"))
			buf_printf(&b, "DELETED %u", deleted);
		else if (imap_arg_is_atom(it, "DELETED-STORAGE"))
			/* RFC 9208 6.2: in units of 1024 octets, rounded up */
			buf_printf(&b, "DELETED-STORAGE %llu",
			    (unsigned long long)((deleted_size + 1023) / 1024));
		else if (imap_arg_is_atom(it, "APPENDLIMIT"))
			buf_printf(&b, "APPENDLIMIT %llu",
			    (unsigned long long)s->set.max_literal);
	}
	buf_append_str(&b, ")\r\n");
	imap_write(s, b.data, b.len);
	buf_free(&b);
	store_mailbox_close(&box);
	return 0;
}

void
imap_cmd_status(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	const char *name = n == 2 ? imap_arg_astring(&a[0]) : NULL;
	const struct imap_arg *items;
	unsigned int nitems = 0;
	char *err = NULL;

	if (name == NULL || (items = imap_arg_list(&a[1], &nitems)) == NULL ||
	    nitems == 0) {
		imap_tagged(s, "BAD", "Invalid arguments");
		return;
	}
	if (!imap_status_items_valid(items, nitems)) {
		imap_tagged(s, "BAD", "Unknown STATUS item");
		return;
	}
	if (imap_status_write(s, name, items, nitems, &err) < 0) {
		store_error(s, err);
		return;
	}
	imap_tagged(s, "OK", "Status completed.");
}
