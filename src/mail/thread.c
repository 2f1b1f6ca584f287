/*
 * Threading. Containers are worked on by index, children held in arrays;
 * every walk is iterative, so a chain of 100,000 replies costs no stack.
 */
#include "mail/thread.h"

#include "lib/buf.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

#define NONE (-1)
#define ID_MAX 998	/* RFC 5322 line length: no id is longer */

struct cont {
	const char *msgid;	/* hash key, or NULL for a unique container */
	int msg;		/* index into the input, or NONE for a dummy */
	int parent;
	int *kids;
	unsigned int nkids, capkids;
};

struct threader {
	const struct thread_input *in;
	unsigned int nin;
	struct cont *c;
	unsigned int n, cap;
	/* Message-ID -> container (open addressing, size a power of two) */
	int *hash;
	unsigned int hsize;
};

static int
cont_new(struct threader *t, const char *msgid)
{
	struct cont *c;

	if (t->n == t->cap) {
		t->cap = t->cap == 0 ? 64 : t->cap * 2;
		t->c = xreallocarray(t->c, t->cap, sizeof(*t->c));
	}
	c = &t->c[t->n];
	memset(c, 0, sizeof(*c));
	c->msgid = msgid;
	c->msg = NONE;
	c->parent = NONE;
	return (int)t->n++;
}

/* The container for a Message-ID, made (as a dummy) when there is none. */
static int
cont_get(struct threader *t, const char *msgid)
{
	unsigned int i = str_hash(msgid) & (t->hsize - 1);

	while (t->hash[i] != NONE) {
		if (strcmp(t->c[t->hash[i]].msgid, msgid) == 0)
			return t->hash[i];
		i = (i + 1) & (t->hsize - 1);
	}
	t->hash[i] = cont_new(t, msgid);
	return t->hash[i];
}

static void
kid_add(struct cont *p, int kid)
{
	if (p->nkids == p->capkids) {
		p->capkids = p->capkids == 0 ? 2 : p->capkids * 2;
		p->kids = xreallocarray(p->kids, p->capkids, sizeof(*p->kids));
	}
	p->kids[p->nkids++] = kid;
}

static void
unlink_parent(struct threader *t, int child)
{
	int p = t->c[child].parent;

	if (p == NONE)
		return;
	for (unsigned int i = 0; i < t->c[p].nkids; i++) {
		if (t->c[p].kids[i] == child) {
			memmove(&t->c[p].kids[i], &t->c[p].kids[i + 1],
			    (t->c[p].nkids - i - 1) * sizeof(int));
			t->c[p].nkids--;
			break;
		}
	}
	t->c[child].parent = NONE;
}

/* Is a an ancestor of b (or b itself)? */
static bool
is_ancestor(const struct threader *t, int a, int b)
{
	for (int x = b; x != NONE; x = t->c[x].parent) {
		if (x == a)
			return true;
	}
	return false;
}

/* Makes p the parent of child unless that would make a loop. */
static void
link_parent(struct threader *t, int p, int child)
{
	if (is_ancestor(t, child, p))
		return;
	t->c[child].parent = p;
	kid_add(&t->c[p], child);
}

/* RFC 5256 REFERENCES step 1: containers and links. */
static void
build_links(struct threader *t)
{
	t->hsize = 16;
	/* each message brings at most 1 + nrefs ids */
	{
		size_t need = 0;

		for (unsigned int i = 0; i < t->nin; i++)
			need += 1 + t->in[i].nrefs;
		while (t->hsize < need * 2)
			t->hsize *= 2;
	}
	t->hash = xmalloc(t->hsize * sizeof(*t->hash));
	for (unsigned int i = 0; i < t->hsize; i++)
		t->hash[i] = NONE;
	for (unsigned int i = 0; i < t->nin; i++) {
		const struct thread_input *m = &t->in[i];
		int self, prev = NONE;

		/* (A) a missing or duplicate Message-ID: a unique container */
		self = NONE;
		if (m->message_id != NULL && m->message_id[0] != '\0')
			self = cont_get(t, m->message_id);
		if (self != NONE && t->c[self].msg == NONE) {
			t->c[self].msg = (int)i;
		} else {
			self = cont_new(t, NULL);
			t->c[self].msg = (int)i;
		}
		/* (B) each reference the parent of the next, unless already
		   linked or a loop */
		for (unsigned int r = 0; r < m->nrefs; r++) {
			int cur = cont_get(t, m->refs[r]);

			if (prev != NONE && cur != prev &&
			    t->c[cur].parent == NONE)
				link_parent(t, prev, cur);
			prev = cur;
		}
		/* (C) the last reference is this message's parent: its own
		   word replaces a link guessed from another's References */
		if (prev != NONE && prev != self) {
			unlink_parent(t, self);
			link_parent(t, prev, self);
		}
	}
}

/* Containers in breadth-first order from the roots (all of them). */
static int *
bfs_order(const struct threader *t, unsigned int *count_r)
{
	int *order = xcalloc(t->n + 1, sizeof(int));
	unsigned int n = 0;

	for (unsigned int i = 0; i < t->n; i++) {
		if (t->c[i].parent == NONE)
			order[n++] = (int)i;
	}
	for (unsigned int q = 0; q < n; q++) {
		const struct cont *c = &t->c[order[q]];

		for (unsigned int k = 0; k < c->nkids; k++)
			order[n++] = c->kids[k];
	}
	*count_r = n;
	return order;
}

/*
 * Step 3: dummies without children go; inside a thread a dummy is
 * replaced by its children. Deepest first, so each container's children
 * are final when it is looked at.
 */
static void
prune(struct threader *t)
{
	unsigned int n;
	int *order = bfs_order(t, &n);

	for (unsigned int q = n; q-- > 0;) {
		struct cont *c = &t->c[order[q]];
		int *kids = c->kids;
		unsigned int nk = c->nkids;

		c->kids = NULL;
		c->nkids = c->capkids = 0;
		for (unsigned int k = 0; k < nk; k++) {
			struct cont *kid = &t->c[kids[k]];

			if (kid->msg != NONE) {
				kid_add(c, kids[k]);
				continue;
			}
			for (unsigned int g = 0; g < kid->nkids; g++) {
				t->c[kid->kids[g]].parent = order[q];
				kid_add(c, kid->kids[g]);
			}
			kid->nkids = 0;
			kid->parent = NONE;
			kid->msg = NONE - 1;	/* gone */
		}
		free(kids);
	}
	free(order);
}

struct sort_ctx {
	const struct threader *t;
	bool newest;		/* REFS: a thread's newest message counts */
	time_t *key_date;	/* per container */
	unsigned int *key_seq;
};

static struct sort_ctx *sort_cur;

static int
cmp_conts(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	const struct sort_ctx *s = sort_cur;

	if (s->key_date[x] != s->key_date[y])
		return s->key_date[x] < s->key_date[y] ? -1 : 1;
	if (s->key_seq[x] != s->key_seq[y])
		return s->key_seq[x] < s->key_seq[y] ? -1 : 1;
	return 0;
}

/*
 * The sort key of every live container: its message's date, or (a
 * dummy) that of its first child once the children are sorted; with
 * newest, the newest date in its subtree. Children are sorted on the
 * way (deepest first).
 */
static void
sort_all(struct threader *t, struct sort_ctx *s, bool sort_kids)
{
	unsigned int n;
	int *order = bfs_order(t, &n);

	sort_cur = s;
	for (unsigned int q = n; q-- > 0;) {
		int ci = order[q];
		struct cont *c = &t->c[ci];

		if (sort_kids && c->nkids > 1)
			qsort(c->kids, c->nkids, sizeof(int), cmp_conts);
		if (c->msg >= 0) {
			s->key_date[ci] = t->in[c->msg].date;
			s->key_seq[ci] = (unsigned int)c->msg;
		} else if (c->nkids > 0) {
			s->key_date[ci] = s->key_date[c->kids[0]];
			s->key_seq[ci] = s->key_seq[c->kids[0]];
		}
		if (s->newest) {
			for (unsigned int k = 0; k < c->nkids; k++) {
				int kid = c->kids[k];

				if (s->key_date[kid] > s->key_date[ci] ||
				    (s->key_date[kid] == s->key_date[ci] &&
				    s->key_seq[kid] > s->key_seq[ci])) {
					s->key_date[ci] = s->key_date[kid];
					s->key_seq[ci] = s->key_seq[kid];
				}
			}
		}
	}
	sort_cur = NULL;
	free(order);
}

/* The live roots, in container order (dummies with no children gone). */
static int *
collect_roots(struct threader *t, unsigned int *count_r)
{
	int *roots = xcalloc(t->n + 1, sizeof(int));
	unsigned int n = 0, ntop = 0;
	int *top = xcalloc(t->n + 1, sizeof(int));

	/* first the roots as they are: promoting changes parents */
	for (unsigned int i = 0; i < t->n; i++) {
		if (t->c[i].parent == NONE && t->c[i].msg >= NONE)
			top[ntop++] = (int)i;
	}
	for (unsigned int j = 0; j < ntop; j++) {
		unsigned int i = (unsigned int)top[j];
		struct cont *c = &t->c[i];

		if (c->msg == NONE && c->nkids == 0)
			continue;
		if (c->msg == NONE && c->nkids == 1) {
			/* a dummy root with one child: the child is the root */
			t->c[c->kids[0]].parent = NONE;
			roots[n++] = c->kids[0];
			c->nkids = 0;
			c->msg = NONE - 1;
			continue;
		}
		roots[n++] = (int)i;
	}
	free(top);
	*count_r = n;
	return roots;
}

static const struct thread_input *
subject_msg(const struct threader *t, int ci)
{
	const struct cont *c = &t->c[ci];

	if (c->msg >= 0)
		return &t->in[c->msg];
	return c->nkids > 0 && t->c[c->kids[0]].msg >= 0 ?
	    &t->in[t->c[c->kids[0]].msg] : NULL;
}

/* Step 5: roots with the same base subject are put together. */
static void
gather_subjects(struct threader *t, int *roots, unsigned int *nroots_io)
{
	unsigned int nroots = *nroots_io, hsize = 16, w = 0;
	int *table;

	while (hsize < nroots * 2 + 2)
		hsize *= 2;
	table = xmalloc(hsize * sizeof(int));
	for (unsigned int i = 0; i < hsize; i++)
		table[i] = NONE;
#define SUBJ(ci) (subject_msg(t, (ci))->base_subject)
	/* (B) the table: a dummy, or a non-reply, wins */
	for (unsigned int r = 0; r < nroots; r++) {
		const struct thread_input *m = subject_msg(t, roots[r]);
		unsigned int h;

		if (m == NULL || m->base_subject == NULL || m->base_subject[0] == '\0')
			continue;
		for (h = str_hash(m->base_subject) & (hsize - 1);
		    table[h] != NONE; h = (h + 1) & (hsize - 1)) {
			if (strcmp(SUBJ(table[h]), m->base_subject) == 0)
				break;
		}
		if (table[h] == NONE) {
			table[h] = roots[r];
		} else {
			const struct cont *old = &t->c[table[h]];

			if (old->msg >= 0 && (t->c[roots[r]].msg == NONE ||
			    (t->in[old->msg].is_reply && !m->is_reply)))
				table[h] = roots[r];
		}
	}
	/* (C) merge each root into the table's one */
	for (unsigned int r = 0; r < nroots; r++) {
		int cur = roots[r], old;
		const struct thread_input *m = subject_msg(t, cur);
		unsigned int h;

		if (cur == NONE)
			continue;
		if (m == NULL || m->base_subject == NULL || m->base_subject[0] == '\0')
			continue;
		for (h = str_hash(m->base_subject) & (hsize - 1);
		    strcmp(SUBJ(table[h]), m->base_subject) != 0;
		    h = (h + 1) & (hsize - 1))
			;
		old = table[h];
		if (old == cur)
			continue;
		if (t->c[old].msg == NONE && t->c[cur].msg == NONE) {
			/* (i) two dummies: one set of children */
			for (unsigned int k = 0; k < t->c[cur].nkids; k++) {
				t->c[t->c[cur].kids[k]].parent = old;
				kid_add(&t->c[old], t->c[cur].kids[k]);
			}
			t->c[cur].nkids = 0;
			t->c[cur].msg = NONE - 1;
		} else if (t->c[old].msg == NONE ||
		    (m->is_reply && !t->in[t->c[old].msg].is_reply)) {
			/* (ii), (iii): under the table's one */
			t->c[cur].parent = old;
			kid_add(&t->c[old], cur);
		} else {
			/* (iv) a new dummy holds both, where old was */
			int d = cont_new(t, NULL);

			kid_add(&t->c[d], old);
			kid_add(&t->c[d], cur);
			t->c[old].parent = d;
			t->c[cur].parent = d;
			for (unsigned int q = 0; q < nroots; q++) {
				if (roots[q] == old)
					roots[q] = d;
			}
			table[h] = d;
		}
		roots[r] = NONE;
	}
#undef SUBJ
	for (unsigned int r = 0; r < nroots; r++) {
		if (roots[r] != NONE)
			roots[w++] = roots[r];
	}
	*nroots_io = w;
	free(table);
}

static struct thread_tree *
to_tree(const struct threader *t, const int *roots, unsigned int nroots)
{
	struct thread_tree *tree = xcalloc(1, sizeof(*tree));
	int *map = xcalloc(t->n + 1, sizeof(int));
	int *stack = xcalloc(t->n + 1, sizeof(int));
	unsigned int sp = 0, used = 0;
	struct thread_node *prev_root = NULL;

	tree->nodes = xcalloc(t->n + 1, sizeof(*tree->nodes));
	for (unsigned int r = 0; r < nroots; r++) {
		struct thread_node *rn = &tree->nodes[used];

		map[roots[r]] = (int)used++;
		rn->id = t->c[roots[r]].msg >= 0 ?
		    t->in[t->c[roots[r]].msg].id : 0;
		if (prev_root != NULL)
			prev_root->next = rn;
		else
			tree->roots = rn;
		prev_root = rn;
		stack[sp++] = roots[r];
		while (sp > 0) {
			int ci = stack[--sp];
			const struct cont *c = &t->c[ci];
			struct thread_node *pn = &tree->nodes[map[ci]], *prev = NULL;

			for (unsigned int k = 0; k < c->nkids; k++) {
				int kid = c->kids[k];
				struct thread_node *kn = &tree->nodes[used];

				map[kid] = (int)used++;
				kn->id = t->c[kid].msg >= 0 ? t->in[t->c[kid].msg].id : 0;
				kn->parent = pn;
				if (prev != NULL)
					prev->next = kn;
				else
					pn->child = kn;
				prev = kn;
				stack[sp++] = kid;
			}
		}
	}
	tree->nnodes = used;
	free(map);
	free(stack);
	return tree;
}

static void
threader_free(struct threader *t)
{
	for (unsigned int i = 0; i < t->n; i++)
		free(t->c[i].kids);
	free(t->c);
	free(t->hash);
}

static struct thread_tree *
thread_links(enum thread_algorithm alg, const struct thread_input *msgs,
    unsigned int n)
{
	struct threader t = { .in = msgs, .nin = n };
	struct sort_ctx s = { .t = &t };
	struct thread_tree *tree;
	unsigned int nroots;
	int *roots;

	build_links(&t);
	prune(&t);
	roots = collect_roots(&t, &nroots);
	/* room for the dummies gathering may add */
	s.key_date = xcalloc(t.n + nroots + 1, sizeof(time_t));
	s.key_seq = xcalloc(t.n + nroots + 1, sizeof(unsigned int));
	/* (4) roots by date (children first: a dummy takes its first one's) */
	sort_all(&t, &s, true);
	if (alg == THREAD_REFS) {
		/* threads by their newest message, siblings as they are */
		s.newest = true;
		sort_all(&t, &s, false);
	}
	sort_cur = &s;
	qsort(roots, nroots, sizeof(int), cmp_conts);
	sort_cur = NULL;
	if (alg == THREAD_REFERENCES) {
		gather_subjects(&t, roots, &nroots);
		/* (6) siblings again, with what gathering added */
		s.key_date = xreallocarray(s.key_date, t.n + 1, sizeof(time_t));
		s.key_seq = xreallocarray(s.key_seq, t.n + 1, sizeof(unsigned int));
		sort_all(&t, &s, true);
	}
	tree = to_tree(&t, roots, nroots);
	free(roots);
	free(s.key_date);
	free(s.key_seq);
	threader_free(&t);
	return tree;
}

/* --- ORDEREDSUBJECT ------------------------------------------------------- */

static const struct thread_input *os_msgs;

static int
cmp_subject_date(const void *a, const void *b)
{
	unsigned int x = *(const unsigned int *)a, y = *(const unsigned int *)b;
	const struct thread_input *mx = &os_msgs[x], *my = &os_msgs[y];
	int c = strcmp(mx->base_subject != NULL ? mx->base_subject : "",
	    my->base_subject != NULL ? my->base_subject : "");

	if (c != 0)
		return c;
	if (mx->date != my->date)
		return mx->date < my->date ? -1 : 1;
	return x < y ? -1 : x > y;
}

static int
cmp_group_first(const void *a, const void *b)
{
	const unsigned int *x = a, *y = b;	/* [0] = index of first msg */

	if (os_msgs[x[0]].date != os_msgs[y[0]].date)
		return os_msgs[x[0]].date < os_msgs[y[0]].date ? -1 : 1;
	return x[0] < y[0] ? -1 : x[0] > y[0];
}

static struct thread_tree *
thread_orderedsubject(const struct thread_input *msgs, unsigned int n)
{
	struct thread_tree *tree = xcalloc(1, sizeof(*tree));
	unsigned int *idx = xcalloc(n + 1, sizeof(*idx));
	/* groups: [first index, start in idx, count] */
	unsigned int (*groups)[3] = xcalloc(n + 1, sizeof(*groups));
	unsigned int ngroups = 0, used = 0;
	struct thread_node *prev_root = NULL;

	for (unsigned int i = 0; i < n; i++)
		idx[i] = i;
	os_msgs = msgs;
	qsort(idx, n, sizeof(*idx), cmp_subject_date);
	for (unsigned int i = 0; i < n; i++) {
		if (i == 0 || strcmp(msgs[idx[i]].base_subject != NULL ?
		    msgs[idx[i]].base_subject : "", msgs[idx[i - 1]].base_subject
		    != NULL ? msgs[idx[i - 1]].base_subject : "") != 0) {
			groups[ngroups][0] = idx[i];
			groups[ngroups][1] = i;
			groups[ngroups][2] = 0;
			ngroups++;
		}
		groups[ngroups - 1][2]++;
	}
	qsort(groups, ngroups, sizeof(*groups), cmp_group_first);
	os_msgs = NULL;
	tree->nodes = xcalloc(n + 1, sizeof(*tree->nodes));
	for (unsigned int g = 0; g < ngroups; g++) {
		struct thread_node *root = &tree->nodes[used++], *prev = NULL;

		root->id = msgs[groups[g][0]].id;
		if (prev_root != NULL)
			prev_root->next = root;
		else
			tree->roots = root;
		prev_root = root;
		for (unsigned int k = 1; k < groups[g][2]; k++) {
			struct thread_node *kn = &tree->nodes[used++];

			kn->id = msgs[idx[groups[g][1] + k]].id;
			kn->parent = root;
			if (prev != NULL)
				prev->next = kn;
			else
				root->child = kn;
			prev = kn;
		}
	}
	tree->nnodes = used;
	free(idx);
	free(groups);
	return tree;
}

struct thread_tree *
thread_build(enum thread_algorithm alg, const struct thread_input *msgs,
    unsigned int n)
{
	if (alg == THREAD_ORDEREDSUBJECT)
		return thread_orderedsubject(msgs, n);
	return thread_links(alg, msgs, n);
}

void
thread_tree_free(struct thread_tree **tree)
{
	if (*tree == NULL)
		return;
	free((*tree)->nodes);
	free(*tree);
	*tree = NULL;
}

/* --- message-ids ------------------------------------------------------------ */

char **
thread_parse_ids(const char *v, unsigned int max, unsigned int *count_r)
{
	char **ids = NULL;
	unsigned int n = 0;
	const char *p = v;

	*count_r = 0;
	if (v == NULL || max == 0)
		return NULL;
	while ((p = strchr(p, '<')) != NULL) {
		const char *e = strchr(p + 1, '>');
		struct buf b;

		if (e == NULL)
			break;
		if ((size_t)(e - p) > ID_MAX || e == p + 1) {
			p = e + 1;
			continue;
		}
		/* folding white space inside an id is not part of it */
		buf_init(&b, ID_MAX + 2);
		for (const char *q = p; q <= e; q++) {
			if (*q != ' ' && *q != '\t' && *q != '\r' && *q != '\n')
				buf_append_c(&b, *q);
		}
		if (n == max) {
			/* keep the nearest ancestors: drop the oldest */
			free(ids[0]);
			memmove(ids, ids + 1, (n - 1) * sizeof(*ids));
			n--;
		}
		ids = xreallocarray(ids, n + 1, sizeof(*ids));
		ids[n++] = buf_steal(&b);
		p = e + 1;
	}
	*count_r = n;
	return ids;
}

void
thread_ids_free(char **ids, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}
