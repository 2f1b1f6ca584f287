/* NOTIFY arguments (RFC 5465 section 8 ABNF); see notify.h. */
#include "imap/notify.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	enum imap_notify_filter filter;
	bool takes_names;
} filters[] = {
	{ "SELECTED", NOTIFY_FILTER_SELECTED, false },
	{ "SELECTED-DELAYED", NOTIFY_FILTER_SELECTED_DELAYED, false },
	{ "INBOXES", NOTIFY_FILTER_INBOXES, false },
	{ "PERSONAL", NOTIFY_FILTER_PERSONAL, false },
	{ "SUBSCRIBED", NOTIFY_FILTER_SUBSCRIBED, false },
	{ "SUBTREE", NOTIFY_FILTER_SUBTREE, true },
	{ "MAILBOXES", NOTIFY_FILTER_MAILBOXES, true },
};

static const struct {
	const char *name;
	unsigned int event;	/* 0: known to the RFC, not supported */
} events[] = {
	{ "MessageNew", NOTIFY_EV_MESSAGE_NEW },
	{ "MessageExpunge", NOTIFY_EV_MESSAGE_EXPUNGE },
	{ "FlagChange", NOTIFY_EV_FLAG_CHANGE },
	{ "MailboxName", NOTIFY_EV_MAILBOX_NAME },
	{ "SubscriptionChange", NOTIFY_EV_SUBSCRIPTION_CHANGE },
	/* no ANNOTATE or METADATA here */
	{ "AnnotationChange", 0 },
	{ "MailboxMetadataChange", 0 },
	{ "ServerMetadataChange", 0 },
};

void
imap_notify_spec_free(struct imap_notify_spec *spec)
{
	for (unsigned int i = 0; i < spec->ngroups; i++) {
		for (unsigned int j = 0; j < spec->groups[i].nnames; j++)
			free(spec->groups[i].names[j]);
		free(spec->groups[i].names);
	}
	free(spec->groups);
	memset(spec, 0, sizeof(*spec));
}

static bool
is_selected(enum imap_notify_filter f)
{
	return f == NOTIFY_FILTER_SELECTED || f == NOTIFY_FILTER_SELECTED_DELAYED;
}

static int
parse_names(const struct imap_arg *a, struct imap_notify_group *g)
{
	const struct imap_arg *list = a;
	unsigned int n = 1;

	if (a->type == IMAP_ARG_LIST) {
		list = a->list;
		n = a->count;
	}
	if (n == 0 || n > NOTIFY_MAX_NAMES)
		return -1;
	g->names = xcalloc(n, sizeof(*g->names));
	for (unsigned int i = 0; i < n; i++) {
		const char *name = imap_arg_astring(&list[i]);

		if (name == NULL || *name == '\0')
			return -1;
		g->names[g->nnames++] = xstrdup(strcasecmp(name, "INBOX") == 0 ?
		    "INBOX" : name);
	}
	return 0;
}

static enum imap_notify_parse_result
parse_events(const struct imap_arg *a, struct imap_notify_group *g,
    const char **error_r)
{
	if (imap_arg_is_atom(a, "NONE"))
		return NOTIFY_PARSE_OK;
	if (a->type != IMAP_ARG_LIST || a->count == 0) {
		*error_r = "Event list expected";
		return NOTIFY_PARSE_BAD;
	}
	for (unsigned int i = 0; i < a->count; i++) {
		const struct imap_arg *e = &a->list[i];
		size_t k;

		if (e->type != IMAP_ARG_ATOM) {
			*error_r = "Event name expected";
			return NOTIFY_PARSE_BAD;
		}
		for (k = 0; k < sizeof(events) / sizeof(events[0]); k++) {
			if (strcasecmp(events[k].name, e->str) == 0)
				break;
		}
		/* event-ext is any atom: an unknown one is unsupported, not bad */
		if (k == sizeof(events) / sizeof(events[0]) || events[k].event == 0) {
			*error_r = "Unsupported event";
			return NOTIFY_PARSE_BADEVENT;
		}
		g->events |= events[k].event;
		if (events[k].event == NOTIFY_EV_MESSAGE_NEW && i + 1 < a->count &&
		    a->list[i + 1].type == IMAP_ARG_LIST) {
			/* RFC 5465 5.2: fetch attributes only for the selected
			   mailbox, where FETCH responses can carry them */
			if (!is_selected(g->filter) || a->list[i + 1].count == 0) {
				*error_r = "MessageNew fetch attributes only for selected";
				return NOTIFY_PARSE_BAD;
			}
			g->fetch_atts = &a->list[++i];
		}
	}
	if (is_selected(g->filter)) {
		unsigned int ne = g->events &
		    (NOTIFY_EV_MESSAGE_NEW | NOTIFY_EV_MESSAGE_EXPUNGE);

		if (ne != 0 && ne != (NOTIFY_EV_MESSAGE_NEW | NOTIFY_EV_MESSAGE_EXPUNGE)) {
			*error_r = "MessageNew and MessageExpunge go together";
			return NOTIFY_PARSE_BAD;
		}
		if ((g->events & NOTIFY_EV_FLAG_CHANGE) != 0 && ne == 0) {
			*error_r = "FlagChange needs MessageNew and MessageExpunge";
			return NOTIFY_PARSE_BAD;
		}
	}
	return NOTIFY_PARSE_OK;
}

static enum imap_notify_parse_result
parse_group(const struct imap_arg *a, struct imap_notify_group *g,
    const char **error_r)
{
	const struct imap_arg *l = a->list;
	size_t k;

	if (a->type != IMAP_ARG_LIST || a->count < 2 ||
	    l[0].type != IMAP_ARG_ATOM) {
		*error_r = "Event group expected";
		return NOTIFY_PARSE_BAD;
	}
	for (k = 0; k < sizeof(filters) / sizeof(filters[0]); k++) {
		if (strcasecmp(filters[k].name, l[0].str) == 0)
			break;
	}
	if (k == sizeof(filters) / sizeof(filters[0])) {
		*error_r = "Unknown mailbox filter";
		return NOTIFY_PARSE_BAD;
	}
	g->filter = filters[k].filter;
	if (a->count != (filters[k].takes_names ? 3u : 2u)) {
		*error_r = "Invalid event group";
		return NOTIFY_PARSE_BAD;
	}
	if (filters[k].takes_names && parse_names(&l[1], g) < 0) {
		*error_r = "Invalid mailbox names";
		return NOTIFY_PARSE_BAD;
	}
	return parse_events(&l[a->count - 1], g, error_r);
}

enum imap_notify_parse_result
imap_notify_parse(const struct imap_arg *args, unsigned int nargs,
    struct imap_notify_spec *spec_r, const char **error_r)
{
	unsigned int i = 1;
	bool have_selected = false;

	memset(spec_r, 0, sizeof(*spec_r));
	if (nargs == 1 && imap_arg_is_atom(&args[0], "NONE")) {
		spec_r->none = true;
		return NOTIFY_PARSE_OK;
	}
	if (nargs < 2 || !imap_arg_is_atom(&args[0], "SET")) {
		*error_r = "NOTIFY SET or NOTIFY NONE expected";
		return NOTIFY_PARSE_BAD;
	}
	if (imap_arg_is_atom(&args[1], "STATUS")) {
		spec_r->status = true;
		i++;
	}
	if (i >= nargs || nargs - i > NOTIFY_MAX_GROUPS) {
		*error_r = "Event groups expected";
		return NOTIFY_PARSE_BAD;
	}
	spec_r->groups = xcalloc(nargs - i, sizeof(*spec_r->groups));
	for (; i < nargs; i++) {
		struct imap_notify_group *g = &spec_r->groups[spec_r->ngroups++];
		enum imap_notify_parse_result r = parse_group(&args[i], g, error_r);

		if (r != NOTIFY_PARSE_OK)
			return r;
		if (is_selected(g->filter)) {
			/* one filter for the selected mailbox (RFC 5465 6) */
			if (have_selected) {
				*error_r = "selected given twice";
				return NOTIFY_PARSE_BAD;
			}
			have_selected = true;
		}
	}
	return NOTIFY_PARSE_OK;
}

bool
imap_notify_names_match(const struct imap_notify_group *g, const char *name)
{
	for (unsigned int i = 0; i < g->nnames; i++) {
		const char *n = g->names[i];
		size_t len = strlen(n);

		if (strcmp(n, name) == 0)
			return true;
		/* a subtree is the mailbox and everything below it */
		if (g->filter == NOTIFY_FILTER_SUBTREE &&
		    strncmp(n, name, len) == 0 && name[len] == '.')
			return true;
	}
	return false;
}
