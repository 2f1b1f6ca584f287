/*
 * NOTIFY (RFC 5465): which changes a session is told of without asking.
 *
 * The selected mailbox goes the way IDLE goes (imap_sync_selected: EXISTS,
 * EXPUNGE or VANISHED, FETCH FLAGS with MODSEQ), but is pushed whenever no
 * command runs, not only in IDLE; MessageNew's fetch attributes add a FETCH
 * for each new message. Every other mailbox a filter names gets a read-only
 * store handle of its own: the store's change callback (inotify for mail
 * delivered by the smtp worker, the shared folder state for this process's
 * sessions) schedules a sync, and a change in what the client watches is
 * sent as STATUS. CREATE, DELETE, RENAME and (UN)SUBSCRIBE by one session
 * reach the other sessions of the account as LIST responses: those of
 * this process from the list of NOTIFY sessions, those of the other imap
 * workers through the glue (on_mailbox_change, imap_notify_foreign_change;
 * the master passes it on).
 *
 * What waits for a command to end: notifications come out only while no
 * command runs (or in IDLE), so no untagged response lands in the middle
 * of another command's. Output the client does not read ends NOTIFY with
 * [NOTIFICATIONOVERFLOW] rather than growing without bound.
 */
#include "imap/mutf7.h"
#include "imap/notify.h"
#include "imap/session-private.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <event2/bufferevent.h>
#include <event2/event.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Most mailboxes one session watches besides the selected one. */
#define NOTIFY_MAX_BOXES 500
/* Mailbox-list responses kept for a busy session before overflow. */
#define NOTIFY_MAX_PENDING (64 * 1024)
/* How long output may stay above IMAP_OUTPUT_HIGH before overflow. */
#define NOTIFY_MAX_BLOCKED_SECS 60

struct notify_box {
	struct imap_notify *n;
	char *name;
	struct store_mailbox *box;	/* read-only */
	unsigned int events;
	/* what the client was last told, or what it was when watching began */
	unsigned int messages;
	uint32_t uidnext, uidvalidity;
	uint64_t modseq;
};

struct imap_notify {
	struct imap_session *s;
	struct imap_notify *prev, *next;	/* every NOTIFY session */
	struct imap_notify_spec spec;	/* fetch_atts are not kept */
	unsigned int sel_events;	/* for the selected mailbox */
	bool sel_delayed;
	struct imap_fetch_spec *sel_fetch;	/* MessageNew (fetch-att) */
	struct notify_box *boxes;
	unsigned int nboxes;
	bool polls;			/* some box is not pushed (no inotify) */
	bool watching;			/* holds a reference on the inotify reader */
	bool pending;			/* something changed while busy */
	time_t blocked_since;		/* the client stopped reading, or 0 */
	struct buf out;			/* LIST responses waiting */
	struct event *ev;		/* runs the checks on the loop */
	struct event *poll_ev;
	struct event *retry_ev;		/* output drained yet? */
};

static struct imap_notify *all_sessions;

static bool
can_send(const struct imap_session *s)
{
	return !s->closing && (s->wait == WAIT_NONE || s->wait == WAIT_IDLE);
}

/* --- which mailboxes, which events --------------------------------------------- */

/*
 * The events for a mailbox that is not the selected one: the first group
 * whose filter takes it decides, so "(inboxes NONE) (personal ...)" leaves
 * INBOX out.
 */
static unsigned int
events_for(const struct imap_notify_spec *spec, const char *name,
    bool subscribed)
{
	for (unsigned int i = 0; i < spec->ngroups; i++) {
		const struct imap_notify_group *g = &spec->groups[i];
		bool match = false;

		switch (g->filter) {
		case NOTIFY_FILTER_SELECTED:
		case NOTIFY_FILTER_SELECTED_DELAYED:
			break;
		case NOTIFY_FILTER_INBOXES:
			/* mail is delivered into INBOX only (Junk is the filter's
			   choice, not a place the sender addresses) */
			match = strcmp(name, "INBOX") == 0;
			break;
		case NOTIFY_FILTER_PERSONAL:
			match = true;
			break;
		case NOTIFY_FILTER_SUBSCRIBED:
			match = subscribed;
			break;
		case NOTIFY_FILTER_SUBTREE:
		case NOTIFY_FILTER_MAILBOXES:
			match = imap_notify_names_match(g, name);
			break;
		}
		if (match)
			return g->events;
	}
	return 0;
}

static bool
is_selected_name(const struct imap_session *s, const char *name)
{
	return s->box != NULL && strcmp(store_mailbox_name(s->box), name) == 0;
}

static void box_changed_cb(void *ctx);

static void
box_snapshot(struct notify_box *b, unsigned int *messages_r,
    uint32_t *uidnext_r, uint32_t *uidvalidity_r, uint64_t *modseq_r)
{
	store_mailbox_msgs(b->box, messages_r);
	*uidnext_r = store_mailbox_uidnext(b->box);
	*uidvalidity_r = store_mailbox_uidvalidity(b->box);
	*modseq_r = store_mailbox_highestmodseq(b->box);
}

static void
box_close(struct notify_box *b)
{
	if (b->box != NULL) {
		store_mailbox_set_notify(b->box, NULL, NULL);
		store_mailbox_close(&b->box);
	}
	x_free(&b->name);
}

/* "* STATUS name (...)" with the items the box's events call for (6). */
static void
send_status(struct imap_session *s, struct notify_box *b)
{
	struct buf out;
	const char *sep = "";

	buf_init(&out, BUF_UNLIMITED);
	buf_append_str(&out, "* STATUS ");
	imap_append_mailbox(s, &out, b->name);
	buf_append_str(&out, " (");
	if ((b->events & (NOTIFY_EV_MESSAGE_NEW | NOTIFY_EV_MESSAGE_EXPUNGE)) != 0) {
		buf_printf(&out, "MESSAGES %u", b->messages);
		sep = " ";
	}
	if ((b->events & NOTIFY_EV_MESSAGE_NEW) != 0) {
		buf_printf(&out, "%sUIDNEXT %u", sep, b->uidnext);
		sep = " ";
	}
	if ((b->events & (NOTIFY_EV_MESSAGE_NEW | NOTIFY_EV_FLAG_CHANGE)) != 0) {
		buf_printf(&out, "%sUIDVALIDITY %u", sep, b->uidvalidity);
		sep = " ";
	}
	/* CONDSTORE is always offered, so FlagChange carries the modseq */
	if ((b->events & NOTIFY_EV_FLAG_CHANGE) != 0)
		buf_printf(&out, "%sHIGHESTMODSEQ %llu", sep,
		    (unsigned long long)b->modseq);
	buf_append_str(&out, ")\r\n");
	imap_write(s, out.data, out.len);
	buf_free(&out);
}

/*
 * (Re)builds the watched mailboxes from the folder list: handles of
 * mailboxes still watched are kept with what the client was told, new
 * ones start from the mailbox as it is now.
 */
static void
boxes_rebuild(struct imap_notify *n)
{
	struct imap_session *s = n->s;
	struct store_folder *list = NULL;
	unsigned int count = 0, nnew = 0;
	struct notify_box *nb;
	char *err = NULL;

	if (store_folder_list(s->acct, &list, &count, &err) < 0) {
		log_warn("sid=%s event=imap_notify_list_failed error=\"%s\"",
		    s->sid, err);
		free(err);
		return;
	}
	nb = xcalloc(count > 0 ? count : 1, sizeof(*nb));
	n->polls = false;
	for (unsigned int i = 0; i < count && nnew < NOTIFY_MAX_BOXES; i++) {
		unsigned int ev;
		struct notify_box *b = &nb[nnew];

		if (!list[i].exists)
			continue;
		ev = events_for(&n->spec, list[i].name, list[i].subscribed) &
		    NOTIFY_EV_MESSAGE;
		if (ev == 0)
			continue;
		for (unsigned int j = 0; j < n->nboxes; j++) {
			if (n->boxes[j].name != NULL &&
			    strcmp(n->boxes[j].name, list[i].name) == 0) {
				*b = n->boxes[j];
				memset(&n->boxes[j], 0, sizeof(n->boxes[j]));
				break;
			}
		}
		if (b->box == NULL) {
			if (store_mailbox_open(s->acct, list[i].name, true, &b->box,
			    &err) < 0) {
				log_debug("sid=%s event=imap_notify_open_failed error=\"%s\"",
				    s->sid, err);
				x_free(&err);
				continue;
			}
			b->name = xstrdup(list[i].name);
			box_snapshot(b, &b->messages, &b->uidnext, &b->uidvalidity,
			    &b->modseq);
		}
		b->n = n;
		b->events = ev;
		store_mailbox_set_notify(b->box, box_changed_cb, b);
		if (!store_mailbox_watched(b->box))
			n->polls = true;
		nnew++;
	}
	if (count > nnew && nnew == NOTIFY_MAX_BOXES)
		log_warn("sid=%s event=imap_notify_too_many boxes=%u watched=%u",
		    s->sid, count, nnew);
	for (unsigned int j = 0; j < n->nboxes; j++)
		box_close(&n->boxes[j]);
	free(n->boxes);
	n->boxes = nb;
	n->nboxes = nnew;
	store_folders_free(list, count);
	if (n->polls) {
		struct timeval tv = { .tv_sec = s->set.idle_poll_ms / 1000,
		    .tv_usec = (s->set.idle_poll_ms % 1000) * 1000 };

		event_add(n->poll_ev, &tv);
	} else {
		event_del(n->poll_ev);
	}
}

/* --- sending -------------------------------------------------------------------- */

static void notify_stop(struct imap_session *s);

/*
 * The client does not keep up (RFC 5465 5.8): mailbox-list responses have
 * piled up, or it has not read its output for a minute. NOTIFY ends as
 * after NOTIFY NONE; the client resynchronizes and sets it again.
 */
static bool
overflowed(struct imap_session *s)
{
	struct imap_notify *n = s->notify;

	if (n->out.len <= NOTIFY_MAX_PENDING && (n->blocked_since == 0 ||
	    time(NULL) - n->blocked_since < NOTIFY_MAX_BLOCKED_SECS))
		return false;
	log_info("sid=%s event=imap_notify_overflow pending=%zu waiting=%zu",
	    s->sid, imap_output_pending(s), n->out.len);
	notify_stop(s);
	imap_printf(s, "* OK [NOTIFICATIONOVERFLOW] Too many notifications"
	    " were waiting; NOTIFY is off\r\n");
	return true;
}

/* Sends what changed, if the session may be told now. */
static void
notify_run(struct imap_session *s)
{
	struct imap_notify *n = s->notify;

	if (n == NULL)
		return;
	if (!can_send(s)) {
		n->pending = true;
		return;
	}
	/* a big FETCH may still be leaving: wait for the socket, not for
	   the next command, and end NOTIFY only if it never drains */
	if (imap_output_pending(s) > IMAP_OUTPUT_HIGH) {
		struct timeval tv = { .tv_sec = 1, .tv_usec = 0 };

		if (n->blocked_since == 0)
			n->blocked_since = time(NULL);
		n->pending = true;
		if (!overflowed(s))
			event_add(n->retry_ev, &tv);
		return;
	}
	n->blocked_since = 0;
	n->pending = false;
	if (overflowed(s))
		return;
	if (n->out.len > 0) {
		imap_write(s, n->out.data, n->out.len);
		buf_reset(&n->out);
	}
	/* the selected mailbox, as in IDLE (selected-delayed: EXPUNGE only
	   where the base protocol allows it, so only from inside commands) */
	if (s->box != NULL && n->sel_events != 0 && !n->sel_delayed &&
	    store_mailbox_changed(s->box))
		imap_sync_selected(s);
	for (unsigned int i = 0; i < n->nboxes; i++) {
		struct notify_box *b = &n->boxes[i];
		unsigned int messages;
		uint32_t uidnext, uidvalidity;
		uint64_t modseq;
		bool tell = false;
		char *err = NULL;

		if (!store_mailbox_changed(b->box))
			continue;
		if (store_mailbox_sync(b->box, NULL, &err) < 0) {
			log_debug("sid=%s event=imap_notify_sync_failed error=\"%s\"",
			    s->sid, err);
			free(err);
			continue;
		}
		box_snapshot(b, &messages, &uidnext, &uidvalidity, &modseq);
		if ((b->events & NOTIFY_EV_MESSAGE_NEW) != 0)
			tell |= uidnext != b->uidnext || messages != b->messages ||
			    uidvalidity != b->uidvalidity;
		if ((b->events & NOTIFY_EV_MESSAGE_EXPUNGE) != 0)
			tell |= messages != b->messages;
		if ((b->events & NOTIFY_EV_FLAG_CHANGE) != 0)
			tell |= modseq != b->modseq || uidvalidity != b->uidvalidity;
		b->messages = messages;
		b->uidnext = uidnext;
		b->uidvalidity = uidvalidity;
		b->modseq = modseq;
		/* the selected mailbox is reported as selected, never by STATUS */
		if (tell && !is_selected_name(s, b->name))
			send_status(s, b);
	}
}

static void
notify_ev_cb(evutil_socket_t fd, short what, void *arg)
{
	notify_run(arg);
}

/* From inside the store: only schedule. */
static void
box_changed_cb(void *ctx)
{
	struct notify_box *b = ctx;

	event_active(b->n->ev, EV_TIMEOUT, 0);
}

static void
poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session *s = arg;

	notify_run(s);
	if (s->notify != NULL && s->notify->polls) {
		struct timeval tv = { .tv_sec = s->set.idle_poll_ms / 1000,
		    .tv_usec = (s->set.idle_poll_ms % 1000) * 1000 };

		event_add(s->notify->poll_ev, &tv);
	}
}

/* --- hooks from the engine -------------------------------------------------------- */

bool
imap_notify_selected_push(const struct imap_session *s)
{
	return s->notify != NULL && s->notify->sel_events != 0 &&
	    !s->notify->sel_delayed && s->wait == WAIT_NONE;
}

void
imap_notify_new_messages(struct imap_session *s, unsigned int from,
    unsigned int to)
{
	struct imap_notify *n = s->notify;

	if (n == NULL || n->sel_fetch == NULL ||
	    (n->sel_events & NOTIFY_EV_MESSAGE_NEW) == 0)
		return;
	for (unsigned int i = from; i < to; i++)
		imap_fetch_spec_send(s, n->sel_fetch, i);
}

void
imap_notify_command_done(struct imap_session *s)
{
	struct imap_notify *n = s->notify;

	if (n == NULL || !can_send(s))
		return;
	if (n->pending || n->out.len > 0 ||
	    (s->box != NULL && n->sel_events != 0 && !n->sel_delayed &&
	    store_mailbox_changed(s->box)))
		event_active(n->ev, EV_TIMEOUT, 0);
}

static void
append_list(struct imap_session *to, struct buf *out, const char *attrs,
    const char *name, const char *oldname)
{
	buf_printf(out, "* LIST (%s) \".\" ", attrs);
	imap_append_mailbox(to, out, name);
	if (oldname != NULL) {
		/* RFC 5465 5.4: the old name as extended data */
		buf_append_str(out, " (\"OLDNAME\" (");
		imap_append_mailbox(to, out, oldname);
		buf_append_str(out, "))");
	}
	buf_append_str(out, "\r\n");
}

/* The NOTIFY sessions of the account at root but self hear of a change. */
static void
mailbox_change(const struct imap_session *s, const char *root,
    enum imap_notify_change what, const char *name, const char *oldname)
{
	struct imap_notify *next;

	for (struct imap_notify *n = all_sessions; n != NULL; n = next) {
		struct imap_session *o = n->s;
		unsigned int ev;
		bool subscribed = what == NOTIFY_CHANGE_SUBSCRIBE;

		next = n->next;
		if (o->acct == NULL || (s != NULL ? o->acct != s->acct :
		    strcmp(store_account_root(o->acct), root) != 0))
			continue;
		/* the client that made the change knows of it */
		if (o != s) {
			ev = events_for(&n->spec, name, subscribed) |
			    (oldname != NULL ? events_for(&n->spec, oldname, false) : 0);
			if (is_selected_name(o, name))
				ev |= n->sel_events;
			if (what == NOTIFY_CHANGE_SUBSCRIBE ||
			    what == NOTIFY_CHANGE_UNSUBSCRIBE) {
				if ((ev & NOTIFY_EV_SUBSCRIPTION_CHANGE) != 0)
					append_list(o, &n->out, subscribed ?
					    "\\Subscribed" : "", name, NULL);
			} else if ((ev & NOTIFY_EV_MAILBOX_NAME) != 0) {
				append_list(o, &n->out, what == NOTIFY_CHANGE_DELETE ?
				    "\\NonExistent" : "", name,
				    what == NOTIFY_CHANGE_RENAME ? oldname : NULL);
			}
		}
		/* a session stuck in a long reply must not pile them up */
		if (n->out.len > NOTIFY_MAX_PENDING) {
			(void)overflowed(o);
			continue;
		}
		/* a filter may now take more or fewer mailboxes */
		boxes_rebuild(n);
		if (n->out.len > 0)
			event_active(n->ev, EV_TIMEOUT, 0);
	}
}

void
imap_notify_mailbox_change(struct imap_session *s, enum imap_notify_change what,
    const char *name, const char *oldname)
{
	const char *root = store_account_root(s->acct);

	mailbox_change(s, root, what, name, oldname);
	if (s->hooks->on_mailbox_change != NULL)
		s->hooks->on_mailbox_change(s, root, what, name, oldname, s->ctx);
}

void
imap_notify_foreign_change(const char *root, enum imap_notify_change what,
    const char *name, const char *oldname)
{
	mailbox_change(NULL, root, what, name, oldname);
}

/* --- the command ------------------------------------------------------------------ */

/* Once UTF8=ACCEPT is on, the names in filters are UTF-8 (RFC 6855 3). */
static int
names_to_mutf7(struct imap_notify_spec *spec)
{
	for (unsigned int i = 0; i < spec->ngroups; i++) {
		struct imap_notify_group *g = &spec->groups[i];

		for (unsigned int j = 0; j < g->nnames; j++) {
			struct buf b;

			if (!str_is_utf8(g->names[j], strlen(g->names[j])))
				return -1;
			buf_init(&b, BUF_UNLIMITED);
			buf_append_str(&b, "");
			if (imap_utf8_to_mutf7(g->names[j], &b) < 0) {
				buf_free(&b);
				return -1;
			}
			free(g->names[j]);
			g->names[j] = buf_steal(&b);
		}
	}
	return 0;
}

static void
notify_stop(struct imap_session *s)
{
	struct imap_notify *n = s->notify;

	if (n == NULL)
		return;
	for (unsigned int i = 0; i < n->nboxes; i++)
		box_close(&n->boxes[i]);
	free(n->boxes);
	imap_fetch_spec_free(&n->sel_fetch);
	imap_notify_spec_free(&n->spec);
	buf_free(&n->out);
	event_free(n->ev);
	event_free(n->poll_ev);
	event_free(n->retry_ev);
	if (n->watching)
		imap_watch_reader(s, &n->watching, false);
	if (n->prev != NULL)
		n->prev->next = n->next;
	else
		all_sessions = n->next;
	if (n->next != NULL)
		n->next->prev = n->prev;
	free(n);
	s->notify = NULL;
}

void
imap_notify_free(struct imap_session *s)
{
	notify_stop(s);
}

void
imap_cmd_notify(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	struct imap_notify_spec spec;
	struct imap_fetch_spec *fetch = NULL;
	struct imap_notify *no;
	const char *err = NULL;
	unsigned int sel_events = 0;
	bool sel_delayed = false;

	switch (imap_notify_parse(a, n, &spec, &err)) {
	case NOTIFY_PARSE_OK:
		break;
	case NOTIFY_PARSE_BAD:
		imap_notify_spec_free(&spec);
		imap_tagged(s, "BAD", "%s", err);
		return;
	case NOTIFY_PARSE_BADEVENT:
		imap_notify_spec_free(&spec);
		/* RFC 5465 6: the code lists the events that are supported */
		imap_tagged(s, "NO", "[BADEVENT (" NOTIFY_SUPPORTED_EVENTS
		    ")] %s", err);
		return;
	}
	if (s->utf8 && names_to_mutf7(&spec) < 0) {
		imap_notify_spec_free(&spec);
		imap_tagged(s, "BAD", "Mailbox name is not valid UTF-8");
		return;
	}
	for (unsigned int i = 0; i < spec.ngroups; i++) {
		const struct imap_notify_group *g = &spec.groups[i];

		if (g->filter != NOTIFY_FILTER_SELECTED &&
		    g->filter != NOTIFY_FILTER_SELECTED_DELAYED)
			continue;
		sel_events = g->events;
		sel_delayed = g->filter == NOTIFY_FILTER_SELECTED_DELAYED;
		if (g->fetch_atts != NULL &&
		    (fetch = imap_fetch_spec_new(g->fetch_atts)) == NULL) {
			imap_notify_spec_free(&spec);
			imap_tagged(s, "BAD", "Invalid MessageNew fetch attributes");
			return;
		}
		/* the arguments go away with the command */
		spec.groups[i].fetch_atts = NULL;
	}
	/* NOTIFY SET replaces what was set before, NONE only removes it */
	notify_stop(s);
	if (spec.none) {
		imap_notify_spec_free(&spec);
		imap_tagged(s, "OK", "NOTIFY completed.");
		return;
	}
	no = xcalloc(1, sizeof(*no));
	no->s = s;
	no->spec = spec;
	no->sel_events = sel_events;
	no->sel_delayed = sel_delayed;
	no->sel_fetch = fetch;
	buf_init(&no->out, BUF_UNLIMITED);
	no->ev = event_new(s->base, -1, 0, notify_ev_cb, s);
	no->poll_ev = event_new(s->base, -1, 0, poll_cb, s);
	no->retry_ev = event_new(s->base, -1, 0, notify_ev_cb, s);
	no->next = all_sessions;
	if (all_sessions != NULL)
		all_sessions->prev = no;
	all_sessions = no;
	s->notify = no;
	imap_watch_reader(s, &no->watching, true);
	boxes_rebuild(no);
	if (spec.status) {
		/* RFC 5465 6: a STATUS for each mailbox with message events */
		for (unsigned int i = 0; i < no->nboxes; i++) {
			if (!is_selected_name(s, no->boxes[i].name))
				send_status(s, &no->boxes[i]);
		}
	}
	log_debug("sid=%s event=imap_notify groups=%u boxes=%u", s->sid,
	    no->spec.ngroups, no->nboxes);
	imap_tagged(s, "OK", "NOTIFY completed.");
}
