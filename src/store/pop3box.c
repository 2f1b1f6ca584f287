/*
 * store/pop3box: the POP3 view of a Maildir INBOX (contract in pop3box.h).
 */
#include "store/pop3box.h"
#include "store/mailbox.h"
#include "store/maildir.h"
#include "lib/file.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#define LOCK_NAME "tegami-pop3.lock"

struct pop3box {
	char *root;		/* with a trailing '/' */
	int lock_fd;
	struct pop3box_msg *msgs;
	size_t count;
};

void
pop3box_uidl(const char *name, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = strcspn(name, ":,");
	bool ok = n > 0 && n <= POP3BOX_UIDL_MAX;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	for (size_t i = 0; ok && i < n; i++)
		ok = (unsigned char)name[i] >= 0x21 &&
		    (unsigned char)name[i] <= 0x7e;
	if (ok) {
		memcpy(out, name, n);
		out[n] = '\0';
		return;
	}
	if (EVP_Digest(name, n, md, &mdlen, EVP_sha256(), NULL) != 1)
		abort();
	out[0] = 'H';
	for (unsigned int i = 0; i < 16; i++) {
		out[1 + 2 * i] = hex[md[i] >> 4];
		out[2 + 2 * i] = hex[md[i] & 15];
	}
	out[33] = '\0';
}

static uint64_t
name_time(const char *name)
{
	uint64_t t = 0;

	for (const char *p = name; *p >= '0' && *p <= '9'; p++) {
		if (t > UINT64_MAX / 10 - 10)
			return 0;
		t = t * 10 + (uint64_t)(*p - '0');
	}
	return t;
}

static int
msg_cmp(const void *a, const void *b)
{
	const struct pop3box_msg *x = a, *y = b;

	if (x->time != y->time)
		return x->time < y->time ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Size with CRLF line ends, by reading the file. -1 on error. */
static int
compute_size(int dirfd, const char *name, uint64_t *size_r)
{
	char b[16384];
	uint64_t size = 0;
	bool prev_cr = false;
	ssize_t n;
	int fd = file_openat_read(dirfd, name);

	if (fd < 0)
		return -1;
	while ((n = read(fd, b, sizeof(b))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (b[i] == '\n' && !prev_cr)
				size++;
			prev_cr = b[i] == '\r';
		}
		size += (uint64_t)n;
	}
	close(fd);
	if (n < 0)
		return -1;
	*size_r = size;
	return 0;
}

/* new/ -> cur/ with ":2," (Dovecot does the same on open). */
static int
move_new(const char *root, char **error_r)
{
	char *newp = xasprintf("%snew", root), *curp = xasprintf("%scur", root);
	DIR *d = file_opendir(newp);
	int nfd, cfd, ret = 0;
	bool moved = false;
	struct dirent *de;

	if (d == NULL) {
		ret = errno == ENOENT ? 0 : -1;
		if (ret < 0)
			*error_r = xasprintf("opendir %s: %s", newp,
			    strerror(errno));
		goto out;
	}
	nfd = dirfd(d);
	cfd = open(curp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cfd < 0) {
		*error_r = xasprintf("open %s: %s", curp, strerror(errno));
		closedir(d);
		ret = -1;
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		char *to;

		if (de->d_name[0] == '.')
			continue;
		to = strchr(de->d_name, ':') != NULL ? xstrdup(de->d_name) :
		    xasprintf("%s:2,", de->d_name);
		if (renameat(nfd, de->d_name, cfd, to) == 0)
			moved = true;
		/* ENOENT: another reader moved it first; it is in cur/ now */
		free(to);
	}
	if (moved)
		fsync(cfd);
	close(cfd);
	closedir(d);
out:
	free(newp);
	free(curp);
	return ret;
}

static int
list_cur(struct pop3box *box, char **error_r)
{
	char *curp = xasprintf("%scur", box->root);
	DIR *d = file_opendir(curp);
	struct dirent *de;
	size_t cap = 0;

	if (d == NULL) {
		*error_r = xasprintf("opendir %s: %s", curp, strerror(errno));
		free(curp);
		return -1;
	}
	while ((de = readdir(d)) != NULL && box->count < POP3BOX_MAX_MESSAGES) {
		struct pop3box_msg *m;
		struct stat st;
		int64_t vsize = -1;

		if (de->d_name[0] == '.')
			continue;
		if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
			continue;
		if (de->d_type == DT_UNKNOWN &&
		    (fstatat(dirfd(d), de->d_name, &st, 0) < 0 ||
		    !S_ISREG(st.st_mode)))
			continue;
		if (box->count == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			box->msgs = xreallocarray(box->msgs, cap,
			    sizeof(*box->msgs));
		}
		m = &box->msgs[box->count];
		memset(m, 0, sizeof(*m));
		if (maildir_filename_sizes(de->d_name, NULL, &vsize) == 0 &&
		    vsize >= 0) {
			m->size = (uint64_t)vsize;
		} else if (compute_size(dirfd(d), de->d_name, &m->size) < 0) {
			continue;	/* gone meanwhile, or unreadable */
		}
		m->name = xstrdup(de->d_name);
		m->time = name_time(de->d_name);
		pop3box_uidl(de->d_name, m->uidl);
		box->count++;
	}
	closedir(d);
	free(curp);
	if (box->count > 1)
		qsort(box->msgs, box->count, sizeof(*box->msgs), msg_cmp);
	return 0;
}

/*
 * The INBOX of the account's index, opened on this thread (a private
 * account). An index that cannot be had costs only the Dovecot UIDLs:
 * the session goes on with the base names.
 */
static void
index_open(struct pop3box *box, struct store_account **acct_r,
    struct store_mailbox **mb_r)
{
	char *err = NULL;

	*acct_r = NULL;
	*mb_r = NULL;
	if (store_account_open_private(box->root, acct_r, &err) < 0 ||
	    store_mailbox_open(*acct_r, "INBOX", false, mb_r, &err) < 0) {
		log_warn("event=pop3_index_unusable maildir=%s error=\"%s\"",
		    box->root, err != NULL ? err : "");
		free(err);
		store_account_close(acct_r);
	}
}

struct base_uidl {
	const char *base;	/* up to the ':' */
	size_t len;
	const char *uidl;
};

static int
base_uidl_cmp(const void *a, const void *b)
{
	const struct base_uidl *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->base, y->base, n);

	return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/* The index's UIDLs (folders migrated from Dovecot) over the listing's. */
static void
index_uidls(struct pop3box *box, struct store_mailbox *mb)
{
	const struct store_msg *msgs;
	struct base_uidl *map;
	unsigned int n, nmap = 0;
	char **uidls, *err = NULL;

	if (store_mailbox_pop3_uidls(mb, &uidls, &err) < 0) {
		log_warn("event=pop3_index_unusable maildir=%s error=\"%s\"",
		    box->root, err);
		free(err);
		return;
	}
	msgs = store_mailbox_msgs(mb, &n);
	map = xcalloc(n + 1, sizeof(*map));
	for (unsigned int i = 0; i < n; i++) {
		if (uidls[i] == NULL)
			continue;
		map[nmap].base = msgs[i].base;
		map[nmap].len = strlen(msgs[i].base);
		map[nmap].uidl = uidls[i];
		nmap++;
	}
	if (nmap > 1)
		qsort(map, nmap, sizeof(*map), base_uidl_cmp);
	for (size_t i = 0; i < box->count && nmap > 0; i++) {
		struct base_uidl key = { box->msgs[i].name,
		    strcspn(box->msgs[i].name, ":"), NULL };
		const struct base_uidl *hit = bsearch(&key, map, nmap,
		    sizeof(*map), base_uidl_cmp);

		if (hit != NULL)
			str_copy(box->msgs[i].uidl, sizeof(box->msgs[i].uidl),
			    hit->uidl);
	}
	free(map);
	for (unsigned int i = 0; i < n; i++)
		free(uidls[i]);
	free(uidls);
}

int
pop3box_open(const char *maildir, struct pop3box **box_r, char **error_r)
{
	struct store_account *acct;
	struct store_mailbox *mb;
	struct pop3box *box;
	char *lockp;
	size_t len = strlen(maildir);

	*box_r = NULL;
	if (maildir_create(maildir) < 0) {
		*error_r = xasprintf("create %s: %s", maildir, strerror(errno));
		return -1;
	}
	box = xcalloc(1, sizeof(*box));
	box->root = len > 0 && maildir[len - 1] == '/' ? xstrdup(maildir) :
	    xasprintf("%s/", maildir);
	lockp = xasprintf("%s%s", box->root, LOCK_NAME);
	box->lock_fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (box->lock_fd < 0) {
		*error_r = xasprintf("open %s: %s", lockp, strerror(errno));
		free(lockp);
		pop3box_close(&box);
		return -1;
	}
	free(lockp);
	if (flock(box->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		pop3box_close(&box);
		if (e == EWOULDBLOCK)
			return 0;
		*error_r = xasprintf("flock: %s", strerror(e));
		return -1;
	}
	/* the index first: it moves new/ to cur/ and gives UIDs, which the
	   UIDLs of folders migrated from Dovecot are made of */
	index_open(box, &acct, &mb);
	if (move_new(box->root, error_r) < 0 || list_cur(box, error_r) < 0) {
		store_mailbox_close(&mb);
		store_account_close(&acct);
		pop3box_close(&box);
		return -1;
	}
	if (mb != NULL)
		index_uidls(box, mb);
	store_mailbox_close(&mb);
	store_account_close(&acct);
	*box_r = box;
	return 1;
}

size_t
pop3box_count(const struct pop3box *box)
{
	return box->count;
}

const struct pop3box_msg *
pop3box_msg(const struct pop3box *box, size_t i)
{
	if (i >= box->count)
		panic("pop3box: message %zu of %zu", i, box->count);
	return &box->msgs[i];
}

/*
 * The name the message has in cur/ now: its name from the listing, or,
 * when that is gone, the file with the same base name. NULL if none.
 */
static char *
find_current(const struct pop3box *box, int cfd, const char *name)
{
	size_t base = strcspn(name, ":");
	DIR *d;
	struct dirent *de;
	char *found = NULL;
	int fd2;

	if (faccessat(cfd, name, F_OK, 0) == 0)
		return xstrdup(name);
	fd2 = dup(cfd);
	if (fd2 < 0 || (d = fdopendir(fd2)) == NULL) {
		if (fd2 >= 0)
			close(fd2);
		return NULL;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, name, base) == 0 &&
		    (de->d_name[base] == ':' || de->d_name[base] == '\0')) {
			found = xstrdup(de->d_name);
			break;
		}
	}
	closedir(d);
	return found;
}

static int
cur_fd(const struct pop3box *box)
{
	char *curp = xasprintf("%scur", box->root);
	int fd = file_open_dir(curp);

	free(curp);
	return fd;
}

int
pop3box_message_fd(const struct pop3box *box, size_t i)
{
	const struct pop3box_msg *m = pop3box_msg(box, i);
	int cfd = cur_fd(box), fd;
	char *name;

	if (cfd < 0)
		return -1;
	fd = file_openat_read(cfd, m->name);
	if (fd < 0 && errno == ENOENT &&
	    (name = find_current(box, cfd, m->name)) != NULL) {
		fd = file_openat_read(cfd, name);
		free(name);
	}
	if (fd < 0) {
		int e = errno;

		close(cfd);
		errno = e;
		return -1;
	}
	close(cfd);
	return fd;
}

int
pop3box_expunge(struct pop3box *box, const bool *deleted,
    unsigned int *removed_r, char **error_r)
{
	int cfd = cur_fd(box), ret = 0;

	*removed_r = 0;
	if (cfd < 0) {
		*error_r = xasprintf("open %scur: %s", box->root,
		    strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < box->count; i++) {
		char *name;

		if (!deleted[i])
			continue;
		name = find_current(box, cfd, box->msgs[i].name);
		if (name == NULL) {
			(*removed_r)++;		/* already gone */
			continue;
		}
		if (unlinkat(cfd, name, 0) == 0 || errno == ENOENT) {
			(*removed_r)++;
		} else if (ret == 0) {
			*error_r = xasprintf("unlink %scur/%s: %s", box->root,
			    name, strerror(errno));
			ret = -1;
		}
		free(name);
	}
	if (*removed_r > 0)
		fsync(cfd);
	close(cfd);
	return ret;
}

void
pop3box_close(struct pop3box **boxp)
{
	struct pop3box *box = *boxp;

	if (box == NULL)
		return;
	if (box->lock_fd >= 0)
		close(box->lock_fd);
	for (size_t i = 0; i < box->count; i++)
		free(box->msgs[i].name);
	free(box->msgs);
	free(box->root);
	free(box);
	*boxp = NULL;
}
