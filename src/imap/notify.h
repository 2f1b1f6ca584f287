/*
 * imap/notify: the arguments of the NOTIFY command (RFC 5465 section 6)
 * as data. Parsing knows nothing of sessions or the store, so it is tested
 * on its own; cmd_notify.c acts on the result.
 */
#ifndef TEGAMI_IMAP_NOTIFY_H
#define TEGAMI_IMAP_NOTIFY_H

#include "imap/parser.h"

#include <stdbool.h>

enum imap_notify_filter {
	NOTIFY_FILTER_SELECTED,
	NOTIFY_FILTER_SELECTED_DELAYED,
	NOTIFY_FILTER_INBOXES,
	NOTIFY_FILTER_PERSONAL,
	NOTIFY_FILTER_SUBSCRIBED,
	NOTIFY_FILTER_SUBTREE,
	NOTIFY_FILTER_MAILBOXES,
};

/* The events tegami supports (bit per event). */
enum imap_notify_event {
	NOTIFY_EV_MESSAGE_NEW = 1 << 0,
	NOTIFY_EV_MESSAGE_EXPUNGE = 1 << 1,
	NOTIFY_EV_FLAG_CHANGE = 1 << 2,
	NOTIFY_EV_MAILBOX_NAME = 1 << 3,
	NOTIFY_EV_SUBSCRIPTION_CHANGE = 1 << 4,
};

#define NOTIFY_EV_MESSAGE (NOTIFY_EV_MESSAGE_NEW | NOTIFY_EV_MESSAGE_EXPUNGE | \
    NOTIFY_EV_FLAG_CHANGE)
/* What a BADEVENT response code lists: the events that are supported. */
#define NOTIFY_SUPPORTED_EVENTS \
	"MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange"

struct imap_notify_group {
	enum imap_notify_filter filter;
	char **names;		/* SUBTREE, MAILBOXES: malloc'd, INBOX upper */
	unsigned int nnames;
	unsigned int events;	/* enum imap_notify_event; 0 = NONE */
	/* MessageNew's fetch-att list (selected filters only): points into
	   the arguments parsed, so valid only while they are */
	const struct imap_arg *fetch_atts;
};

struct imap_notify_spec {
	bool none;		/* NOTIFY NONE */
	bool status;		/* NOTIFY SET STATUS */
	struct imap_notify_group *groups;
	unsigned int ngroups;
};

/* Most event groups one NOTIFY may hold, and mailbox names per group. */
#define NOTIFY_MAX_GROUPS 32
#define NOTIFY_MAX_NAMES 256

enum imap_notify_parse_result {
	NOTIFY_PARSE_OK = 0,
	NOTIFY_PARSE_BAD = -1,		/* syntax: tagged BAD */
	NOTIFY_PARSE_BADEVENT = -2,	/* an event we do not support: NO
					   [BADEVENT (NOTIFY_SUPPORTED_EVENTS)] */
};

/*
 * Parses NOTIFY's arguments (after the command name) into *spec_r, which
 * the caller frees with imap_notify_spec_free() whatever the result.
 * *error_r says why on failure (static text).
 *
 * RFC 5465 section 5: MessageNew and MessageExpunge go together and
 * FlagChange needs both. That is enforced for the selected filters, where
 * a client told of new messages but not of expunges (or the reverse)
 * loses track of sequence numbers. For other mailboxes the events only
 * decide which STATUS items are sent, so a lone event is accepted there,
 * as Dovecot does and as imaptest's notify script expects.
 */
enum imap_notify_parse_result imap_notify_parse(const struct imap_arg *args,
    unsigned int nargs, struct imap_notify_spec *spec_r, const char **error_r);
void imap_notify_spec_free(struct imap_notify_spec *spec);

/* Does a filter of kind SUBTREE or MAILBOXES (names) take mailbox name? */
bool imap_notify_names_match(const struct imap_notify_group *g,
    const char *name);

#endif
