#include "imap/notify.h"
#include "imap/parser.h"
#include "lib/test.h"

#include <stdio.h>
#include <string.h>

static const struct imap_parser_limits limits = {
	.max_line = 4096,
	.max_literal = 100,
	.max_literal_total = 100,
	.max_depth = 6,
	.max_args = 64,
};

/*
 * Each line is a whole command as a client sends it; want is what the
 * parse gives: the result, then per group "filter/names/events/fetch".
 */
static void
test_imap_notify_parse(void)
{
	static const struct {
		const char *line;
		int result;
		const char *want;
	} cases[] = {
		{ "a NOTIFY NONE", NOTIFY_PARSE_OK, "none" },
		{ "a NOTIFY SET (selected (MessageNew MessageExpunge))",
		  NOTIFY_PARSE_OK, "0//3/-" },
		{ "a NOTIFY SET STATUS (personal (MessageNew MessageExpunge FlagChange"
		  " MailboxName SubscriptionChange))", NOTIFY_PARSE_OK, "status 3//31/-" },
		{ "a notify set (SELECTED-DELAYED (messagenew (uid body.peek[header])"
		  " messageexpunge)) (inboxes NONE)", NOTIFY_PARSE_OK, "1//3/2 2//0/-" },
		{ "a NOTIFY SET (subtree Lists (MessageNew)) (mailboxes (inbox \"a b\")"
		  " (MessageExpunge)) (subscribed (FlagChange))",
		  NOTIFY_PARSE_OK, "5/Lists/1/- 6/INBOX,a b/2/- 4//4/-" },
		{ "a NOTIFY SET (mailboxes x (MailboxName))", NOTIFY_PARSE_OK, "6/x/8/-" },
		/* the selected mailbox: the RFC's pairing rules */
		{ "a NOTIFY SET (selected (MessageNew))", NOTIFY_PARSE_BAD, NULL },
		{ "a NOTIFY SET (selected (MessageExpunge))", NOTIFY_PARSE_BAD, NULL },
		{ "a NOTIFY SET (selected (FlagChange))", NOTIFY_PARSE_BAD, NULL },
		{ "a NOTIFY SET (selected (MessageExpunge FlagChange))",
		  NOTIFY_PARSE_BAD, NULL },
		/* fetch attributes only where FETCH can carry them */
		{ "a NOTIFY SET (personal (MessageNew (uid) MessageExpunge))",
		  NOTIFY_PARSE_BAD, NULL },
		{ "a NOTIFY SET (selected (MessageNew () MessageExpunge))",
		  NOTIFY_PARSE_BAD, NULL },
		/* unsupported events: NO [BADEVENT] */
		{ "a NOTIFY SET (selected (MessageNew MessageExpunge AnnotationChange))",
		  NOTIFY_PARSE_BADEVENT, NULL },
		{ "a NOTIFY SET (personal (MailboxMetadataChange))",
		  NOTIFY_PARSE_BADEVENT, NULL },
		{ "a NOTIFY SET (personal (XFutureEvent))", NOTIFY_PARSE_BADEVENT, NULL },
		/* syntax */
		{ "a NOTIFY", NOTIFY_PARSE_BAD, NULL },
		{ "a NOTIFY SET", NOTIFY_PARSE_BAD, NULL },
		{ "a NOTIFY SET STATUS", NOTIFY_PARSE_BAD, NULL },
		{ "a NOTIFY NONE extra", NOTIFY_PARSE_BAD, NULL },
		{ "a NOTIFY RESET (selected NONE)", NOTIFY_PARSE_BAD, NULL },
		{ "a NOTIFY SET selected", NOTIFY_PARSE_BAD, NULL },
		{ "a NOTIFY SET (nowhere (MessageNew))", NOTIFY_PARSE_BAD, NULL },
		{ "a NOTIFY SET (personal ())", NOTIFY_PARSE_BAD, NULL },
		{ "a NOTIFY SET (personal)", NOTIFY_PARSE_BAD, NULL },
		{ "a NOTIFY SET (personal x (MessageNew))", NOTIFY_PARSE_BAD, NULL },
		{ "a NOTIFY SET (subtree (MessageNew))", NOTIFY_PARSE_BAD, NULL },
		{ "a NOTIFY SET (mailboxes () (MessageNew))", NOTIFY_PARSE_BAD, NULL },
		{ "a NOTIFY SET (mailboxes \"\" (MessageNew))", NOTIFY_PARSE_BAD, NULL },
		{ "a NOTIFY SET (personal (\"MessageNew\"))", NOTIFY_PARSE_BAD, NULL },
		{ "a NOTIFY SET (selected NONE) (selected-delayed NONE)",
		  NOTIFY_PARSE_BAD, NULL },
		{ "a NOTIFY SET (personal NONE) junk", NOTIFY_PARSE_BAD, NULL },
	};

	test_begin("imap notify: NOTIFY SET/NONE arguments (RFC 5465)");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct imap_parser *p = imap_parser_create(&limits);
		const struct imap_command *cmd;
		struct imap_notify_spec spec;
		const char *err = NULL;
		char line[600], got[600] = "";
		size_t used;
		int r;

		snprintf(line, sizeof(line), "%s\r\n", cases[i].line);
		test_assert(imap_parser_feed(p, line, strlen(line), &used) ==
		    IMAP_PARSE_DONE);
		cmd = imap_parser_command(p);
		r = imap_notify_parse(cmd->args.list, cmd->args.count, &spec, &err);
		if (r != cases[i].result)
			printf("     %s: %d (%s)\n", cases[i].line, r, err);
		test_assert(r == cases[i].result);
		test_assert(r == NOTIFY_PARSE_OK || err != NULL);
		if (r == NOTIFY_PARSE_OK && spec.none)
			snprintf(got, sizeof(got), "none");
		for (unsigned int g = 0; r == NOTIFY_PARSE_OK && g < spec.ngroups; g++) {
			const struct imap_notify_group *gr = &spec.groups[g];
			size_t len = strlen(got);

			snprintf(got + len, sizeof(got) - len, "%s%s%d/",
			    g > 0 ? " " : "", g == 0 && spec.status ? "status " : "",
			    (int)gr->filter);
			for (unsigned int k = 0; k < gr->nnames; k++) {
				len = strlen(got);
				snprintf(got + len, sizeof(got) - len, "%s%s",
				    k > 0 ? "," : "", gr->names[k]);
			}
			len = strlen(got);
			if (gr->fetch_atts != NULL)
				snprintf(got + len, sizeof(got) - len, "/%u/%u", gr->events,
				    gr->fetch_atts->count);
			else
				snprintf(got + len, sizeof(got) - len, "/%u/-", gr->events);
		}
		if (cases[i].want != NULL) {
			if (strcmp(got, cases[i].want) != 0)
				printf("     %s: got %s\n", cases[i].line, got);
			test_assert_str(got, cases[i].want);
		}
		imap_notify_spec_free(&spec);
		imap_parser_free(&p);
	}
	test_end();
}
TEST(test_imap_notify_parse)

static void
test_imap_notify_names(void)
{
	char *names[] = { "Lists", "INBOX" };
	struct imap_notify_group sub = { .filter = NOTIFY_FILTER_SUBTREE,
	    .names = names, .nnames = 2 };
	struct imap_notify_group mbx = { .filter = NOTIFY_FILTER_MAILBOXES,
	    .names = names, .nnames = 2 };

	test_begin("imap notify: subtree and mailboxes filters");
	test_assert(imap_notify_names_match(&sub, "Lists"));
	test_assert(imap_notify_names_match(&sub, "Lists.a.b"));
	test_assert(imap_notify_names_match(&sub, "INBOX.x"));
	test_assert(!imap_notify_names_match(&sub, "Listsx"));
	test_assert(!imap_notify_names_match(&sub, "Other"));
	test_assert(imap_notify_names_match(&mbx, "Lists"));
	test_assert(!imap_notify_names_match(&mbx, "Lists.a"));
	test_end();
}
TEST(test_imap_notify_names)
