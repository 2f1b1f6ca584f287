#include "lib/buf.h"
#include "lib/test.h"
#include "lib/xalloc.h"
#include "mail/subject.h"
#include "mail/thread.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The tree as IMAP writes it: "(1 (2 4)(3))(5)", dummies not shown. */
static void
render(struct buf *out, const struct thread_node *n, bool top)
{
	for (; n != NULL; n = n->next) {
		const struct thread_node *c = n;
		bool printed = false;

		if (top)
			buf_append_c(out, '(');
		for (;;) {
			if (c->id != 0) {
				buf_printf(out, printed ? " %u" : "%u", c->id);
				printed = true;
			}
			if (c->child != NULL && c->child->next == NULL) {
				c = c->child;
				continue;
			}
			break;
		}
		if (c->child != NULL) {
			if (printed)
				buf_append_c(out, ' ');
			for (const struct thread_node *k = c->child; k != NULL; k = k->next) {
				const struct thread_node *save = k->next;

				buf_append_c(out, '(');
				((struct thread_node *)k)->next = NULL;
				render(out, k, false);
				((struct thread_node *)k)->next = (struct thread_node *)save;
				buf_append_c(out, ')');
			}
		}
		if (top)
			buf_append_c(out, ')');
		if (!top)
			break;
	}
}

/* One message: "id|message-id|refs (space-separated)|subject|date" */
struct tmsg {
	const char *mid, *refs, *subject;
	long date;
};

static char *
run(enum thread_algorithm alg, const struct tmsg *m, unsigned int n)
{
	struct thread_input *in = xcalloc(n + 1, sizeof(*in));
	char ***refs = xcalloc(n + 1, sizeof(*refs));
	char **subj = xcalloc(n + 1, sizeof(*subj));
	struct thread_tree *tree;
	struct buf out;

	for (unsigned int i = 0; i < n; i++) {
		in[i].id = i + 1;
		in[i].message_id = m[i].mid;
		refs[i] = thread_parse_ids(m[i].refs, 100, &in[i].nrefs);
		in[i].refs = (const char *const *)refs[i];
		subj[i] = mail_base_subject(m[i].subject, strlen(m[i].subject),
		    1000, &in[i].is_reply);
		in[i].base_subject = subj[i];
		in[i].date = m[i].date;
	}
	tree = thread_build(alg, in, n);
	buf_init(&out, BUF_UNLIMITED);
	buf_append_str(&out, "");
	render(&out, tree->roots, true);
	thread_tree_free(&tree);
	for (unsigned int i = 0; i < n; i++) {
		thread_ids_free(refs[i], in[i].nrefs);
		free(subj[i]);
	}
	free(refs);
	free(subj);
	free(in);
	return buf_steal(&out);
}

static void
test_thread_references(void)
{
	/* the cases imaptest's thread* scripts check against Dovecot */
	static const struct tmsg t1[] = {
		{ "<a@b>", NULL, "", 1700 },
		{ "<b@b>", "<a@b> <c@b>", "", 1500 },
		{ "<c@b>", "<b@b>", "", 1600 },
	}, t1x[] = {
		{ "<b@b>", "<a@b> <c@b>", "", 1500 },
		{ "<c@b>", "<b@b>", "", 1600 },
	}, t2[] = {
		{ "<a@b>", NULL, "", 1 }, { "<a@b>", NULL, "", 1 },
	}, t3[] = {
		{ "<a@b>", NULL, "foo", 1 }, { "<a@b>", NULL, "Re: foo", 2 },
	}, t4[] = {
		{ "<a@b>", NULL, "foo", 1 }, { "<b@b>", "<c@b>", "Re: foo", 2 },
	}, t5[] = {
		{ "<1@b>", NULL, "", 17 }, { "<2@b>", "<1@b>", "", 15 },
		{ "<3@b>", "<1@b>", "", 15 }, { "<4@b>", "<2@b>", "", 15 },
	}, t5x[] = {
		{ "<3@b>", "<1@b>", "", 15 }, { "<4@b>", "<2@b>", "", 15 },
		{ "<5@b>", "<2@b>", "", 15 },
	}, t6[] = {
		{ NULL, "<a@b>", "", 1 }, { NULL, "<a@b>", "", 2 },
	}, t7[] = {
		{ "<a@b>", NULL, "", 1 }, { "<b@b>", "<a@b>", "", 1 },
		{ "<c@b>", "<b@b>", "", 1 }, { "<b@b>", "<a@b>", "", 1 },
	}, t7x[] = {
		{ "<a@b>", NULL, "", 1 }, { "<c@b>", "<b@b>", "", 1 },
		{ "<b@b>", "<a@b>", "", 1 },
	}, loop[] = {
		/* each claims the other as parent: the first link made
		   stays, the loop is not closed; a self-reference is none */
		{ "<a@b>", "<b@b>", "", 1 }, { "<b@b>", "<a@b>", "", 2 },
		{ "<c@b>", "<c@b>", "", 3 },
	}, subj[] = {
		/* roots with one base subject are gathered */
		{ "<1@x>", NULL, "Lunch", 1 }, { "<2@x>", NULL, "Re: lunch", 2 },
		{ "<3@x>", NULL, "Lunch", 3 }, { "<4@x>", NULL, "other", 4 },
	};
	static const struct {
		const struct tmsg *m;
		unsigned int n;
		const char *want;
	} cases[] = {
		{ t1, 3, "(3 2)(1)" }, { t1x, 2, "(2 1)" },
		{ t2, 2, "(1)(2)" }, { t3, 2, "(1 2)" }, { t4, 2, "(1 2)" },
		{ t5, 4, "(1 (2 4)(3))" }, { t5x, 3, "(1)((2)(3))" },
		{ t6, 2, "((1)(2))" }, { t7, 4, "(1 (2 3)(4))" },
		{ t7x, 3, "(1 3 2)" }, { loop, 3, "(2 1)(3)" },
		{ subj, 4, "((1 2)(3))(4)" },
	};

	test_begin("mail/thread: REFERENCES");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = run(THREAD_REFERENCES, cases[i].m, cases[i].n);

		test_assert_str(got, cases[i].want);
		free(got);
	}
	test_end();
}
TEST(test_thread_references);

static void
test_thread_refs_orderedsubject(void)
{
	static const struct tmsg m[] = {
		{ "<1@x>", NULL, "b", 10 },
		{ "<2@x>", NULL, "a", 20 },
		{ "<3@x>", "<1@x>", "Re: b", 30 },
		{ "<4@x>", NULL, "Re: a", 5 },
		{ "<5@x>", NULL, "c", 25 },
	};
	char *got;

	test_begin("mail/thread: REFS and ORDEREDSUBJECT");
	/* REFS: no subject gathering, threads by their newest message */
	got = run(THREAD_REFS, m, 5);
	test_assert_str(got, "(4)(2)(5)(1 3)");
	free(got);
	/* REFERENCES: roots by date, then 4 (a reply) under 2 */
	got = run(THREAD_REFERENCES, m, 5);
	test_assert_str(got, "(1 3)(2 4)(5)");
	free(got);
	got = run(THREAD_ORDEREDSUBJECT, m, 5);
	test_assert_str(got, "(4 2)(1 3)(5)");
	free(got);
	test_end();
}
TEST(test_thread_refs_orderedsubject);

static void
test_thread_long_chain(void)
{
	enum { N = 20000 };
	struct thread_input *in = xcalloc(N, sizeof(*in));
	char (*ids)[32] = xcalloc(N, sizeof(*ids));
	const char **refs = xcalloc(N, sizeof(*refs));
	struct thread_tree *tree;
	const struct thread_node *n;
	unsigned int depth = 0;

	test_begin("mail/thread: a 20000-message reply chain");
	for (unsigned int i = 0; i < N; i++) {
		snprintf(ids[i], sizeof(ids[i]), "<%u@chain>", i);
		in[i].id = i + 1;
		in[i].message_id = ids[i];
		if (i > 0) {
			refs[i] = ids[i - 1];
			in[i].refs = &refs[i];
			in[i].nrefs = 1;
		}
		in[i].base_subject = "";
		in[i].date = i;
	}
	tree = thread_build(THREAD_REFERENCES, in, N);
	for (n = tree->roots; n != NULL; n = n->child)
		depth++;
	test_assert_int(depth, N);
	test_assert(tree->roots->next == NULL);
	thread_tree_free(&tree);
	free(in);
	free(ids);
	free(refs);
	test_end();
}
TEST(test_thread_long_chain);

static void
test_thread_parse_ids(void)
{
	unsigned int n;
	char **ids;

	test_begin("mail/thread: message-id lists");
	ids = thread_parse_ids(" <a@b> (comment) <c\r\n @d>junk<> <e@f>", 10, &n);
	test_assert_int(n, 3);
	test_assert_str(ids[0], "<a@b>");
	test_assert_str(ids[1], "<c@d>");
	test_assert_str(ids[2], "<e@f>");
	thread_ids_free(ids, n);
	ids = thread_parse_ids("<1@x> <2@x> <3@x>", 2, &n);
	test_assert_int(n, 2);
	test_assert_str(ids[0], "<2@x>");
	test_assert_str(ids[1], "<3@x>");
	thread_ids_free(ids, n);
	ids = thread_parse_ids("no ids <here", 10, &n);
	test_assert_int(n, 0);
	thread_ids_free(ids, n);
	test_end();
}
TEST(test_thread_parse_ids);
