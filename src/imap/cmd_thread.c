/*
 * THREAD and UID THREAD (RFC 5256): "THREAD algorithm charset keys" with
 * REFERENCES, REFS and ORDEREDSUBJECT (mail/thread). The answer is
 * "* THREAD (1 2 (3)(4))(5)": a chain is written as a list, a node with
 * more than one child as a list per child; a dummy parent is not written.
 */
#include "imap/search.h"
#include "imap/session-private.h"
#include "imap/sort.h"

#include "lib/xalloc.h"
#include "mail/charset.h"
#include "mail/thread.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One thread, without recursion: deep trees cost heap, not stack. */
static void
render_thread(struct buf *out, const struct thread_node *root,
    const struct thread_node **stack)
{
	const struct thread_node *n = root;
	unsigned int depth = 0;
	bool first = true;

	buf_append_c(out, '(');
	for (;;) {
		/* the chain down from n while each has one child */
		for (;;) {
			if (n->id != 0) {
				buf_printf(out, first ? "%u" : " %u", n->id);
				first = false;
			}
			if (n->child != NULL && n->child->next == NULL) {
				n = n->child;
				continue;
			}
			break;
		}
		if (n->child != NULL) {
			/* two or more children: a list for each */
			if (!first)
				buf_append_c(out, ' ');
			stack[depth++] = n->child->next;
			buf_append_c(out, '(');
			n = n->child;
			first = true;
			continue;
		}
		/* n's subtree is written: close lists, open the next sibling */
		for (;;) {
			const struct thread_node *sib;

			if (depth == 0) {
				buf_append_c(out, ')');
				return;
			}
			buf_append_c(out, ')');
			sib = stack[--depth];
			if (sib != NULL) {
				stack[depth++] = sib->next;
				buf_append_c(out, '(');
				n = sib;
				first = true;
				break;
			}
		}
	}
}

/* A THREAD whose files are being read (imap_search_start, then the
   thread keys the cache lacks: imap_msg_keys_prefetch). */
struct thread_cmd {
	enum thread_algorithm alg;
	bool uid;
	struct imap_search *prog;
	unsigned int *idx, nidx;
};

/* Every key is cached now (imap_msg_keys_prefetch). */
static void
thread_keys_done(struct imap_session *s, void *ctx)
{
	struct thread_cmd *tc = ctx;
	enum thread_algorithm alg = tc->alg;
	bool uid = tc->uid;
	unsigned int *idx = tc->idx, nidx = tc->nidx;
	const struct store_msg *msgs;
	struct thread_input *in;
	struct thread_tree *tree;
	const struct thread_node **stack;
	unsigned int count;
	struct buf out;

	if (s == NULL) {
		imap_search_free(&tc->prog);
		free(tc->idx);
		free(tc);
		return;
	}
	msgs = store_mailbox_msgs(s->box, &count);
	/* fill the cache first: pointers into it are stable afterwards */
	for (unsigned int i = 0; i < nidx; i++)
		(void)imap_msg_keys_get(s, idx[i]);
	imap_sortcache_flush(s);
	in = xcalloc(nidx + 1, sizeof(*in));
	for (unsigned int i = 0; i < nidx; i++) {
		const struct imap_msg_keys *k = imap_msg_keys_get(s, idx[i]);

		in[i].id = uid ? msgs[idx[i]].uid : idx[i] + 1;
		in[i].message_id = k->message_id;
		in[i].refs = (const char *const *)k->refs;
		in[i].nrefs = k->nrefs;
		in[i].base_subject = k->subject;
		in[i].is_reply = k->subject_reply;
		in[i].date = k->date;
	}
	tree = thread_build(alg, in, nidx);
	stack = xcalloc(tree->nnodes + 1, sizeof(*stack));
	buf_init(&out, BUF_UNLIMITED);
	buf_append_str(&out, tree->roots != NULL ? "* THREAD " : "* THREAD");
	for (const struct thread_node *r = tree->roots; r != NULL; r = r->next)
		render_thread(&out, r, stack);
	buf_append_str(&out, "\r\n");
	imap_write(s, out.data, out.len);
	buf_free(&out);
	free(stack);
	thread_tree_free(&tree);
	free(in);
	free(idx);
	imap_search_free(&tc->prog);
	free(tc);
	imap_tagged(s, "OK", "Thread completed.");
}

static void
thread_done(struct imap_session *s, void *ctx, unsigned int *idx,
    unsigned int nidx)
{
	struct thread_cmd *tc = ctx;

	tc->idx = idx;
	tc->nidx = nidx;
	if (s == NULL)
		thread_keys_done(s, tc);
	else
		imap_msg_keys_prefetch(s, idx, nidx, thread_keys_done, tc);
}

void
imap_cmd_thread(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	enum thread_algorithm alg;
	struct imap_search *prog;
	struct thread_cmd *tc;
	const char *charset;

	if (n < 3) {
		imap_tagged(s, "BAD", "THREAD needs an algorithm, a charset and"
		    " search keys");
		return;
	}
	if (imap_arg_is_atom(&a[0], "REFERENCES"))
		alg = THREAD_REFERENCES;
	else if (imap_arg_is_atom(&a[0], "REFS"))
		alg = THREAD_REFS;
	else if (imap_arg_is_atom(&a[0], "ORDEREDSUBJECT"))
		alg = THREAD_ORDEREDSUBJECT;
	else {
		imap_tagged(s, "BAD", "Unknown threading algorithm");
		return;
	}
	if ((charset = imap_arg_astring(&a[1])) == NULL) {
		imap_tagged(s, "BAD", "THREAD needs a charset");
		return;
	}
	if (!charset_known(charset)) {
		imap_tagged(s, "NO", "[BADCHARSET (" CHARSET_ADVERTISED
		    ")] Unsupported charset");
		return;
	}
	if ((prog = imap_search_compile(s, a, n, 2, charset)) == NULL)
		return;
	tc = xcalloc(1, sizeof(*tc));
	tc->alg = alg;
	tc->uid = uid;
	tc->prog = prog;
	imap_search_start(s, prog, thread_done, tc);
}
