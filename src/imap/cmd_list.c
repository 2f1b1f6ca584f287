/*
 * LIST with the RFC 5258 (LIST-EXTENDED) syntax:
 *
 *   LIST [(selection options)] reference (pattern | (pattern ...))
 *        [RETURN (return options)]
 *
 * Selection options: SUBSCRIBED, REMOTE (there are no remote mailboxes:
 * no effect), RECURSIVEMATCH (needs SUBSCRIBED or SPECIAL-USE), SPECIAL-USE
 * (RFC 6154). Return options: SUBSCRIBED, CHILDREN, SPECIAL-USE and
 * STATUS (RFC 5819 LIST-STATUS). Unknown options are BAD.
 *
 * Unlike the plain LIST of cmd_mailbox.c, attributes are only those the
 * options ask for: \HasChildren/\HasNoChildren with CHILDREN, \Subscribed
 * with SUBSCRIBED (selection or return), special-use with SPECIAL-USE;
 * \NonExistent (subscribed names with no folder) and \Noselect always.
 *
 * RECURSIVEMATCH: a name that matches a pattern but not the selection is
 * still listed, with CHILDINFO ("SUBSCRIBED") or ("SPECIAL-USE"), when
 * one of its descendants meets the selection and is not itself listed by
 * the patterns (RFC 5258 3.5 and the examples of section 5).
 */
#include "imap/session-private.h"

#include "imap/bodystructure.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_PATTERNS 64

struct list_opts {
	bool sel_subscribed, sel_recursive, sel_special, sel_remote;
	bool ret_subscribed, ret_children, ret_special;
	const struct imap_arg *status_items;	/* RETURN (STATUS (...)) */
	unsigned int nstatus;
	char *patterns[MAX_PATTERNS];		/* reference + pattern */
	unsigned int npatterns;
};

static void
opts_free(struct list_opts *o)
{
	for (unsigned int i = 0; i < o->npatterns; i++)
		free(o->patterns[i]);
}

static int
parse_selection(struct list_opts *o, const struct imap_arg *list)
{
	for (unsigned int i = 0; i < list->count; i++) {
		const struct imap_arg *it = &list->list[i];

		if (imap_arg_is_atom(it, "SUBSCRIBED"))
			o->sel_subscribed = true;
		else if (imap_arg_is_atom(it, "REMOTE"))
			o->sel_remote = true;
		else if (imap_arg_is_atom(it, "RECURSIVEMATCH"))
			o->sel_recursive = true;
		else if (imap_arg_is_atom(it, "SPECIAL-USE"))
			o->sel_special = true;
		else
			return -1;
	}
	/* RECURSIVEMATCH alone (or with REMOTE only) means nothing: BAD */
	if (o->sel_recursive && !o->sel_subscribed && !o->sel_special)
		return -1;
	return 0;
}

static int
parse_return(struct list_opts *o, const struct imap_arg *list)
{
	for (unsigned int i = 0; i < list->count; i++) {
		const struct imap_arg *it = &list->list[i];

		if (imap_arg_is_atom(it, "SUBSCRIBED")) {
			o->ret_subscribed = true;
		} else if (imap_arg_is_atom(it, "CHILDREN")) {
			o->ret_children = true;
		} else if (imap_arg_is_atom(it, "SPECIAL-USE")) {
			o->ret_special = true;
		} else if (imap_arg_is_atom(it, "STATUS") && i + 1 < list->count &&
		    list->list[i + 1].type == IMAP_ARG_LIST) {
			o->status_items = list->list[i + 1].list;
			o->nstatus = list->list[i + 1].count;
			if (!imap_status_items_valid(o->status_items, o->nstatus))
				return -1;
			i++;
		} else {
			return -1;
		}
	}
	return 0;
}

/* Parses the arguments; -1 after a BAD reply. */
static int
parse_args(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    struct list_opts *o)
{
	unsigned int i = 0;
	const char *ref;
	const struct imap_arg *pats;
	unsigned int npats;

	memset(o, 0, sizeof(*o));
	if (i < n && a[i].type == IMAP_ARG_LIST) {
		if (parse_selection(o, &a[i]) < 0) {
			imap_tagged(s, "BAD", "Invalid LIST selection options");
			return -1;
		}
		i++;
	}
	if (i + 2 > n || (ref = imap_arg_astring(&a[i])) == NULL) {
		imap_tagged(s, "BAD", "LIST needs a reference and a pattern");
		return -1;
	}
	i++;
	if (a[i].type == IMAP_ARG_LIST) {
		pats = a[i].list;
		npats = a[i].count;
	} else {
		pats = &a[i];
		npats = 1;
	}
	if (npats == 0 || npats > MAX_PATTERNS) {
		imap_tagged(s, "BAD", "Invalid LIST patterns");
		return -1;
	}
	for (unsigned int p = 0; p < npats; p++) {
		const char *pat = imap_arg_astring(&pats[p]);

		if (pat == NULL) {
			opts_free(o);
			imap_tagged(s, "BAD", "Invalid LIST pattern");
			return -1;
		}
		/* an empty pattern asks for the hierarchy delimiter */
		o->patterns[o->npatterns++] = *pat == '\0' ? xstrdup("") :
		    xasprintf("%s%s", ref, pat);
	}
	i++;
	if (i < n) {
		if (!imap_arg_is_atom(&a[i], "RETURN") || i + 2 != n ||
		    a[i + 1].type != IMAP_ARG_LIST ||
		    parse_return(o, &a[i + 1]) < 0) {
			opts_free(o);
			imap_tagged(s, "BAD", "Invalid LIST return options");
			return -1;
		}
	}
	return 0;
}

static bool
matches_any(const struct list_opts *o, const char *name)
{
	for (unsigned int i = 0; i < o->npatterns; i++) {
		if (o->patterns[i][0] != '\0' && imap_list_match(o->patterns[i], name))
			return true;
	}
	return false;
}

/* Does the folder meet the selection options (other than RECURSIVEMATCH)? */
static bool
selected(const struct list_opts *o, const struct store_folder *f)
{
	if (o->sel_subscribed && !f->subscribed)
		return false;
	if (o->sel_special && (!f->exists || f->special_use == NULL))
		return false;
	/* without SUBSCRIBED only folders that exist are listed */
	return o->sel_subscribed || f->exists;
}

/*
 * A level of hierarchy that is no folder ("a" of "a.b") is listed when a
 * pattern matches it (RFC 3501 6.3.8 asks it of a trailing '%'; Dovecot
 * lists it for '*' too, and clients walking the tree with '*' expect it),
 * and only without a selection option: those select real names.
 */
static bool
parent_listed(const struct list_opts *o, const struct store_folder *f)
{
	if (f->exists || f->subscribed || o->sel_subscribed || o->sel_special)
		return false;
	return imap_list_parent_match(o->patterns, o->npatterns, f->name);
}

/*
 * RECURSIVEMATCH: has name a descendant that meets the selection but is
 * not listed by the patterns itself?
 */
static bool
childinfo(const struct list_opts *o, const struct store_folder *list,
    unsigned int count, const char *name)
{
	size_t len = strlen(name);

	for (unsigned int i = 0; i < count; i++) {
		if (strncmp(list[i].name, name, len) == 0 &&
		    list[i].name[len] == '.' && selected(o, &list[i]) &&
		    !matches_any(o, list[i].name))
			return true;
	}
	return false;
}

bool
imap_list_parent_match(char *const *patterns, unsigned int n, const char *name)
{
	for (unsigned int i = 0; i < n; i++) {
		if (imap_list_match(patterns[i], name))
			return true;
	}
	return false;
}

static bool
name_known(const struct store_folder *list, unsigned int count,
    const char *name)
{
	for (unsigned int i = 0; i < count; i++) {
		if (strcmp(list[i].name, name) == 0)
			return true;
	}
	return false;
}

void
imap_folders_add_parents(struct store_folder **listp, unsigned int *countp)
{
	unsigned int count = *countp;

	for (unsigned int i = 0; i < count; i++) {
		const char *name = (*listp)[i].name;

		/* a subscription with no folder makes no level that exists */
		if (!(*listp)[i].exists)
			continue;
		for (const char *dot = strchr(name, '.'); dot != NULL;
		    dot = strchr(dot + 1, '.')) {
			char *parent = xstrndup(name, (size_t)(dot - name));

			if (name_known(*listp, *countp, parent)) {
				free(parent);
				continue;
			}
			*listp = xreallocarray(*listp, *countp + 1, sizeof(**listp));
			memset(&(*listp)[*countp], 0, sizeof(**listp));
			(*listp)[*countp].name = parent;
			(*listp)[*countp].has_children = true;
			(*countp)++;
		}
	}
}

static void
append_attrs(struct buf *b, const struct list_opts *o,
    const struct store_folder *f)
{
	bool first = true;
#define ATTR(x) do { buf_printf(b, "%s%s", first ? "" : " ", x); first = false; } while (0)

	if (!f->exists)
		ATTR("\\NonExistent");
	if (o->ret_children && (f->exists || f->has_children))
		ATTR(f->has_children ? "\\HasChildren" : "\\HasNoChildren");
	if ((o->sel_subscribed || o->ret_subscribed) && f->subscribed)
		ATTR("\\Subscribed");
	if ((o->sel_special || o->ret_special) && f->exists &&
	    f->special_use != NULL)
		ATTR(f->special_use);
#undef ATTR
}

void
imap_list_extended(struct imap_session *s, const struct imap_arg *a,
    unsigned int n)
{
	struct list_opts o;
	struct store_folder *list;
	unsigned int count;
	char *err = NULL;
	struct buf b;

	if (parse_args(s, a, n, &o) < 0)
		return;
	if (store_folder_list(s->acct, &list, &count, &err) < 0) {
		opts_free(&o);
		imap_tagged(s, "NO", "%s", err);
		free(err);
		return;
	}
	imap_folders_add_parents(&list, &count);
	buf_init(&b, BUF_UNLIMITED);
	for (unsigned int p = 0; p < o.npatterns; p++) {
		if (o.patterns[p][0] == '\0') {
			buf_append_str(&b, "* LIST (\\Noselect) \".\" \"\"\r\n");
			break;
		}
	}
	for (unsigned int i = 0; i < count; i++) {
		const struct store_folder *f = &list[i];
		bool child = false;

		if (!matches_any(&o, f->name))
			continue;
		if (!selected(&o, f) && !parent_listed(&o, f)) {
			if (!o.sel_recursive || !childinfo(&o, list, count, f->name))
				continue;
			child = true;
		}
		buf_append_str(&b, "* LIST (");
		append_attrs(&b, &o, f);
		buf_append_str(&b, ") \".\" ");
		imap_append_mailbox(s, &b, f->name);
		if (o.sel_recursive && (child || childinfo(&o, list, count, f->name)))
			buf_printf(&b, " (\"CHILDINFO\" (\"%s\"))",
			    o.sel_subscribed ? "SUBSCRIBED" : "SPECIAL-USE");
		buf_append_str(&b, "\r\n");
		if (o.status_items != NULL && f->exists) {
			/* LIST-STATUS: STATUS right after its LIST line; a
			   folder that cannot be opened just has none */
			imap_write(s, b.data, b.len);
			buf_reset(&b);
			if (imap_status_write(s, f->name, o.status_items,
			    o.nstatus, &err) < 0) {
				log_debug("event=imap_list_status_failed error=\"%s\"",
				    err);
				x_free(&err);
			}
		}
	}
	imap_write(s, b.data, b.len);
	buf_free(&b);
	store_folders_free(list, count);
	opts_free(&o);
	imap_tagged(s, "OK", "List completed.");
}
