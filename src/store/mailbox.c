/*
 * store/mailbox: the account and its folder tree (Maildir++), and the
 * subscriptions file. The index and message operations are in index.c.
 */
#include "store/mailbox-private.h"

#include "lib/buf.h"
#include "lib/file.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#define SUBSCRIPTIONS_FILE "subscriptions"
/* CREATE-SPECIAL-USE: the attributes given at CREATE, kept inside the
   folder's directory so they follow a RENAME and survive an index rebuild */
#define SPECIAL_USE_FILE "tegami-special-use"
#define SPECIAL_USE_MAX 256
#define SUBSCRIPTIONS_MAX (1024 * 1024)
#define FOLDER_NAME_MAX 255

struct special_folder {
	const char *name;
	const char *use;
	bool autocreate;
};

/* docker-mailserver's 15-mailboxes.conf: these four are created and
   subscribed; Archive is opt-in but gets its special-use when present */
static const struct special_folder special_folders[] = {
	{ "Drafts", "\\Drafts", true },
	{ "Junk", "\\Junk", true },
	{ "Trash", "\\Trash", true },
	{ "Sent", "\\Sent", true },
	{ "Archive", "\\Archive", false },
};

bool
store_is_inbox(const char *name)
{
	return strcasecmp(name, "INBOX") == 0;
}

void
store_msgs_free(struct store_msg *msgs, unsigned int count)
{
	for (unsigned int i = 0; i < count; i++)
		free(msgs[i].base);	/* owns path and keywords too */
	free(msgs);
}

void
store_msg_set_strings(struct store_msg *m, const char *base, const char *path,
    const char *keywords)
{
	size_t bl, pl, kl;
	char *p;

	if (keywords == NULL)
		keywords = "";
	bl = strlen(base) + 1;
	pl = strlen(path) + 1;
	kl = strlen(keywords) + 1;
	/* one allocation per message: a large folder is many of these */
	p = xmalloc(bl + pl + kl);
	memcpy(p, base, bl);
	memcpy(p + bl, path, pl);
	memcpy(p + bl + pl, keywords, kl);
	free(m->base);
	m->base = p;
	m->path = p + bl;
	m->keywords = p + bl + pl;
}

const char *
store_account_root(const struct store_account *acct)
{
	return acct->root;
}

bool
store_folder_name_valid(const char *name)
{
	size_t len = strlen(name);
	const char *p;

	if (len == 0 || len > FOLDER_NAME_MAX)
		return false;
	if (store_is_inbox(name))
		return true;
	/* no empty level ("a..b", ".a", "a."), no path tricks */
	if (name[0] == '.' || name[len - 1] == '.' || strstr(name, "..") != NULL)
		return false;
	for (p = name; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c < 0x20 || c == 0x7f || c == '/' || c == '\\' ||
		    c == '*' || c == '%' || c == '~')
			return false;
	}
	/* levels that would collide with Maildir's own directories */
	return strcmp(name, "cur") != 0 && strcmp(name, "new") != 0 &&
	    strcmp(name, "tmp") != 0;
}

char *
store_folder_path(const struct store_account *acct, const char *name)
{
	if (!store_folder_name_valid(name))
		return NULL;
	if (store_is_inbox(name))
		return xstrdup(acct->root);
	return xasprintf("%s/.%s", acct->root, name);
}

static bool
is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool
folder_exists(const char *dir)
{
	char *cur = xasprintf("%s/cur", dir);
	bool r = is_dir(cur);

	free(cur);
	return r;
}

/*
 * cur/ new/ tmp/ and, for a subfolder, the maildirfolder marker. fsyncs
 * only what it made: this runs at every login.
 */
static int
maildir_make(const char *dir, bool subfolder)
{
	static const char *const subs[] = { "cur", "new", "tmp" };
	bool made = false;

	if (!is_dir(dir)) {
		if (mkdir_p(dir, 0700) < 0)
			return -1;
		made = true;
	}
	for (size_t i = 0; i < 3; i++) {
		char *p = xasprintf("%s/%s", dir, subs[i]);
		int r = mkdir(p, 0700);

		free(p);
		if (r < 0 && errno != EEXIST)
			return -1;
		made |= r == 0;
	}
	if (subfolder) {
		char *p = xasprintf("%s/maildirfolder", dir);

		if (access(p, F_OK) < 0) {
			FILE *f = fopen(p, "a");

			if (f != NULL)
				fclose(f);
			made = true;
		}
		free(p);
	}
	if (!made)
		return 0;
	return fsync_dir(dir) < 0 ? -1 : fsync_parent(dir);
}

/* --- subscriptions ------------------------------------------------------ */

/*
 * Dovecot's file: "V\t2\n\n", then one name per line with each hierarchy
 * separator written as a TAB. The version 1 form (no header, names as
 * they are) is read too.
 */
static char **
subs_read(const struct store_account *acct, unsigned int *count_r)
{
	char *path = xasprintf("%s/" SUBSCRIPTIONS_FILE, acct->root);
	char *data, *line, *save = NULL;
	size_t len;
	char **names = NULL;
	unsigned int n = 0, cap = 0;
	bool v2 = false;

	*count_r = 0;
	if (file_read_all(path, SUBSCRIPTIONS_MAX, &data, &len) < 0) {
		free(path);
		return NULL;
	}
	free(path);
	if (strncmp(data, "V\t2\n", 4) == 0)
		v2 = true;
	for (line = strtok_r(v2 ? data + 4 : data, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (*line == '\0')
			continue;
		if (v2) {
			for (char *c = line; *c != '\0'; c++) {
				if (*c == '\t')
					*c = '.';
			}
		}
		if (n == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			names = xreallocarray(names, cap + 1, sizeof(*names));
		}
		names[n++] = xstrdup(line);
	}
	free(data);
	*count_r = n;
	return names;
}

static void
subs_free(char **names, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int
subs_write(const struct store_account *acct, char **names, unsigned int n)
{
	struct buf b;
	char *path = xasprintf("%s/" SUBSCRIPTIONS_FILE, acct->root);
	int r;

	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "V\t2\n\n");
	for (unsigned int i = 0; i < n; i++) {
		for (const char *c = names[i]; *c != '\0'; c++)
			buf_append_c(&b, *c == '.' ? '\t' : *c);
		buf_append_c(&b, '\n');
	}
	r = file_write_atomic(path, b.data, b.len, 0600);
	buf_free(&b);
	free(path);
	return r;
}

static bool
subs_has(char **names, unsigned int n, const char *name)
{
	for (unsigned int i = 0; i < n; i++) {
		if (strcmp(names[i], name) == 0 ||
		    (store_is_inbox(name) && store_is_inbox(names[i])))
			return true;
	}
	return false;
}

int
store_subscribe(struct store_account *acct, const char *name, bool on,
    char **error_r)
{
	unsigned int n, i;
	char **names;
	int r = 0, lockfd;

	if (!store_folder_name_valid(name)) {
		*error_r = xstrdup("Invalid mailbox name");
		return -1;
	}
	/*
	 * Read, change and write under a lock on the account directory:
	 * another imap worker may be changing the file too, and the rename
	 * of one would undo the other's change.
	 */
	lockfd = file_lock_dir(acct->root);
	if (lockfd < 0) {
		*error_r = xasprintf("Cannot lock subscriptions: %s",
		    strerror(errno));
		return -1;
	}
	names = subs_read(acct, &n);
	if (on && !subs_has(names, n, name)) {
		names = xreallocarray(names, n + 1, sizeof(*names));
		names[n++] = xstrdup(store_is_inbox(name) ? "INBOX" : name);
		r = subs_write(acct, names, n);
	} else if (!on && subs_has(names, n, name)) {
		for (i = 0; i < n; i++) {
			if (strcmp(names[i], name) == 0 ||
			    (store_is_inbox(name) && store_is_inbox(names[i]))) {
				free(names[i]);
				memmove(names + i, names + i + 1,
				    (n - i - 1) * sizeof(*names));
				n--;
				i--;
			}
		}
		r = subs_write(acct, names, n);
	}
	if (r < 0)
		*error_r = xasprintf("Cannot write subscriptions: %s",
		    strerror(errno));
	subs_free(names, n);
	close(lockfd);		/* and the lock with it */
	return r < 0 ? -1 : 0;
}

/* --- account ------------------------------------------------------------- */

static int
autocreate(struct store_account *acct, char **error_r)
{
	for (size_t i = 0; i < sizeof(special_folders) / sizeof(special_folders[0]); i++) {
		const struct special_folder *sf = &special_folders[i];
		char *dir;

		if (!sf->autocreate)
			continue;
		dir = store_folder_path(acct, sf->name);
		if (!folder_exists(dir)) {
			if (maildir_make(dir, true) < 0) {
				*error_r = xasprintf("Cannot create %s: %s",
				    dir, strerror(errno));
				free(dir);
				return -1;
			}
			if (store_subscribe(acct, sf->name, true, error_r) < 0) {
				free(dir);
				return -1;
			}
		}
		free(dir);
	}
	return 0;
}

/* Accounts open in this process (the loop thread's), by root. */
static struct store_account *registry;
/* The trash of accounts closed before it was taken (store_trash_janitor),
   NULL-terminated. */
static bool janitor;
static char **orphans;
static size_t norphans;

/* Moves the account's trash to the end of *paths (NULL-terminated). */
static void
trash_move(struct store_account *acct, char ***paths, size_t *n)
{
	if (acct->ntrash == 0)
		return;
	*paths = xreallocarray(*paths, *n + acct->ntrash + 1, sizeof(**paths));
	memcpy(*paths + *n, acct->trash, acct->ntrash * sizeof(**paths));
	*n += acct->ntrash;
	(*paths)[*n] = NULL;
	x_free(&acct->trash);
	acct->ntrash = 0;
}

static int
account_open(const char *root, bool shared, struct store_account **acct_r,
    char **error_r)
{
	struct store_account *acct;
	size_t len = strlen(root);

	while (len > 1 && root[len - 1] == '/')
		len--;
	if (shared) {
		for (acct = registry; acct != NULL; acct = acct->next) {
			if (strlen(acct->root) == len &&
			    strncmp(acct->root, root, len) == 0) {
				acct->refs++;
				*acct_r = acct;
				return 0;
			}
		}
	}
	acct = xcalloc(1, sizeof(*acct));
	acct->refs = 1;
	acct->shared = shared;
	acct->root = xstrndup(root, len);
	if (maildir_make(acct->root, false) < 0) {
		*error_r = xasprintf("Cannot create Maildir %s: %s", acct->root,
		    strerror(errno));
		store_account_close(&acct);
		return -1;
	}
	if (autocreate(acct, error_r) < 0 || store_index_open(acct, error_r) < 0) {
		store_account_close(&acct);
		return -1;
	}
	if (shared) {
		acct->next = registry;
		registry = acct;
	}
	*acct_r = acct;
	return 0;
}

int
store_account_open(const char *root, struct store_account **acct_r,
    char **error_r)
{
	return account_open(root, true, acct_r, error_r);
}

int
store_account_open_private(const char *root, struct store_account **acct_r,
    char **error_r)
{
	return account_open(root, false, acct_r, error_r);
}

unsigned int
store_accounts_idle(unsigned int idle_secs)
{
	struct timespec ts;
	unsigned int n = 0;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	for (struct store_account *a = registry; a != NULL; a = a->next) {
		if (a->db == NULL || a->batch > 0 ||
		    ts.tv_sec - a->last_used < (time_t)idle_secs)
			continue;
		store_folders_flush_names(a);
		store_folders_sleep(a);
		store_index_close(a);
		n++;
	}
	return n;
}

void
store_names_flush(void)
{
	for (struct store_account *a = registry; a != NULL; a = a->next)
		store_folders_flush_names(a);
}

char **
store_checkpoints_wanted(void)
{
	char **paths = NULL;
	size_t n = 0;

	for (struct store_account *a = registry; a != NULL; a = a->next) {
		if (!a->ckpt_wanted || a->ckpt_pending)
			continue;
		a->ckpt_wanted = false;
		a->ckpt_pending = true;
		paths = xreallocarray(paths, n + 2, sizeof(*paths));
		paths[n++] = xasprintf("%s/" STORE_INDEX_FILE, a->root);
		paths[n] = NULL;
	}
	return paths;
}

/*
 * The pool's checkpoint copied the frames it found, but the loop kept
 * committing meanwhile, and SQLite starts the log over only when a
 * writer begins with every frame copied: left alone, a busy account's
 * WAL would grow to the fallback size in wal_hook (80 MB, all of it
 * fresh file blocks the kernel must allocate and zero on every commit).
 * So the loop copies the few frames written since, itself: between two
 * commands nobody else writes, the next commit starts the log over. That
 * costs two fsyncs on the loop (the WAL's, the index's) and one more for
 * the new log's header, so it is done only once the log is past
 * WAL_TAIL_FRAMES: below that the log just grows (the pool's checkpoints
 * keeping the index file current), and once started over it is written
 * again into blocks the file already has.
 */
#define WAL_TAIL_FRAMES 4000

void
store_checkpoint_done(const char *path)
{
	for (struct store_account *a = registry; a != NULL; a = a->next) {
		size_t l = strlen(a->root);
		int nlog = -1, nckpt = -1, rc;

		if (strncmp(path, a->root, l) != 0 || path[l] != '/')
			continue;
		a->ckpt_pending = false;
		if (a->db == NULL || a->batch > 0 || a->wal_frames < WAL_TAIL_FRAMES)
			continue;
		rc = sqlite3_wal_checkpoint_v2(a->db, NULL,
		    SQLITE_CHECKPOINT_PASSIVE, &nlog, &nckpt);
		log_debug("event=index_checkpoint_tail root=%s rc=%d frames=%d "
		    "copied=%d", a->root, rc, nlog, nckpt);
	}
}

struct store_account *
store_account_ref(struct store_account *acct)
{
	acct->refs++;
	return acct;
}

void
store_account_close(struct store_account **acctp)
{
	struct store_account *acct = *acctp, **pp;

	if (acct == NULL)
		return;
	*acctp = NULL;
	if (--acct->refs > 0)
		return;
	if (acct->folders != NULL)
		panic("store_account_close: folder %s still open",
		    acct->folders->name);
	if (acct->shared) {
		/* a failed open never went into the registry: nothing found */
		for (pp = &registry; *pp != NULL; pp = &(*pp)->next) {
			if (*pp == acct) {
				*pp = acct->next;
				break;
			}
		}
	}
	if (janitor)
		trash_move(acct, &orphans, &norphans);
	store_trash_flush(acct);
	store_index_close(acct);
	free(acct->root);
	free(acct);
}

void
store_trash_janitor(void)
{
	janitor = true;
}

bool
store_names_deferred(const struct store_account *acct)
{
	return acct->shared && janitor;
}

char **
store_trash_take(void)
{
	char **paths = orphans;
	size_t n = norphans;

	orphans = NULL;
	norphans = 0;
	for (struct store_account *a = registry; a != NULL; a = a->next)
		trash_move(a, &paths, &n);
	return paths;
}

/* --- folders --------------------------------------------------------------- */

static int remove_tree(const char *path, unsigned int depth);

/*
 * The folder's special-use attributes (malloc'd, space-separated) or NULL:
 * what CREATE ... (USE (...)) stored, else the docker-mailserver default
 * of its name.
 */
static char *
special_use_of(const struct store_account *acct, const char *name)
{
	char *dir = store_folder_path(acct, name), *path, *data;
	size_t len;

	if (dir != NULL) {
		path = xasprintf("%s/" SPECIAL_USE_FILE, dir);
		free(dir);
		if (file_read_all(path, SPECIAL_USE_MAX, &data, &len) == 0) {
			free(path);
			str_trim(data);
			if (*data != '\0')
				return data;
			free(data);
		} else {
			free(path);
		}
	}
	for (size_t i = 0; i < sizeof(special_folders) / sizeof(special_folders[0]); i++) {
		if (strcmp(special_folders[i].name, name) == 0)
			return xstrdup(special_folders[i].use);
	}
	return NULL;
}

static const char *const special_use_known[] = {
	"\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash",
};

const char *
store_special_use_name(const char *attr)
{
	for (size_t i = 0; i < sizeof(special_use_known) / sizeof(special_use_known[0]); i++) {
		if (strcasecmp(special_use_known[i], attr) == 0)
			return special_use_known[i];
	}
	return NULL;
}

static int
folder_cmp(const void *a, const void *b)
{
	const struct store_folder *x = a, *y = b;

	if (store_is_inbox(x->name) != store_is_inbox(y->name))
		return store_is_inbox(x->name) ? -1 : 1;
	return strcmp(x->name, y->name);
}

void
store_folders_free(struct store_folder *list, unsigned int count)
{
	for (unsigned int i = 0; i < count; i++) {
		free(list[i].name);
		free(list[i].special_use);
	}
	free(list);
}

int
store_folder_list(struct store_account *acct, struct store_folder **list_r,
    unsigned int *count_r, char **error_r)
{
	DIR *d = file_opendir(acct->root);
	struct dirent *de;
	struct store_folder *list = NULL;
	unsigned int n = 0, cap = 0, nsubs;
	char **subs;

	if (d == NULL) {
		*error_r = xasprintf("Cannot list %s: %s", acct->root,
		    strerror(errno));
		return -1;
	}
	cap = 16;
	list = xcalloc(cap, sizeof(*list));
	list[n++].name = xstrdup("INBOX");
	while ((de = readdir(d)) != NULL) {
		char *dir;

		if (de->d_name[0] != '.' || !store_folder_name_valid(de->d_name + 1) ||
		    store_is_inbox(de->d_name + 1))
			continue;
		dir = xasprintf("%s/%s", acct->root, de->d_name);
		if (folder_exists(dir)) {
			if (n == cap) {
				cap *= 2;
				list = xreallocarray(list, cap, sizeof(*list));
			}
			memset(&list[n], 0, sizeof(list[n]));
			list[n++].name = xstrdup(de->d_name + 1);
		}
		free(dir);
	}
	closedir(d);
	for (unsigned int i = 0; i < n; i++)
		list[i].exists = true;
	/* subscribed names without a folder (LSUB / LIST SUBSCRIBED show them) */
	subs = subs_read(acct, &nsubs);
	for (unsigned int s = 0; s < nsubs; s++) {
		bool found = false;

		for (unsigned int i = 0; i < n; i++) {
			if (strcmp(list[i].name, subs[s]) == 0 ||
			    (store_is_inbox(subs[s]) && store_is_inbox(list[i].name))) {
				list[i].subscribed = true;
				found = true;
			}
		}
		if (!found && store_folder_name_valid(subs[s])) {
			if (n == cap) {
				cap *= 2;
				list = xreallocarray(list, cap, sizeof(*list));
			}
			memset(&list[n], 0, sizeof(list[n]));
			list[n].name = xstrdup(subs[s]);
			list[n].subscribed = true;
			n++;
		}
	}
	subs_free(subs, nsubs);
	for (unsigned int i = 0; i < n; i++) {
		size_t len = strlen(list[i].name);

		if (list[i].exists)
			list[i].special_use = special_use_of(acct, list[i].name);
		for (unsigned int j = 0; j < n; j++) {
			if (list[j].exists && strncmp(list[j].name, list[i].name, len) == 0 &&
			    list[j].name[len] == '.')
				list[i].has_children = true;
		}
	}
	qsort(list, n, sizeof(*list), folder_cmp);
	*list_r = list;
	*count_r = n;
	return 0;
}

int
store_folder_create(struct store_account *acct, const char *name,
    char **error_r)
{
	return store_folder_create_special(acct, name, NULL, error_r);
}

int
store_folder_create_special(struct store_account *acct, const char *name,
    const char *special_use, char **error_r)
{
	char *dir;

	if (!store_folder_name_valid(name)) {
		*error_r = xstrdup("Invalid mailbox name");
		return -1;
	}
	if (store_is_inbox(name)) {
		*error_r = xstrdup("[ALREADYEXISTS] Mailbox already exists");
		return -1;
	}
	dir = store_folder_path(acct, name);
	if (folder_exists(dir)) {
		free(dir);
		*error_r = xstrdup("[ALREADYEXISTS] Mailbox already exists");
		return -1;
	}
	if (maildir_make(dir, true) < 0) {
		*error_r = xasprintf("Cannot create mailbox: %s", strerror(errno));
		free(dir);
		return -1;
	}
	if (special_use != NULL && *special_use != '\0') {
		char *path = xasprintf("%s/" SPECIAL_USE_FILE, dir);
		int r = file_write_atomic(path, special_use, strlen(special_use),
		    0600);

		free(path);
		if (r < 0) {
			*error_r = xasprintf("Cannot create mailbox: %s",
			    strerror(errno));
			(void)remove_tree(dir, 0);
			free(dir);
			return -1;
		}
	}
	free(dir);
	return 0;
}

/* Removes a folder directory: its files and the three Maildir dirs. */
static int
remove_tree(const char *path, unsigned int depth)
{
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (depth > 2)
		return -1;
	d = file_opendir(path);
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		char *p;
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		p = xasprintf("%s/%s", path, de->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
			if (remove_tree(p, depth + 1) < 0)
				r = -1;
		} else if (unlink(p) < 0 && errno != ENOENT) {
			r = -1;
		}
		free(p);
	}
	closedir(d);
	if (rmdir(path) < 0 && errno != ENOENT)
		r = -1;
	return r;
}

int
store_folder_delete(struct store_account *acct, const char *name,
    char **error_r)
{
	char *dir;

	if (!store_folder_name_valid(name)) {
		*error_r = xstrdup("Invalid mailbox name");
		return -1;
	}
	if (store_is_inbox(name)) {
		*error_r = xstrdup("INBOX can't be deleted.");
		return -1;
	}
	dir = store_folder_path(acct, name);
	if (!folder_exists(dir)) {
		free(dir);
		*error_r = xstrdup("[NONEXISTENT] Mailbox doesn't exist");
		return -1;
	}
	if (store_index_forget_mailbox(acct, name, error_r) < 0) {
		free(dir);
		return -1;
	}
	if (remove_tree(dir, 0) < 0) {
		*error_r = xasprintf("Cannot delete mailbox: %s", strerror(errno));
		free(dir);
		return -1;
	}
	free(dir);
	return 0;
}

int
store_folder_rename(struct store_account *acct, const char *from,
    const char *to, char **error_r)
{
	struct store_folder *list;
	unsigned int n;
	size_t flen = strlen(from);
	int r = 0;

	if (!store_folder_name_valid(from) || !store_folder_name_valid(to)) {
		*error_r = xstrdup("Invalid mailbox name");
		return -1;
	}
	if (store_is_inbox(from) || store_is_inbox(to)) {
		*error_r = xstrdup("[CANNOT] Renaming INBOX is not supported");
		return -1;
	}
	if (strncmp(to, from, flen) == 0 && to[flen] == '.') {
		*error_r = xstrdup("[CANNOT] Can't rename mailbox under itself");
		return -1;
	}
	{
		char *src = store_folder_path(acct, from);
		char *dst = store_folder_path(acct, to);
		bool ok_src = folder_exists(src), ok_dst = is_dir(dst);

		free(src);
		free(dst);
		if (!ok_src) {
			*error_r = xstrdup("[NONEXISTENT] Mailbox doesn't exist");
			return -1;
		}
		if (ok_dst) {
			*error_r = xstrdup("[ALREADYEXISTS] Target mailbox already exists");
			return -1;
		}
	}
	if (store_folder_list(acct, &list, &n, error_r) < 0)
		return -1;
	/* the folder and its children: "from" and "from.*" */
	for (unsigned int i = 0; i < n && r == 0; i++) {
		const char *name = list[i].name;
		char *newname, *src, *dst;

		if (!list[i].exists || strncmp(name, from, flen) != 0 ||
		    (name[flen] != '\0' && name[flen] != '.'))
			continue;
		newname = xasprintf("%s%s", to, name + flen);
		src = store_folder_path(acct, name);
		dst = store_folder_path(acct, newname);
		if (dst == NULL || rename(src, dst) < 0) {
			*error_r = xasprintf("Cannot rename mailbox: %s",
			    dst == NULL ? "name too long" : strerror(errno));
			r = -1;
		} else {
			r = store_index_rename_mailbox(acct, name, newname, error_r);
		}
		free(newname);
		free(src);
		free(dst);
	}
	store_folders_free(list, n);
	if (r == 0 && fsync_dir(acct->root) < 0) {
		*error_r = xasprintf("Cannot sync %s: %s", acct->root,
		    strerror(errno));
		r = -1;
	}
	return r;
}

/* --- flags in file names -------------------------------------------------- */

unsigned int
store_flags_from_letters(const char *s)
{
	unsigned int flags = 0;

	for (; *s != '\0'; s++) {
		switch (*s) {
		case 'D': flags |= STORE_FLAG_DRAFT; break;
		case 'F': flags |= STORE_FLAG_FLAGGED; break;
		case 'P': flags |= STORE_FLAG_PASSED; break;
		case 'R': flags |= STORE_FLAG_ANSWERED; break;
		case 'S': flags |= STORE_FLAG_SEEN; break;
		case 'T': flags |= STORE_FLAG_DELETED; break;
		default: break;
		}
	}
	return flags;
}

void
store_flags_to_letters(unsigned int flags, char *out)
{
	/* Maildir wants the info letters in ASCII order */
	if (flags & STORE_FLAG_DRAFT) *out++ = 'D';
	if (flags & STORE_FLAG_FLAGGED) *out++ = 'F';
	if (flags & STORE_FLAG_PASSED) *out++ = 'P';
	if (flags & STORE_FLAG_ANSWERED) *out++ = 'R';
	if (flags & STORE_FLAG_SEEN) *out++ = 'S';
	if (flags & STORE_FLAG_DELETED) *out++ = 'T';
	*out = '\0';
}
