/*
 * store/watch: one inotify instance for the process, two watches (new/
 * and cur/) per open folder, shared by every handle on the folder.
 *
 * inotify also reports what we do ourselves: the renames of STORE, the
 * unlinks of EXPUNGE, APPEND's file arriving in cur/. Before each such
 * change the folder code records (watch, kind, name) here; an event that
 * matches a record is ours and is dropped, anything else in cur/ is
 * someone else's and makes the folder scan itself at its next sync. The
 * records live in a small direct-mapped table of 64-bit hashes: an entry
 * lost to a collision only costs an unneeded scan; a foreign event taken
 * for ours would need a 64-bit hash collision on the same name.
 *
 * Used from the loop thread only (like the shared accounts). If inotify
 * cannot be had (no instance, no watch left), folders fall back to
 * comparing directory mtimes and sessions in IDLE poll.
 */
#include "store/mailbox-private.h"

#include "lib/log.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#define WD_BUCKETS 1024
#define OWN_SLOTS 8192
#define CUR_MASK (IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | \
    IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#define NEW_MASK (IN_MOVED_TO | IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF | \
    IN_ONLYDIR)

struct wd_entry {
	int wd;
	bool is_new;		/* new/ (else cur/) */
	struct store_folder_state *f;
	struct wd_entry *next;
};

struct own_slot {
	uint64_t key;
	unsigned int count;
};

static int ifd = -1;
static bool tried;
static struct wd_entry *buckets[WD_BUCKETS];
static struct own_slot own[OWN_SLOTS];

static bool
watch_init(void)
{
	if (!tried) {
		tried = true;
		ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (ifd < 0)
			log_warn("event=inotify_unavailable error=\"%s\" "
			    "fallback=polling", strerror(errno));
	}
	return ifd >= 0;
}

int
store_watch_fd(void)
{
	return watch_init() ? ifd : -1;
}

static struct wd_entry **
bucket(int wd)
{
	return &buckets[(unsigned int)wd % WD_BUCKETS];
}

static int
add_one(struct store_folder_state *f, const char *sub, uint32_t mask,
    bool is_new)
{
	char *path = xasprintf("%s/%s", f->dir, sub);
	int wd = inotify_add_watch(ifd, path, mask);
	struct wd_entry *e;

	if (wd < 0) {
		log_warn("event=inotify_watch_failed path=%s error=\"%s\" "
		    "fallback=mtime", path, strerror(errno));
		free(path);
		return -1;
	}
	free(path);
	e = xcalloc(1, sizeof(*e));
	e->wd = wd;
	e->is_new = is_new;
	e->f = f;
	e->next = *bucket(wd);
	*bucket(wd) = e;
	return wd;
}

/* Drops f's entry for wd; the kernel watch goes when no entry is left
   (two folder states on one directory share the kernel's watch). */
static void
remove_one(struct store_folder_state *f, int wd)
{
	struct wd_entry **pp, *e;
	bool others = false;

	for (pp = bucket(wd); (e = *pp) != NULL; ) {
		if (e->wd == wd && e->f == f) {
			*pp = e->next;
			free(e);
			continue;
		}
		others |= e->wd == wd;
		pp = &e->next;
	}
	if (!others)
		(void)inotify_rm_watch(ifd, wd);
}

int
store_watch_add(struct store_folder_state *f)
{
	int wn, wc;

	if (!watch_init())
		return -1;
	wn = add_one(f, "new", NEW_MASK, true);
	if (wn < 0)
		return -1;
	wc = add_one(f, "cur", CUR_MASK, false);
	if (wc < 0) {
		remove_one(f, wn);
		return -1;
	}
	f->wd_new = wn;
	f->wd_cur = wc;
	return 0;
}

void
store_watch_remove(struct store_folder_state *f)
{
	if (f->wd_new >= 0)
		remove_one(f, f->wd_new);
	if (f->wd_cur >= 0)
		remove_one(f, f->wd_cur);
	f->wd_new = f->wd_cur = STORE_WATCH_NONE;
}

/* FNV-1a over the watch, the kind and the name. */
static uint64_t
own_key(int wd, char kind, const char *name, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	unsigned char pre[5];

	pre[0] = (unsigned char)wd;
	pre[1] = (unsigned char)(wd >> 8);
	pre[2] = (unsigned char)(wd >> 16);
	pre[3] = (unsigned char)(wd >> 24);
	pre[4] = (unsigned char)kind;
	for (size_t i = 0; i < sizeof(pre); i++)
		h = (h ^ pre[i]) * 1099511628211ULL;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)name[i]) * 1099511628211ULL;
	return h != 0 ? h : 1;
}

void
store_watch_own(struct store_folder_state *f, char kind, const char *sub,
    const char *name)
{
	int wd = strcmp(sub, "new") == 0 ? f->wd_new : f->wd_cur;
	static const char kinds[] = "TF";
	struct own_slot *s;

	if (wd < 0)
		return;
	if (kind == 'U') {
		/* undo: the change did not happen; forget both kinds */
		for (size_t i = 0; i < 2; i++) {
			uint64_t k = own_key(wd, kinds[i], name, strlen(name));

			s = &own[k % OWN_SLOTS];
			if (s->key == k && s->count > 0)
				s->count--;
		}
		return;
	}
	{
		uint64_t k = own_key(wd, kind, name, strlen(name));

		s = &own[k % OWN_SLOTS];
		if (s->key == k) {
			s->count++;
		} else {
			s->key = k;
			s->count = 1;
		}
	}
}

static bool
own_consume(int wd, char kind, const char *name)
{
	uint64_t k = own_key(wd, kind, name, strlen(name));
	struct own_slot *s = &own[k % OWN_SLOTS];

	if (s->key != k || s->count == 0)
		return false;
	s->count--;
	return true;
}

static void
mark_all(void)
{
	for (size_t b = 0; b < WD_BUCKETS; b++) {
		for (struct wd_entry *e = buckets[b]; e != NULL; e = e->next) {
			e->f->need_new = true;
			if (!e->is_new)
				e->f->need_rescan = true;
		}
	}
}

/* Folders marked by this read, to be notified once each. */
struct touched {
	struct store_folder_state **f;
	unsigned int n, cap;
};

static void
touch(struct touched *t, struct store_folder_state *f)
{
	for (unsigned int i = 0; i < t->n; i++) {
		if (t->f[i] == f)
			return;
	}
	if (t->n == t->cap) {
		t->cap = t->cap == 0 ? 8 : t->cap * 2;
		t->f = xreallocarray(t->f, t->cap, sizeof(*t->f));
	}
	t->f[t->n++] = f;
}

static void
handle_event(const struct inotify_event *ev, struct touched *t)
{
	char kind;

	if ((ev->mask & IN_ISDIR) != 0)
		return;
	kind = (ev->mask & (IN_MOVED_TO | IN_CREATE)) != 0 ? 'T' : 'F';
	for (struct wd_entry *e = *bucket(ev->wd); e != NULL; e = e->next) {
		struct store_folder_state *f = e->f;

		if (e->wd != ev->wd)
			continue;
		if ((ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) != 0) {
			/* the directory went away or moved: look again */
			f->need_rescan = true;
			f->need_new = true;
			touch(t, f);
			continue;
		}
		if (ev->len == 0 || ev->name[0] == '.')
			continue;
		if (own_consume(ev->wd, kind, ev->name))
			continue;
		if (e->is_new) {
			if (kind == 'T') {
				f->need_new = true;
				touch(t, f);
			}
			/* leaving new/ shows up again as arriving in cur/ */
			continue;
		}
		store_folder_foreign(f, kind, ev->name);
		touch(t, f);
	}
}

void
store_watch_read(void)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct touched t = { 0 };
	ssize_t n;

	if (ifd < 0)
		return;
	while ((n = read(ifd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n; ) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if ((ev->mask & IN_Q_OVERFLOW) != 0) {
				log_warn("event=inotify_overflow action=rescan");
				mark_all();
				for (size_t b = 0; b < WD_BUCKETS; b++)
					for (struct wd_entry *e = buckets[b]; e != NULL; e = e->next)
						touch(&t, e->f);
			} else {
				handle_event(ev, &t);
			}
			p += sizeof(*ev) + ev->len;
		}
	}
	for (unsigned int i = 0; i < t.n; i++)
		store_folder_state_notify(t.f[i], NULL);
	free(t.f);
}

void
store_watch_dispatch(void)
{
	store_watch_read();
}

static void (*waiting_hook)(void);

void
store_watch_set_waiting_hook(void (*hook)(void))
{
	waiting_hook = hook;
}

void
store_watch_waiting(void)
{
	if (waiting_hook != NULL)
		waiting_hook();
}

/*
 * The handles of a waiting folder look again (a sync past the grace reads
 * cur/). A folder nobody syncs stays waiting until its next sync: it keeps
 * the retries going only for twice the grace.
 */
bool
store_watch_retry(void)
{
	struct touched t = { 0 };
	uint64_t now = store_now_ms();
	bool more = false;

	for (size_t b = 0; b < WD_BUCKETS; b++) {
		for (struct wd_entry *e = buckets[b]; e != NULL; e = e->next) {
			if (e->is_new || !store_folder_foreign_waiting(e->f))
				continue;
			touch(&t, e->f);
			if (now - e->f->foreign_since <= 2 * (uint64_t)store_foreign_grace_ms)
				more = true;
		}
	}
	for (unsigned int i = 0; i < t.n; i++)
		store_folder_state_notify(t.f[i], NULL);
	free(t.f);
	return more;
}
