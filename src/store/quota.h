/*
 * store/quota: the bytes and messages an account holds, the figure behind
 * IMAP QUOTA (RFC 9208), APPEND/COPY refusals with [OVERQUOTA] and the
 * smtp worker's 552 5.2.2 at RCPT, so all of them agree.
 *
 * Counted as docker-mailserver's Dovecot ("count" driver) does: the
 * RFC822.SIZE (CRLF line ends) of every message in every folder. The
 * figure comes from the account's index (one SQL sum) plus the files in
 * each folder's new/ that no sync has indexed yet (deliveries that no
 * IMAP session has seen, sized from the W=/S= of their names): one
 * readdir of the root and of each new/, never a stat of every message. A
 * folder the index does not know yet (never opened over IMAP), or an
 * account with no index at all, is counted from its file names.
 * Files put into a cur/ by hand are seen once a sync has taken them in.
 */
#ifndef TEGAMI_STORE_QUOTA_H
#define TEGAMI_STORE_QUOTA_H

#include "store/mailbox.h"
#include "store/maildir.h"

#include <stdint.h>

struct store_usage {
	uint64_t bytes;
	uint64_t messages;
};

/* Usage of an open account. 0, or -1 with *error_r (malloc'd). */
int store_account_usage(struct store_account *acct, struct store_usage *u,
    char **error_r);
/*
 * Usage of the account whose Maildir root is maildir, opening its index
 * if it has one (nothing is created; a missing Maildir uses nothing).
 * For the smtp worker and the CLI. 0, or -1 with *error_r.
 */
int store_maildir_usage(const char *maildir, struct store_usage *u,
    char **error_r);
/*
 * (SQLite may create the index's -wal and -shm files: a caller running as
 * root must take the Maildir owner's identity first, or the workers could
 * no longer write their index.)
 */

#endif
