/*
 * mail/thread: message threading (RFC 5256 §3 REFERENCES and
 * ORDEREDSUBJECT, and REFS from draft-ietf-morg-inthread), on messages
 * described by their header facts; nothing here reads mail or knows IMAP.
 *
 * REFERENCES (Zawinski's algorithm as RFC 5256 states it): containers per
 * Message-ID, parents from References (or the first In-Reply-To id when
 * there is no References), a message's own last reference replacing a
 * link made from another message's References, never a loop; dummies
 * pruned; the root set sorted by date; roots gathered by base subject;
 * siblings sorted by date. Duplicate or missing Message-IDs count as
 * unique. Equal dates keep the messages' input order (their sequence
 * numbers).
 *
 * REFS: the same links, without the subject gathering, with threads
 * ordered by their newest message (so the thread with the latest
 * activity comes last) and siblings by date.
 *
 * ORDEREDSUBJECT: messages grouped by base subject, each group ordered by
 * date, its first message the parent of the others; groups ordered by the
 * date of their first message.
 */
#ifndef TEGAMI_MAIL_THREAD_H
#define TEGAMI_MAIL_THREAD_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

enum thread_algorithm {
	THREAD_REFERENCES,
	THREAD_REFS,
	THREAD_ORDEREDSUBJECT,
};

/* What threading needs of one message (strings owned by the caller). */
struct thread_input {
	uint32_t id;			/* returned in the tree (seq or UID) */
	const char *message_id;		/* "<a@b>" or NULL */
	/* References message-ids in order, or the In-Reply-To one */
	const char *const *refs;
	unsigned int nrefs;
	const char *base_subject;	/* mail/subject, "" if none */
	bool is_reply;			/* its subject had "Re:" etc. */
	time_t date;			/* sent date (or internal date) */
};

/*
 * One node of the result. A dummy (a message that is referenced but not
 * in the input) has id 0; it only appears with two or more children at
 * the top level, or inside a thread where the algorithm keeps it.
 */
struct thread_node {
	uint32_t id;
	struct thread_node *parent;
	struct thread_node *child;	/* first child */
	struct thread_node *next;	/* next sibling */
};

struct thread_tree {
	struct thread_node *roots;	/* first root; siblings via next */
	/* internal: all nodes, freed at once */
	struct thread_node *nodes;
	unsigned int nnodes;
};

/*
 * Threads n messages (given in sequence order). Free the result with
 * thread_tree_free().
 */
struct thread_tree *thread_build(enum thread_algorithm alg,
    const struct thread_input *msgs, unsigned int n);
void thread_tree_free(struct thread_tree **tree);

/*
 * Parses message-ids ("<a@b> <c@d>", comments and junk between them
 * skipped) into a malloc'd array of malloc'd strings; at most max kept
 * (the last ones: the nearest ancestors matter most). Free with
 * thread_ids_free().
 */
char **thread_parse_ids(const char *value, unsigned int max,
    unsigned int *count_r);
void thread_ids_free(char **ids, unsigned int n);

#endif
