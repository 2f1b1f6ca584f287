/* Internals shared by store/mailbox.c (folders) and store/index.c (index). */
#ifndef TEGAMI_STORE_MAILBOX_PRIVATE_H
#define TEGAMI_STORE_MAILBOX_PRIVATE_H

#include "store/mailbox.h"

#include <sqlite3.h>

struct store_account {
	char *root;
	sqlite3 *db;
};

struct store_mailbox {
	struct store_account *acct;
	char *name;
	char *dir;		/* the Maildir of the folder */
	bool readonly;
	int64_t id;		/* mailbox row */
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	struct store_msg *msgs;
	unsigned int count;
	/* dovecot-keywords: letter 'a' + i is kw[i] */
	char *kw[STORE_MAX_KEYWORDS];
	unsigned int nkw;
	/* what the last sync saw, for store_mailbox_changed() */
	bool stamp_valid;
	struct timespec new_mtime, cur_mtime;
	int64_t data_version;
};

/* index.c */
int store_index_open(struct store_account *acct, char **error_r);
void store_index_close(struct store_account *acct);
int store_index_forget_mailbox(struct store_account *acct, const char *name,
    char **error_r);
int store_index_rename_mailbox(struct store_account *acct, const char *from,
    const char *to, char **error_r);

/* mailbox.c */
bool store_is_inbox(const char *name);
void store_msgs_free(struct store_msg *msgs, unsigned int count);

#endif
