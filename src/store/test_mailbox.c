#include "store/mailbox.h"
#include "store/mailbox-private.h"
#include "lib/file.h"
#include "lib/test.h"
#include "lib/xalloc.h"

#include <dirent.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void
put_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");

	test_assert(f != NULL);
	if (f == NULL)
		return;
	fputs(content, f);
	fclose(f);
}

static char *
slurp(const char *path)
{
	char *data = NULL;
	size_t len;

	if (file_read_all(path, 1 << 20, &data, &len) < 0)
		return xstrdup("(missing)");
	return data;
}

static int
count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void
test_store_folders(void)
{
	const char *root = test_tmpdir();
	struct store_account *acct;
	struct store_folder *list;
	unsigned int n;
	char *err = NULL, *s, *path;

	test_begin("store: first open creates and subscribes the DMS folders");
	test_assert(store_account_open(root, &acct, &err) == 0);
	path = xasprintf("%s/subscriptions", root);
	s = slurp(path);
	test_assert_str(s, "V\t2\n\nDrafts\nJunk\nTrash\nSent\n");
	free(s);
	free(path);
	path = xasprintf("%s/.Sent/cur", root);
	test_assert(access(path, F_OK) == 0);
	free(path);
	path = xasprintf("%s/.Sent/maildirfolder", root);
	test_assert(access(path, F_OK) == 0);
	free(path);
	test_assert(store_folder_list(acct, &list, &n, &err) == 0);
	test_assert(n == 5);
	test_assert_str(list[0].name, "INBOX");
	test_assert(!list[0].subscribed);
	test_assert_str(list[1].name, "Drafts");
	test_assert_str(list[1].special_use, "\\Drafts");
	test_assert(list[1].subscribed && list[1].exists);
	test_assert_str(list[3].name, "Sent");
	test_assert_str(list[4].name, "Trash");
	store_folders_free(list, n);
	test_end();

	test_begin("store: create, subscribe, rename with children, delete");
	test_assert(store_folder_create(acct, "Work", &err) == 0);
	test_assert(store_folder_create(acct, "Work.2024", &err) == 0);
	test_assert(store_folder_create(acct, "Work", &err) < 0);
	test_assert(strstr(err, "ALREADYEXISTS") != NULL);
	x_free(&err);
	test_assert(store_folder_create(acct, "inbox", &err) < 0);
	x_free(&err);
	test_assert(store_folder_create(acct, "../x", &err) < 0);
	x_free(&err);
	test_assert(store_folder_create(acct, "a..b", &err) < 0);
	x_free(&err);
	test_assert(store_folder_create(acct, "a/b", &err) < 0);
	x_free(&err);
	test_assert(store_subscribe(acct, "Work.2024", true, &err) == 0);
	test_assert(store_subscribe(acct, "Gone", true, &err) == 0);
	test_assert(store_subscribe(acct, "Junk", false, &err) == 0);
	path = xasprintf("%s/subscriptions", root);
	s = slurp(path);
	test_assert_str(s, "V\t2\n\nDrafts\nTrash\nSent\nWork\t2024\nGone\n");
	free(s);
	free(path);
	test_assert(store_folder_list(acct, &list, &n, &err) == 0);
	test_assert(n == 8);
	test_assert_str(list[1].name, "Drafts");
	test_assert_str(list[2].name, "Gone");
	test_assert(!list[2].exists && list[2].subscribed);
	test_assert_str(list[6].name, "Work");
	test_assert(list[6].has_children && !list[6].subscribed);
	test_assert_str(list[7].name, "Work.2024");
	test_assert(list[7].subscribed && !list[7].has_children);
	store_folders_free(list, n);

	test_assert(store_folder_rename(acct, "Work", "Old.Work", &err) == 0);
	path = xasprintf("%s/.Old.Work.2024/cur", root);
	test_assert(access(path, F_OK) == 0);
	free(path);
	test_assert(store_folder_rename(acct, "Work", "X", &err) < 0);
	test_assert(strstr(err, "NONEXISTENT") != NULL);
	x_free(&err);
	test_assert(store_folder_rename(acct, "Old.Work", "Sent", &err) < 0);
	x_free(&err);
	test_assert(store_folder_delete(acct, "Old.Work.2024", &err) == 0);
	path = xasprintf("%s/.Old.Work.2024", root);
	test_assert(access(path, F_OK) != 0);
	free(path);
	test_assert(store_folder_delete(acct, "INBOX", &err) < 0);
	x_free(&err);
	test_assert(store_folder_delete(acct, "Nope", &err) < 0);
	x_free(&err);
	store_account_close(&acct);
	test_assert(acct == NULL);

	/* the second open does not bring Junk's subscription back */
	test_assert(store_account_open(root, &acct, &err) == 0);
	path = xasprintf("%s/subscriptions", root);
	s = slurp(path);
	test_assert(strstr(s, "Junk") == NULL);
	free(s);
	free(path);
	store_account_close(&acct);
	test_end();

	test_begin("store: subscriptions made by four processes at once all stay");
	{
		pid_t pids[4];
		int found = 0;

		for (int p = 0; p < 4; p++) {
			pids[p] = fork();
			if (pids[p] == 0) {
				struct store_account *a;
				int bad = 0;

				if (store_account_open(root, &a, &err) < 0)
					_exit(2);
				for (int k = 0; k < 25; k++) {
					char name[32];

					snprintf(name, sizeof(name), "P%d-%d", p, k);
					if (store_subscribe(a, name, true, &err) < 0)
						bad = 1;
				}
				store_account_close(&a);
				_exit(bad);
			}
			test_assert(pids[p] > 0);
		}
		for (int p = 0; p < 4; p++) {
			int status = -1;

			test_assert(waitpid(pids[p], &status, 0) == pids[p]);
			test_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		}
		path = xasprintf("%s/subscriptions", root);
		s = slurp(path);
		for (int p = 0; p < 4; p++)
			for (int k = 0; k < 25; k++) {
				char line[40];

				snprintf(line, sizeof(line), "\nP%d-%d\n", p, k);
				found += strstr(s, line) != NULL;
			}
		test_assert(found == 100);
		free(s);
		free(path);
	}
	test_end();

	test_begin("store: Maildir flag letters");
	{
		char l[8];

		store_flags_to_letters(store_flags_from_letters("TSRPFDx"), l);
		test_assert_str(l, "DFPRST");
		test_assert(store_flags_from_letters("S") == STORE_FLAG_SEEN);
		store_flags_to_letters(0, l);
		test_assert_str(l, "");
	}
	test_end();
}
TEST(test_store_folders)

/* Drops a message into new/ as the smtp side does. */
static void
deliver(const char *root, const char *name, const char *content)
{
	char *p = xasprintf("%s/new/%s", root, name);

	put_file(p, content);
	free(p);
}

static void
test_store_sync(void)
{
	const unsigned int grace = store_foreign_grace_ms;
	const char *root = test_tmpdir();
	struct store_account *acct, *acct2;
	struct store_mailbox *box, *box2, *trash;
	struct store_sync_changes ch;
	const struct store_msg *msgs;
	unsigned int n;
	char *err = NULL, *path, *s, *name;
	uint32_t uid, uidvalidity, uids[2];
	uint64_t hms_before;
	unsigned int idx[2];
	struct stat st;

	/* the Maildir is changed by hand, as by Dovecot: seen at the next
	   sync, not after store_foreign_grace_ms */
	store_foreign_grace_ms = 0;
	test_begin("store: new/ -> cur/, UIDs in delivery order, sizes");
	test_assert(store_account_open(root, &acct, &err) == 0);
	deliver(root, "1700000002.M1P1Q1.host,S=6,W=8", "b\nbb\n");
	deliver(root, "1700000001.M1P1Q1.host,S=6,W=8", "a\naa\n");
	/* no W=: counted, each bare LF as CRLF */
	deliver(root, "1700000003.M1P1Q1.host", "c\r\ncc\nccc\n");
	test_assert(store_mailbox_open(acct, "inbox", false, &box, &err) == 0);
	msgs = store_mailbox_msgs(box, &n);
	test_assert(n == 3);
	test_assert(msgs[0].uid == 1 && strcmp(msgs[0].base, "1700000001.M1P1Q1.host,S=6,W=8") == 0);
	test_assert(msgs[1].uid == 2 && msgs[2].uid == 3);
	test_assert_str(msgs[0].path, "cur/1700000001.M1P1Q1.host,S=6,W=8:2,");
	test_assert(msgs[0].size == 8 && msgs[2].size == 12);
	test_assert(msgs[0].flags == 0 && strcmp(msgs[0].keywords, "") == 0);
	test_assert(store_mailbox_uidnext(box) == 4);
	path = xasprintf("%s/new", root);
	test_assert(count_files(path) == 0);
	free(path);
	uidvalidity = store_mailbox_uidvalidity(box);
	test_assert(uidvalidity > 0);
	path = xasprintf("%s/dovecot-uidlist", root);
	s = slurp(path);
	test_assert(strncmp(s, "3 V", 3) == 0);
	test_assert(strstr(s, " N4 G") != NULL);
	test_assert(strstr(s, "\n1 :1700000001.M1P1Q1.host,S=6,W=8\n2 :1700000002") != NULL);
	free(s);
	free(path);
	{
		char **u;

		/* a folder tegami made keeps the base-name POP3 UIDLs */
		test_assert(store_mailbox_pop3_uidls(box, &u, &err) == 0);
		test_assert(u[0] == NULL && u[1] == NULL && u[2] == NULL);
		free(u);
	}
	test_end();

	test_begin("store: flags and keywords go into file names");
	{
		uint64_t before = store_mailbox_highestmodseq(box);

		test_assert(store_msg_set_flags(box, 0, STORE_FLAG_SEEN | STORE_FLAG_FLAGGED,
		    "$Junk Work $Junk", &err) == 0);
		msgs = store_mailbox_msgs(box, &n);
		test_assert_str(msgs[0].path, "cur/1700000001.M1P1Q1.host,S=6,W=8:2,FSab");
		test_assert_str(msgs[0].keywords, "$Junk Work");
		test_assert(msgs[0].modseq == before + 1);
		test_assert(store_mailbox_highestmodseq(box) == before + 1);
		path = xasprintf("%s/dovecot-keywords", root);
		s = slurp(path);
		test_assert_str(s, "0 $Junk\n1 Work\n");
		free(s);
		free(path);
		path = xasprintf("%s/cur/1700000001.M1P1Q1.host,S=6,W=8:2,FSab", root);
		test_assert(access(path, F_OK) == 0);
		free(path);
		/* no change, no new modseq */
		test_assert(store_msg_set_flags(box, 0, STORE_FLAG_SEEN | STORE_FLAG_FLAGGED,
		    "Work $Junk", &err) == 0);
		test_assert(store_mailbox_highestmodseq(box) == before + 1);
	}
	test_end();

	test_begin("store: a keyword another process named meanwhile keeps its letter");
	{
		FILE *fp;

		/* another imap worker (or Dovecot) gave the next letter to Home */
		path = xasprintf("%s/dovecot-keywords", root);
		fp = fopen(path, "a");
		test_assert(fp != NULL);
		fputs("2 Home\n", fp);
		fclose(fp);
		test_assert(store_msg_set_flags(box, 0, STORE_FLAG_SEEN |
		    STORE_FLAG_FLAGGED, "$Junk Work Office", &err) == 0);
		msgs = store_mailbox_msgs(box, &n);
		test_assert_str(msgs[0].path,
		    "cur/1700000001.M1P1Q1.host,S=6,W=8:2,FSabd");
		s = slurp(path);
		test_assert_str(s, "0 $Junk\n1 Work\n2 Home\n3 Office\n");
		free(s);
		free(path);
		/* and Home, already named, is c here too */
		test_assert(store_msg_set_flags(box, 0, STORE_FLAG_SEEN |
		    STORE_FLAG_FLAGGED, "$Junk Work Home", &err) == 0);
		msgs = store_mailbox_msgs(box, &n);
		test_assert_str(msgs[0].path,
		    "cur/1700000001.M1P1Q1.host,S=6,W=8:2,FSabc");
		test_assert(store_msg_set_flags(box, 0, STORE_FLAG_SEEN |
		    STORE_FLAG_FLAGGED, "$Junk Work", &err) == 0);
	}
	test_end();

	test_begin("store: changes by others: renamed flags, deleted files, new mail");
	test_assert(store_account_open(root, &acct2, &err) == 0);
	test_assert(store_mailbox_open(acct2, "INBOX", false, &box2, &err) == 0);
	{
		char *from = xasprintf("%s/cur/1700000002.M1P1Q1.host,S=6,W=8:2,", root);
		char *to = xasprintf("%s/cur/1700000002.M1P1Q1.host,S=6,W=8:2,Rb", root);
		char *gone = xasprintf("%s/cur/1700000003.M1P1Q1.host:2,", root);

		test_assert(rename(from, to) == 0);
		test_assert(unlink(gone) == 0);
		free(from);
		free(to);
		free(gone);
	}
	deliver(root, "1700000009.M1P1Q1.host,S=2,W=3", "x\n");
	test_assert(store_mailbox_sync(box, &ch, &err) == 0);
	test_assert(ch.nexpunged == 1 && ch.expunged[0] == 3);
	test_assert(ch.nchanged == 1 && ch.changed[0] == 2);
	test_assert(ch.nnew == 1);
	store_sync_changes_free(&ch);
	msgs = store_mailbox_msgs(box, &n);
	test_assert(n == 3 && msgs[2].uid == 4);
	test_assert(msgs[1].flags == STORE_FLAG_ANSWERED);
	test_assert_str(msgs[1].keywords, "Work");
	/* the other session sees the same through the index */
	test_assert(store_mailbox_sync(box2, &ch, &err) == 0);
	test_assert(ch.nexpunged == 1 && ch.expunged[0] == 3 && ch.nnew == 1);
	test_assert(ch.nchanged == 1);
	store_sync_changes_free(&ch);
	msgs = store_mailbox_msgs(box2, &n);
	test_assert(n == 3 && msgs[1].flags == STORE_FLAG_ANSWERED);
	test_assert(store_mailbox_find_uid(box2, 4) == 2);
	test_assert(store_mailbox_find_uid(box2, 3) == -1);
	test_end();

	test_begin("store: append and expunge, seen by another session");
	test_assert(store_mailbox_append(box, "Subject: hi\r\n\r\nbody\r\n", 21,
	    STORE_FLAG_SEEN | STORE_FLAG_DRAFT, "Work", 1000000000, &uid, &err) == 0);
	test_assert(uid == 5);
	test_assert(store_mailbox_expunge(box, (uint32_t[]){ 2 }, 1, &err) == 0);
	test_assert(store_mailbox_sync(box2, &ch, &err) == 0);
	test_assert(ch.nexpunged == 1 && ch.expunged[0] == 2 && ch.nnew == 1);
	store_sync_changes_free(&ch);
	msgs = store_mailbox_msgs(box2, &n);
	test_assert(n == 3 && msgs[2].uid == 5);
	test_assert(msgs[2].size == 21 && msgs[2].internaldate == 1000000000);
	test_assert(msgs[2].flags == (STORE_FLAG_SEEN | STORE_FLAG_DRAFT));
	test_assert_str(msgs[2].keywords, "Work");
	/* stored with LF line ends, as delivery and Dovecot store them */
	test_assert(strstr(msgs[2].path, ",S=18,W=21:2,DSb") != NULL);
	path = store_msg_full_path(box2, &msgs[2]);
	s = slurp(path);
	test_assert_str(s, "Subject: hi\n\nbody\n");
	test_assert(stat(path, &st) == 0 && st.st_mtime == 1000000000);
	free(s);
	free(path);
	path = xasprintf("%s/tmp", root);
	test_assert(count_files(path) == 0);
	free(path);
	test_end();

	test_begin("store: copy hard-links into another folder");
	test_assert(store_mailbox_open(acct, "Trash", false, &trash, &err) == 0);
	test_assert(store_mailbox_sync(box, NULL, &err) == 0);
	msgs = store_mailbox_msgs(box, &n);
	idx[0] = 0;
	idx[1] = 2;
	test_assert(store_mailbox_copy(box, idx, 2, trash, uids, &err) == 0);
	test_assert(uids[0] == 1 && uids[1] == 2);
	test_assert(store_mailbox_sync(trash, &ch, &err) == 0);
	test_assert(ch.nnew == 2);
	store_sync_changes_free(&ch);
	{
		const struct store_msg *t = store_mailbox_msgs(trash, &n);

		test_assert(n == 2);
		test_assert_str(t[0].keywords, "$Junk Work");
		test_assert(t[0].flags == (STORE_FLAG_SEEN | STORE_FLAG_FLAGGED));
		test_assert(t[1].internaldate == 1000000000 && t[1].size == 21);
		path = store_msg_full_path(trash, &t[1]);
		test_assert(stat(path, &st) == 0 && st.st_nlink == 2);
		free(path);
		/* Trash has its own keyword letters */
		path = xasprintf("%s/.Trash/dovecot-keywords", root);
		s = slurp(path);
		test_assert_str(s, "0 $Junk\n1 Work\n");
		free(s);
		free(path);
	}
	store_mailbox_close(&trash);
	test_end();

	test_begin("store: cached envelope and bodystructure");
	{
		char *e, *b;

		test_assert(store_msg_cache_get(box, 1, &e, &b) == 0);
		test_assert(store_msg_cache_set(box, 1, "(NIL)", NULL, &err) == 0);
		test_assert(store_msg_cache_set(box, 1, NULL, "(\"text\")", &err) == 0);
		test_assert(store_msg_cache_get(box, 1, &e, &b) == 1);
		test_assert_str(e, "(NIL)");
		test_assert_str(b, "(\"text\")");
		free(e);
		free(b);
		test_assert(store_msg_cache_get(box, 99, &e, &b) == 0);
	}
	test_end();

	test_begin("store: read-only open leaves new/ alone");
	deliver(root, "1700000010.M1P1Q1.host,S=2,W=3", "y\n");
	store_mailbox_close(&box2);
	test_assert(store_mailbox_open(acct2, "INBOX", true, &box2, &err) == 0);
	msgs = store_mailbox_msgs(box2, &n);
	test_assert(n == 4 && msgs[3].uid == 6);
	test_assert(strncmp(msgs[3].path, "new/", 4) == 0);
	test_assert(store_msg_set_flags(box2, 3, STORE_FLAG_SEEN, NULL, &err) < 0);
	test_assert(strstr(err, "READ-ONLY") != NULL);
	x_free(&err);
	store_mailbox_close(&box2);
	store_account_close(&acct2);
	/* opened read-write, the file moves to cur/ and keeps its UID */
	test_assert(store_mailbox_sync(box, &ch, &err) == 0);
	store_sync_changes_free(&ch);
	msgs = store_mailbox_msgs(box, &n);
	test_assert(n == 4 && msgs[3].uid == 6);
	test_assert(strncmp(msgs[3].path, "cur/", 4) == 0);
	test_end();

	test_begin("store: a corrupt index is rebuilt with the same UIDs");
	hms_before = store_mailbox_highestmodseq(box);
	store_mailbox_close(&box);
	store_account_close(&acct);
	path = xasprintf("%s/" STORE_INDEX_FILE, root);
	put_file(path, "this is not an SQLite database, not at all........"
	    "................................................................");
	free(path);
	path = xasprintf("%s/" STORE_INDEX_FILE "-wal", root);
	(void)unlink(path);
	free(path);
	test_assert(store_account_open(root, &acct, &err) == 0);
	test_assert(store_mailbox_open(acct, "INBOX", false, &box, &err) == 0);
	test_assert(store_mailbox_uidvalidity(box) == uidvalidity);
	test_assert(store_mailbox_uidnext(box) == 7);
	/* CONDSTORE clients must never see the modseq go back */
	test_assert(store_mailbox_highestmodseq(box) > hms_before);
	msgs = store_mailbox_msgs(box, &n);
	test_assert(n == 4);
	test_assert(msgs[0].uid == 1 && msgs[1].uid == 4 && msgs[2].uid == 5 &&
	    msgs[3].uid == 6);
	test_assert(msgs[0].flags == (STORE_FLAG_SEEN | STORE_FLAG_FLAGGED));
	test_assert_str(msgs[0].keywords, "$Junk Work");
	test_assert(msgs[2].internaldate == 1000000000);
	path = xasprintf("%s/" STORE_INDEX_FILE ".corrupt", root);
	test_assert(access(path, F_OK) == 0);
	free(path);
	store_mailbox_close(&box);
	store_account_close(&acct);
	test_end();

	test_begin("store: a Dovecot folder keeps its UIDVALIDITY and UIDs");
	{
		char *dir = xasprintf("%s/.Imported", root);
		char *sub;

		test_assert(mkdir(dir, 0700) == 0);
		for (int i = 0; i < 3; i++) {
			sub = xasprintf("%s/%s", dir, i == 0 ? "cur" : i == 1 ? "new" : "tmp");
			test_assert(mkdir(sub, 0700) == 0);
			free(sub);
		}
		sub = xasprintf("%s/dovecot-uidlist", dir);
		put_file(sub, "3 V1234567 N50 G0123456789abcdef0123456789abcdef\n"
		    "7 :1600000001.M1P1.old,S=3,W=4\n"
		    "9 W4 Pkept-by-dovecot :1600000002.M1P1.old,S=3\n"
		    "12 :1600000003.M1P1.gone\n");
		free(sub);
		sub = xasprintf("%s/cur/1600000001.M1P1.old,S=3,W=4:2,S", dir);
		put_file(sub, "o1\n");
		free(sub);
		sub = xasprintf("%s/cur/1600000002.M1P1.old,S=3:2,RS", dir);
		put_file(sub, "o2\n");
		free(sub);
		sub = xasprintf("%s/new/1600000004.M1P1.old", dir);
		put_file(sub, "o4\n");
		free(sub);
		test_assert(store_account_open(root, &acct, &err) == 0);
		test_assert(store_mailbox_open(acct, "Imported", false, &box, &err) == 0);
		test_assert(store_mailbox_uidvalidity(box) == 1234567);
		msgs = store_mailbox_msgs(box, &n);
		test_assert(n == 3);
		test_assert(msgs[0].uid == 7 && msgs[0].flags == STORE_FLAG_SEEN);
		test_assert(msgs[1].uid == 9 &&
		    msgs[1].flags == (STORE_FLAG_SEEN | STORE_FLAG_ANSWERED));
		test_assert(msgs[2].uid == 50);
		test_assert(store_mailbox_uidnext(box) == 51);
		sub = xasprintf("%s/dovecot-uidlist", dir);
		s = slurp(sub);
		test_assert(strncmp(s, "3 V1234567 N51 G", 16) == 0);
		test_assert(strstr(s, "\n7 :1600000001.M1P1.old,S=3,W=4\n9 :1600000002.M1P1.old,S=3\n50 :1600000004.M1P1.old\n") != NULL);
		/* rewritten with our mark: a rebuild will know it is ours */
		test_assert(strstr(s, " Xtegami\n") != NULL);
		free(s);
		free(sub);
		{
			char **u;

			/* POP3: Dovecot's %08Xu%08Xv; its "P" field wins */
			test_assert(store_mailbox_pop3_uidls(box, &u, &err) == 0);
			test_assert_str(u[0], "000000070012d687");
			test_assert_str(u[1], "kept-by-dovecot");
			test_assert_str(u[2], "000000320012d687");
			for (int i = 0; i < 3; i++)
				free(u[i]);
			free(u);
		}
		store_mailbox_close(&box);
		store_account_close(&acct);
		free(dir);
	}
	test_end();

	test_begin("store: missing folder, bad names");
	test_assert(store_account_open(root, &acct, &err) == 0);
	test_assert(store_mailbox_open(acct, "Nope", false, &box, &err) < 0);
	test_assert(strstr(err, "NONEXISTENT") != NULL);
	x_free(&err);
	test_assert(store_mailbox_open(acct, "../../etc", false, &box, &err) < 0);
	x_free(&err);
	name = store_folder_path(acct, "INBOX");
	test_assert_str(name, root);
	free(name);
	store_account_close(&acct);
	test_end();
	store_foreign_grace_ms = grace;
}
TEST(test_store_sync)

/* Another process's file arriving in cur/ before its row (APPEND) waits
   for the commit instead of making a scan; a stranger's rename is read
   from cur/ once the grace is over. */
static void
test_store_foreign_grace(void)
{
	const unsigned int grace = store_foreign_grace_ms;
	const char *root = test_tmpdir();
	struct store_account *acct, *other;
	struct store_mailbox *box, *obox;
	struct store_append_op *op;
	struct store_sync_changes ch;
	const struct store_msg *msgs;
	struct store_append msg = { "Subject: a\r\n\r\nb\r\n", 17, 0, NULL, 0 };
	unsigned long scans;
	unsigned int n;
	uint32_t uid;
	char *err = NULL, *from, *to;

	test_begin("store: another process's change waits for its commit, a stranger's for the grace");
	store_foreign_grace_ms = 300;
	test_assert(store_account_open(root, &acct, &err) == 0);
	deliver(root, "1700000001.M1P1Q1.host,S=4,W=5", "a\nb\n");
	test_assert(store_mailbox_open(acct, "INBOX", false, &box, &err) == 0);
	test_assert(store_mailbox_sync(box, &ch, &err) == 0);
	store_sync_changes_free(&ch);
	test_assert(store_account_open_private(root, &other, &err) == 0);
	test_assert(store_mailbox_open(other, "INBOX", false, &obox, &err) == 0);
	scans = store_folder_scans;
	/* the other process's file is in cur/, its row not yet committed */
	test_assert(store_append_begin(obox, &msg, 1, &op, &err) == 0);
	store_append_write(op);
	test_assert(store_mailbox_sync(box, &ch, &err) == 0);
	test_assert(ch.nnew == 0);
	store_sync_changes_free(&ch);
	msgs = store_mailbox_msgs(box, &n);
	test_assert(n == 1);
	test_assert(store_folder_foreign_waiting(box->f));
	test_assert(store_append_finish(&op, &uid, &err) == 0);
	test_assert(uid == 2);
	test_assert(store_mailbox_sync(box, &ch, &err) == 0);
	test_assert(ch.nnew == 1);
	store_sync_changes_free(&ch);
	msgs = store_mailbox_msgs(box, &n);
	test_assert(n == 2 && msgs[1].uid == 2);
	test_assert(!store_folder_foreign_waiting(box->f));
	test_assert(store_folder_scans == scans);
	/* its flag change (rename and commit at once): from the index too */
	test_assert(store_msg_set_flags(obox, 0, STORE_FLAG_FLAGGED, NULL, &err) == 0);
	test_assert(store_mailbox_sync(box, &ch, &err) == 0);
	test_assert(ch.nchanged == 1);
	store_sync_changes_free(&ch);
	test_assert(store_folder_scans == scans);
	/* a stranger (Dovecot, mv) renames a file: the index never explains it */
	msgs = store_mailbox_msgs(box, &n);
	from = xasprintf("%s/%s", root, msgs[1].path);
	to = xasprintf("%sS", from);
	test_assert(rename(from, to) == 0);
	test_assert(store_mailbox_sync(box, &ch, &err) == 0);
	test_assert(ch.nchanged == 0);
	store_sync_changes_free(&ch);
	test_assert(store_folder_scans == scans);
	test_assert(store_folder_foreign_waiting(box->f));
	/* the retry of the loop's timer names the folder */
	test_assert(store_watch_retry());
	usleep(320 * 1000);
	test_assert(store_mailbox_sync(box, &ch, &err) == 0);
	test_assert(ch.nchanged == 1 && ch.changed[0] == 2);
	store_sync_changes_free(&ch);
	test_assert(store_folder_scans == scans + 1);
	msgs = store_mailbox_msgs(box, &n);
	test_assert(msgs[1].flags == STORE_FLAG_SEEN);
	test_assert(!store_folder_foreign_waiting(box->f));
	test_assert(!store_watch_retry());
	free(from);
	free(to);
	store_mailbox_close(&obox);
	store_account_close(&other);
	store_mailbox_close(&box);
	store_account_close(&acct);
	store_foreign_grace_ms = grace;
	test_end();
}
TEST(test_store_foreign_grace)

static void
test_store_changed(void)
{
	const char *root = test_tmpdir();
	struct store_account *acct;
	struct store_mailbox *box;
	struct store_sync_changes ch;
	unsigned int n;
	char *err = NULL;

	test_assert(store_account_open(root, &acct, &err) == 0);
	deliver(root, "1700000001.M1P1Q1.host,S=2,W=3", "a\n");
	test_assert(store_mailbox_open(acct, "INBOX", false, &box, &err) == 0);
	/* the open moved a file out of new/: one more quiet sync */
	test_begin("store: the cheap change check");
	test_assert(store_mailbox_sync(box, NULL, &err) == 0);
	test_assert(!store_mailbox_changed(box));
	deliver(root, "1700000008.M1P1Q1.host,S=2,W=3", "z\n");
	test_assert(store_mailbox_changed(box));
	test_assert(store_mailbox_sync(box, &ch, &err) == 0);
	test_assert(ch.nnew == 1);
	store_sync_changes_free(&ch);
	test_assert(store_mailbox_sync(box, NULL, &err) == 0);
	test_assert(!store_mailbox_changed(box));
	{
		const struct store_msg *last = &store_mailbox_msgs(box, &n)[n - 1];
		uint32_t u = last->uid;

		test_assert(store_mailbox_expunge(box, &u, 1, &err) == 0);
		test_assert(store_mailbox_changed(box));
		test_assert(store_mailbox_sync(box, &ch, &err) == 0);
		test_assert(ch.nexpunged == 1 && ch.expunged[0] == u);
		store_sync_changes_free(&ch);
	}
	test_end();

	store_mailbox_close(&box);
	store_account_close(&acct);
}
TEST(test_store_changed)

static void
test_store_change_flags_concurrent(void)
{
	const char *root = test_tmpdir();
	struct store_account *acct, *acct2;
	struct store_mailbox *box, *box2;
	const struct store_msg *msgs;
	unsigned int n;
	char *err = NULL;
	uint32_t uid;

	/* imaptest "store": session 1 +\Answered, then session 2 (which has
	   not synced) -\Seen: both changes stay */
	test_begin("store: +FLAGS/-FLAGS of two sessions on one message");
	test_assert(store_account_open(root, &acct, &err) == 0);
	test_assert(store_account_open(root, &acct2, &err) == 0);
	deliver(root, "1700000001.M1P1Q1.host,S=2,W=3", "a\n");
	deliver(root, "1700000002.M1P1Q1.host,S=2,W=3", "b\n");
	test_assert(store_mailbox_open(acct, "INBOX", false, &box, &err) == 0);
	test_assert(store_msg_set_flags(box, 0, STORE_FLAG_SEEN, "k1", &err) == 0);
	test_assert(store_mailbox_open(acct2, "INBOX", false, &box2, &err) == 0);
	test_assert(store_msg_change_flags(box, 0, '+', STORE_FLAG_ANSWERED,
	    "k2", &err) == 0);
	test_assert(store_msg_change_flags(box2, 0, '-', STORE_FLAG_SEEN,
	    "k1", &err) == 0);
	msgs = store_mailbox_msgs(box2, &n);
	test_assert(msgs[0].flags == STORE_FLAG_ANSWERED);
	test_assert_str(msgs[0].keywords, "k2");
	test_assert(strstr(msgs[0].path, ":2,Rb") != NULL ||
	    strstr(msgs[0].path, ":2,Ra") != NULL);
	/* '=' keeps \Passed only; NULL keywords = unchanged */
	test_assert(store_msg_change_flags(box, 0, '=', STORE_FLAG_DRAFT, NULL,
	    &err) == 0);
	msgs = store_mailbox_msgs(box, &n);
	test_assert(msgs[0].flags == STORE_FLAG_DRAFT);
	test_assert_str(msgs[0].keywords, "k2");
	/* expunged by the other session: 1, nothing done */
	uid = msgs[1].uid;
	test_assert(store_mailbox_expunge(box, &uid, 1, &err) == 0);
	test_assert(store_msg_change_flags(box2, 1, '+', STORE_FLAG_SEEN, "",
	    &err) == 1);
	test_assert(err == NULL);
	store_mailbox_close(&box);
	store_mailbox_close(&box2);
	store_account_close(&acct);
	store_account_close(&acct2);
	test_end();
}
TEST(test_store_change_flags_concurrent)

/* Another program sets the flags of a message in cur/ (no flags yet). */
static void
flags_by_hand(const char *root, const char *base, const char *flags)
{
	char *from = xasprintf("%s/cur/%s:2,", root, base);
	char *to = xasprintf("%s/cur/%s:2,%s", root, base, flags);

	test_assert(rename(from, to) == 0);
	free(from);
	free(to);
}

static bool
exists_in(const char *root, const char *name)
{
	char *path = xasprintf("%s/%s", root, name);
	bool ok = access(path, F_OK) == 0;

	free(path);
	return ok;
}

/*
 * A message's file under another name than this process knows: renamed
 * by another process (a flag change in the other imap worker) or by a
 * Maildir client outside tegami. EXPUNGE must still move the file away
 * (or it comes back as new mail at the next scan), and STORE must still
 * find it.
 */
static void
test_store_stale_names(void)
{
	const char *root = test_tmpdir();
	struct store_account *acct, *other, *fresh;
	struct store_mailbox *box, *box2, *box3;
	const struct store_msg *msgs;
	unsigned int n;
	char *err = NULL, *cur = xasprintf("%s/cur", root), *gone, *to;
	uint32_t uid1, uid2;

	test_begin("store: EXPUNGE and STORE find a file renamed elsewhere");
	test_assert(store_account_open(root, &acct, &err) == 0);
	test_assert(store_account_open_private(root, &other, &err) == 0);
	deliver(root, "1700000001.M1P1Q1.host,S=2,W=3", "a\n");
	deliver(root, "1700000002.M1P1Q1.host,S=2,W=3", "b\n");
	test_assert(store_mailbox_open(acct, "INBOX", false, &box, &err) == 0);
	test_assert(store_mailbox_open(other, "INBOX", false, &box2, &err) == 0);
	msgs = store_mailbox_msgs(box, &n);
	test_assert_int(n, 2);
	uid1 = msgs[0].uid;
	uid2 = msgs[1].uid;
	/* the other process flags message 1: its file is renamed */
	test_assert(store_msg_change_flags(box2, 0, '+', STORE_FLAG_SEEN, NULL,
	    &err) == 0);
	test_assert(exists_in(root, "cur/1700000001.M1P1Q1.host,S=2,W=3:2,S"));
	/* this process has not synced and expunges it */
	test_assert(store_mailbox_expunge(box, &uid1, 1, &err) == 0);
	test_assert_int(count_files(cur), 1);
	/* and a scan from scratch does not find it again as new mail */
	test_assert(store_account_open_private(root, &fresh, &err) == 0);
	test_assert(store_mailbox_open(fresh, "INBOX", false, &box3, &err) == 0);
	msgs = store_mailbox_msgs(box3, &n);
	test_assert_int(n, 1);
	test_assert(n == 1 && msgs[0].uid == uid2);
	store_mailbox_close(&box3);
	store_account_close(&fresh);

	/* a Maildir client flags message 2 behind tegami's back */
	test_assert(store_mailbox_sync(box, NULL, &err) == 0);
	msgs = store_mailbox_msgs(box, &n);
	test_assert(n == 1 && msgs[0].uid == uid2);
	flags_by_hand(root, "1700000002.M1P1Q1.host,S=2,W=3", "F");
	test_assert(store_msg_change_flags(box, 0, '+', STORE_FLAG_ANSWERED,
	    NULL, &err) == 0);
	test_assert(err == NULL);
	test_assert_int(count_files(cur), 1);
	test_assert(exists_in(root, "cur/1700000002.M1P1Q1.host,S=2,W=3:2,R"));
	/* and sets \Seen itself, which a STORE then asks for too */
	test_assert(rename(
	    (gone = xasprintf("%s/cur/1700000002.M1P1Q1.host,S=2,W=3:2,R", root)),
	    (to = xasprintf("%s/cur/1700000002.M1P1Q1.host,S=2,W=3:2,RS", root))) == 0);
	free(gone);
	free(to);
	test_assert(store_msg_change_flags(box, 0, '+', STORE_FLAG_SEEN, NULL,
	    &err) == 0);
	test_assert(err == NULL);
	test_assert_int(count_files(cur), 1);
	test_assert(exists_in(root, "cur/1700000002.M1P1Q1.host,S=2,W=3:2,RS"));
	msgs = store_mailbox_msgs(box, &n);
	test_assert(n == 1 && msgs[0].flags == (STORE_FLAG_ANSWERED | STORE_FLAG_SEEN));
	/* and then deletes it: the flags go into the index, no error, and
	   the rename finding no file leaves the expunge to the next sync */
	gone = xasprintf("%s/cur/1700000002.M1P1Q1.host,S=2,W=3:2,RS", root);
	test_assert(unlink(gone) == 0);
	free(gone);
	test_assert(store_msg_change_flags(box, 0, '+', STORE_FLAG_FLAGGED,
	    NULL, &err) == 0);
	test_assert(err == NULL);
	test_assert_int(count_files(cur), 0);
	test_assert(store_mailbox_sync(box, NULL, &err) == 0);
	store_mailbox_msgs(box, &n);
	test_assert_int(n, 0);
	store_mailbox_close(&box);
	store_mailbox_close(&box2);
	store_account_close(&acct);
	store_account_close(&other);
	free(cur);
	test_end();
}
TEST(test_store_stale_names)

/*
 * With a janitor (the imap worker), a flag change writes the index and
 * leaves the file's name to store_names_flush(): \Deleted, then EXPUNGE
 * before the flush, never renames. In a child: the janitor cannot be
 * turned off again.
 */
static int
lagging_names_child(const char *root)
{
	struct store_account *acct, *other;
	struct store_mailbox *box, *box2;
	const struct store_msg *m;
	unsigned int n;
	char *err = NULL;
	uint32_t uid2;
	int bad = 0;

	store_trash_janitor();
	if (store_account_open(root, &acct, &err) < 0)
		return 2;
	deliver(root, "1700000001.M1P1Q1.host,S=2,W=3", "a\n");
	deliver(root, "1700000002.M1P1Q1.host,S=2,W=3", "b\n");
	if (store_mailbox_open(acct, "INBOX", false, &box, &err) < 0)
		return 2;
	m = store_mailbox_msgs(box, &n);
	if (n != 2)
		return 3;
	uid2 = m[1].uid;
	if (store_msg_change_flags(box, 0, '+', STORE_FLAG_SEEN, "k1", &err) != 0 ||
	    store_msg_change_flags(box, 1, '+', STORE_FLAG_DELETED, NULL, &err) != 0)
		return 4;
	/* the index has the flags, the files their old names */
	m = store_mailbox_msgs(box, &n);
	bad |= (m[0].flags != STORE_FLAG_SEEN) << 0;
	bad |= (strcmp(m[0].path, "cur/1700000001.M1P1Q1.host,S=2,W=3:2,") != 0) << 1;
	bad |= !exists_in(root, "cur/1700000001.M1P1Q1.host,S=2,W=3:2,") << 2;
	bad |= !exists_in(root, "cur/1700000002.M1P1Q1.host,S=2,W=3:2,") << 3;
	/* so has another connection, which reads the file by its name */
	if (store_account_open_private(root, &other, &err) < 0 ||
	    store_mailbox_open(other, "INBOX", true, &box2, &err) < 0)
		return 5;
	m = store_mailbox_msgs(box2, &n);
	bad |= (n != 2 || m[0].flags != STORE_FLAG_SEEN ||
	    strcmp(m[0].keywords, "k1") != 0) << 4;
	store_mailbox_close(&box2);
	store_account_close(&other);
	/* expunged before the flush: out of the way under its old name */
	if (store_mailbox_expunge(box, &uid2, 1, &err) < 0)
		return 6;
	bad |= !exists_in(root, "cur/.expunged.1700000002.M1P1Q1.host,S=2,W=3:2,") << 5;
	store_names_flush();
	m = store_mailbox_msgs(box, &n);
	bad |= (strcmp(m[0].path, "cur/1700000001.M1P1Q1.host,S=2,W=3:2,Sa") != 0) << 6;
	bad |= !exists_in(root, "cur/1700000001.M1P1Q1.host,S=2,W=3:2,Sa") << 7;
	bad |= exists_in(root, "cur/1700000001.M1P1Q1.host,S=2,W=3:2,") << 8;
	bad |= exists_in(root, "cur/1700000002.M1P1Q1.host,S=2,W=3:2,T") << 9;
	/* the index has the new name too */
	if (store_account_open_private(root, &other, &err) < 0 ||
	    store_mailbox_open(other, "INBOX", true, &box2, &err) < 0)
		return 7;
	m = store_mailbox_msgs(box2, &n);
	bad |= (n != 1 || strcmp(m[0].path,
	    "cur/1700000001.M1P1Q1.host,S=2,W=3:2,Sa") != 0) << 10;
	store_mailbox_close(&box2);
	store_account_close(&other);
	/* what the last handle's close finds waiting is renamed then */
	if (store_msg_change_flags(box, 0, '+', STORE_FLAG_FLAGGED, NULL, &err) != 0)
		return 8;
	bad |= !exists_in(root, "cur/1700000001.M1P1Q1.host,S=2,W=3:2,Sa") << 11;
	store_mailbox_close(&box);
	bad |= !exists_in(root, "cur/1700000001.M1P1Q1.host,S=2,W=3:2,FSa") << 12;
	store_account_close(&acct);
	if (bad != 0)
		fprintf(stderr, "lagging names: bad=%#x\n", bad);
	return bad != 0 ? 9 : 0;
}

static void
test_store_lagging_names(void)
{
	const char *root = test_tmpdir();
	struct store_account *acct;
	struct store_mailbox *box;
	const struct store_msg *m;
	unsigned int n;
	char *err = NULL, *db;
	sqlite3 *h;
	pid_t pid;
	int status = -1;

	test_begin("store: with a janitor, files take their flags' names at the flush");
	pid = fork();
	if (pid == 0)
		_exit(lagging_names_child(root));
	test_assert(pid > 0);
	test_assert(waitpid(pid, &status, 0) == pid);
	test_assert(WIFEXITED(status));
	test_assert_int(WEXITSTATUS(status), 0);
	test_end();

	/* a process that stopped before its flush left a name behind */
	test_begin("store: a name left behind its flags is renamed after the next scan");
	db = xasprintf("%s/" STORE_INDEX_FILE, root);
	test_assert(sqlite3_open(db, &h) == SQLITE_OK);
	/* the child's last change: \Answered for \Flagged */
	test_assert(sqlite3_exec(h, "UPDATE message SET flags = 3",
	    NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(h);
	free(db);
	test_assert(store_account_open(root, &acct, &err) == 0);
	test_assert(store_mailbox_open(acct, "INBOX", false, &box, &err) == 0);
	m = store_mailbox_msgs(box, &n);
	test_assert_int(n, 1);
	test_assert(n == 1 && m[0].flags == (STORE_FLAG_SEEN | STORE_FLAG_ANSWERED));
	test_assert(exists_in(root, "cur/1700000001.M1P1Q1.host,S=2,W=3:2,FSa"));
	store_names_flush();
	m = store_mailbox_msgs(box, &n);
	test_assert(n == 1);
	test_assert_str(m[0].path, "cur/1700000001.M1P1Q1.host,S=2,W=3:2,RSa");
	test_assert(exists_in(root, "cur/1700000001.M1P1Q1.host,S=2,W=3:2,RSa"));
	test_assert(!exists_in(root, "cur/1700000001.M1P1Q1.host,S=2,W=3:2,FSa"));
	store_mailbox_close(&box);
	store_account_close(&acct);
	test_end();
}
TEST(test_store_lagging_names)

static void
test_store_uidvalidity_recreate(void)
{
	const char *root = test_tmpdir();
	struct store_account *acct;
	struct store_mailbox *box;
	char *err = NULL;
	uint32_t v1, v2;

	/* imaptest "uidvalidity": delete and create again at once */
	test_begin("store: a folder made again gets a new UIDVALIDITY");
	test_assert(store_account_open(root, &acct, &err) == 0);
	test_assert(store_folder_create(acct, "Again", &err) == 0);
	test_assert(store_mailbox_open(acct, "Again", false, &box, &err) == 0);
	v1 = store_mailbox_uidvalidity(box);
	store_mailbox_close(&box);
	test_assert(store_folder_delete(acct, "Again", &err) == 0);
	test_assert(store_folder_create(acct, "Again", &err) == 0);
	test_assert(store_mailbox_open(acct, "Again", false, &box, &err) == 0);
	v2 = store_mailbox_uidvalidity(box);
	test_assert(v1 != 0 && v2 > v1);
	store_mailbox_close(&box);
	store_account_close(&acct);
	test_end();
}
TEST(test_store_uidvalidity_recreate)

static void
test_store_recent(void)
{
	const char *root = test_tmpdir();
	struct store_account *acct, *acct2;
	struct store_mailbox *box, *box2, *ro;
	char *err = NULL;
	uint32_t first;

	test_begin("store: \\Recent goes to the first session that claims it");
	test_assert(store_account_open(root, &acct, &err) == 0);
	test_assert(store_account_open(root, &acct2, &err) == 0);
	deliver(root, "1700000001.M1P1Q1.host,S=2,W=3", "a\n");
	deliver(root, "1700000002.M1P1Q1.host,S=2,W=3", "b\n");
	test_assert(store_mailbox_open(acct, "INBOX", false, &box, &err) == 0);
	/* looking (EXAMINE, STATUS) does not take them */
	test_assert(store_mailbox_open(acct2, "INBOX", true, &ro, &err) == 0);
	test_assert(store_mailbox_recent(ro, true, &first, &err) == 0 && first == 1);
	test_assert(store_mailbox_recent(box, true, &first, &err) == 0 && first == 1);
	test_assert(store_mailbox_recent(box, false, &first, &err) == 0 && first == 3);
	/* a message box has not synced yet stays recent for box2 */
	deliver(root, "1700000003.M1P1Q1.host,S=2,W=3", "c\n");
	test_assert(store_mailbox_open(acct2, "INBOX", false, &box2, &err) == 0);
	test_assert(store_mailbox_recent(box, true, &first, &err) == 0 && first == 3);
	test_assert(store_mailbox_recent(box2, true, &first, &err) == 0 && first == 3);
	test_assert(store_mailbox_recent(box2, false, &first, &err) == 0 && first == 4);
	store_mailbox_close(&ro);
	store_mailbox_close(&box);
	store_mailbox_close(&box2);
	store_account_close(&acct);
	store_account_close(&acct2);
	test_end();
}
TEST(test_store_recent)

/*
 * Two processes (two imap workers) on one folder: each has its own index
 * connection and folder state, and a message must still be \Recent in
 * one session only (RFC 3501 2.3.2), whoever claims first.
 */
static void
test_store_recent_two_processes(void)
{
	const char *root = test_tmpdir();
	struct store_account *acct, *other;
	struct store_mailbox *box, *box2;
	char *err = NULL;
	uint32_t first;

	test_begin("store: \\Recent is claimed once across two index connections");
	test_assert(store_account_open(root, &acct, &err) == 0);
	test_assert(store_account_open_private(root, &other, &err) == 0);
	deliver(root, "1700000001.M1P1Q1.host,S=2,W=3", "a\n");
	deliver(root, "1700000002.M1P1Q1.host,S=2,W=3", "b\n");
	test_assert(store_mailbox_open(acct, "INBOX", false, &box, &err) == 0);
	test_assert(store_mailbox_open(other, "INBOX", false, &box2, &err) == 0);
	/* the other process has read the mark before the claim */
	test_assert(store_mailbox_recent(box2, false, &first, &err) == 0 && first == 1);
	test_assert(store_mailbox_recent(box, true, &first, &err) == 0 && first == 1);
	/* nothing is left for the other process's session */
	test_assert(store_mailbox_recent(box2, true, &first, &err) == 0 && first == 3);
	/* a third message: the other process claims it now, and the mark
	   the first process wrote does not take it back */
	deliver(root, "1700000003.M1P1Q1.host,S=2,W=3", "c\n");
	test_assert(store_mailbox_sync(box2, NULL, &err) == 0);
	test_assert(store_mailbox_recent(box2, true, &first, &err) == 0 && first == 3);
	test_assert(store_mailbox_sync(box, NULL, &err) == 0);
	test_assert(store_mailbox_recent(box, true, &first, &err) == 0 && first == 4);
	store_mailbox_close(&box2);
	store_account_close(&other);
	/* the mark survives both connections */
	store_mailbox_close(&box);
	store_account_close(&acct);
	test_assert(store_account_open(root, &acct, &err) == 0);
	test_assert(store_mailbox_open(acct, "INBOX", false, &box, &err) == 0);
	test_assert(store_mailbox_recent(box, false, &first, &err) == 0 && first == 4);
	store_mailbox_close(&box);
	store_account_close(&acct);
	test_end();
}
TEST(test_store_recent_two_processes)

struct blob_seen {
	uint32_t uids[8];
	char data[8][16];
	unsigned int n;
};

static void
blob_cb(uint32_t uid, const void *data, size_t len, void *ctx)
{
	struct blob_seen *b = ctx;

	if (b->n < 8 && len < 16) {
		b->uids[b->n] = uid;
		memcpy(b->data[b->n], data, len);
		b->data[b->n][len] = '\0';
		b->n++;
	}
}

static void
test_store_blobs(void)
{
	const char *root = test_tmpdir();
	struct store_account *acct;
	struct store_mailbox *box;
	struct blob_seen seen;
	char *err = NULL;
	uint32_t uid[3];
	const void *data[3] = { "one", "two", "three" };
	size_t lens[3] = { 3, 3, 5 };

	test_begin("store: opaque per-message data kept by kind, dropped with the message");
	test_assert(store_account_open(root, &acct, &err) == 0);
	test_assert(store_folder_create(acct, "B", &err) == 0);
	test_assert(store_mailbox_open(acct, "B", false, &box, &err) == 0);
	for (int i = 0; i < 3; i++)
		test_assert(store_mailbox_append(box, "Subject: x\r\n\r\nx\r\n", 16, 0,
		    NULL, 0, &uid[i], &err) == 0);
	test_assert(store_mailbox_sync(box, NULL, &err) == 0);
	test_assert(store_msg_blobs_save(box, "k1", uid, data, lens, 3, &err) == 0);
	memset(&seen, 0, sizeof(seen));
	test_assert(store_msg_blobs_load(box, "k1", blob_cb, &seen, &err) == 0);
	test_assert_int(seen.n, 3);
	test_assert_str(seen.data[2], "three");
	test_assert(seen.uids[0] == uid[0] && seen.uids[2] == uid[2]);
	/* another kind (a new format) sees nothing */
	memset(&seen, 0, sizeof(seen));
	test_assert(store_msg_blobs_load(box, "k2", blob_cb, &seen, &err) == 0);
	test_assert_int(seen.n, 0);
	/* an expunged message's row goes */
	test_assert(store_mailbox_expunge(box, &uid[1], 1, &err) == 0);
	test_assert(store_mailbox_sync(box, NULL, &err) == 0);
	memset(&seen, 0, sizeof(seen));
	test_assert(store_msg_blobs_load(box, "k1", blob_cb, &seen, &err) == 0);
	test_assert_int(seen.n, 2);
	test_assert_str(seen.data[1], "three");
	store_mailbox_close(&box);
	/* the folder made again: new UIDVALIDITY, same UIDs, no old rows */
	test_assert(store_folder_delete(acct, "B", &err) == 0);
	test_assert(store_folder_create(acct, "B", &err) == 0);
	test_assert(store_mailbox_open(acct, "B", false, &box, &err) == 0);
	test_assert(store_mailbox_append(box, "Subject: y\r\n\r\ny\r\n", 16, 0,
	    NULL, 0, &uid[0], &err) == 0);
	test_assert(store_mailbox_sync(box, NULL, &err) == 0);
	memset(&seen, 0, sizeof(seen));
	test_assert(store_msg_blobs_load(box, "k1", blob_cb, &seen, &err) == 0);
	test_assert_int(seen.n, 0);
	store_mailbox_close(&box);
	store_account_close(&acct);
	test_end();
}
TEST(test_store_blobs);

static void
test_store_sleep_wake(void)
{
	const unsigned int grace = store_foreign_grace_ms;
	const char *root = test_tmpdir();
	struct store_account *acct;
	struct store_mailbox *box, *box2;
	struct store_sync_changes ch;
	const struct store_msg *msgs;
	unsigned int n;
	char *err = NULL, *path;

	/* the Maildir is changed by hand, as by Dovecot: seen at the next
	   sync, not after store_foreign_grace_ms */
	store_foreign_grace_ms = 0;
	test_begin("store: an idle account closes its index and sleeps; the next use wakes it");
	test_assert(store_account_open(root, &acct, &err) == 0);
	for (int i = 1; i <= 5; i++) {
		char name[64];

		snprintf(name, sizeof(name), "170000000%d.M1P1Q1.host,S=2,W=3", i);
		deliver(root, name, "a\n");
	}
	test_assert(store_mailbox_open(acct, "INBOX", false, &box, &err) == 0);
	test_assert(store_mailbox_open(acct, "INBOX", false, &box2, &err) == 0);
	test_assert(store_msg_set_flags(box, 1, STORE_FLAG_FLAGGED, NULL, &err) == 0);
	test_assert(store_mailbox_sync(box2, &ch, &err) == 0);
	store_sync_changes_free(&ch);
	/* box2 has not seen the expunge of UID 3 by box when both sleep */
	test_assert(store_mailbox_expunge(box, (uint32_t[]){ 3 }, 1, &err) == 0);
	test_assert(store_mailbox_sync(box, NULL, &err) == 0);
	test_assert(store_accounts_idle(0) >= 1);
	/* another process removes UID 5 meanwhile */
	path = xasprintf("%s/cur/1700000005.M1P1Q1.host,S=2,W=3:2,", root);
	test_assert(unlink(path) == 0);
	free(path);
	/* box2's view is still the five messages, with their flags */
	msgs = store_mailbox_msgs(box2, &n);
	test_assert(n == 5 && msgs[2].uid == 3 && msgs[4].uid == 5);
	test_assert(msgs[1].flags == STORE_FLAG_FLAGGED);
	test_assert(store_mailbox_sync(box2, &ch, &err) == 0);
	test_assert(ch.nexpunged == 2 && ch.expunged[0] == 3 && ch.expunged[1] == 5);
	test_assert(ch.expunged_pos[0] == 2 && ch.expunged_pos[1] == 4);
	store_sync_changes_free(&ch);
	msgs = store_mailbox_msgs(box2, &n);
	test_assert(n == 3 && msgs[2].uid == 4);
	/* and box, which had seen the first expunge, only the second */
	test_assert(store_mailbox_sync(box, &ch, &err) == 0);
	test_assert(ch.nexpunged == 1 && ch.expunged[0] == 5 && ch.expunged_pos[0] == 3);
	store_sync_changes_free(&ch);
	/* asleep again, a change wakes it too */
	test_assert(store_accounts_idle(0) >= 1);
	test_assert(store_msg_change_flags(box, 0, '+', STORE_FLAG_SEEN, NULL, &err) == 0);
	msgs = store_mailbox_msgs(box, &n);
	test_assert(n == 3 && msgs[0].flags == STORE_FLAG_SEEN);
	store_mailbox_close(&box);
	store_mailbox_close(&box2);
	store_account_close(&acct);
	test_end();
	store_foreign_grace_ms = grace;
}
TEST(test_store_sleep_wake)

static void
test_store_open_target(void)
{
	const char *root = test_tmpdir();
	struct store_account *acct;
	struct store_mailbox *t, *box;
	const struct store_msg *msgs;
	unsigned int n;
	uint32_t uid;
	char *err = NULL;

	test_begin("store: a target handle appends without the folder's array");
	test_assert(store_account_open(root, &acct, &err) == 0);
	/* first sight: the row is made the usual way */
	test_assert(store_mailbox_open_target(acct, "Sent", &t, &err) == 0);
	test_assert(store_mailbox_append(t, "a\r\n", 3, 0, NULL, 0, &uid, &err) == 0);
	test_assert(uid == 1);
	store_mailbox_close(&t);
	test_assert(store_mailbox_open_target(acct, "Sent", &t, &err) == 0);
	msgs = store_mailbox_msgs(t, &n);
	test_assert(n == 0);
	test_assert(store_mailbox_append(t, "b\r\n", 3, STORE_FLAG_SEEN, "kw", 0,
	    &uid, &err) == 0);
	test_assert(uid == 2);
	store_mailbox_close(&t);
	test_assert(store_mailbox_open_target(acct, "Nope", &t, &err) < 0);
	x_free(&err);
	test_assert(store_mailbox_open(acct, "Sent", false, &box, &err) == 0);
	msgs = store_mailbox_msgs(box, &n);
	test_assert(n == 2 && msgs[1].uid == 2 && msgs[1].flags == STORE_FLAG_SEEN);
	test_assert_str(msgs[1].keywords, "kw");
	test_assert(store_mailbox_uidnext(box) == 3);
	store_mailbox_close(&box);
	store_account_close(&acct);
	test_end();
}
TEST(test_store_open_target)

static void
test_store_schema_upgrade(void)
{
	const char *root = test_tmpdir();
	struct store_account *acct;
	struct store_mailbox *box;
	char *path, *err = NULL, *e, *b;
	const struct store_msg *msgs;
	unsigned int n;
	sqlite3 *db;
	sqlite3_stmt *st;

	test_begin("store: a version 1 index is upgraded in place (to 3), its cache kept");
	test_assert(store_account_open(root, &acct, &err) == 0);
	store_account_close(&acct);
	deliver(root, "1700000001.M1P1Q1.host,S=2,W=3", "a\n");
	/* what the first tegami wrote: schema 1, the cache in the rows */
	path = xasprintf("%s/" STORE_INDEX_FILE, root);
	(void)unlink(path);
	test_assert(sqlite3_open(path, &db) == SQLITE_OK);
	test_assert(sqlite3_exec(db,
	    "PRAGMA journal_mode=WAL;"
	    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
	    "CREATE TABLE mailbox(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL,"
	    " uidvalidity INTEGER NOT NULL, uidnext INTEGER NOT NULL,"
	    " highestmodseq INTEGER NOT NULL, guid TEXT NOT NULL);"
	    "CREATE TABLE message(mailbox INTEGER NOT NULL, uid INTEGER NOT NULL,"
	    " base TEXT NOT NULL, path TEXT NOT NULL, flags INTEGER NOT NULL,"
	    " keywords TEXT NOT NULL, modseq INTEGER NOT NULL,"
	    " internaldate INTEGER NOT NULL, size INTEGER NOT NULL, envelope TEXT,"
	    " bodystructure TEXT, PRIMARY KEY(mailbox, uid)) WITHOUT ROWID;"
	    "CREATE UNIQUE INDEX message_base ON message(mailbox, base);"
	    "CREATE TABLE expunged(mailbox INTEGER NOT NULL, uid INTEGER NOT NULL,"
	    " modseq INTEGER NOT NULL, PRIMARY KEY(mailbox, uid)) WITHOUT ROWID;"
	    "INSERT INTO meta VALUES('schema', '1');"
	    "INSERT INTO mailbox VALUES(1, 'INBOX', 77, 8, 500, 'g');"
	    "INSERT INTO message VALUES(1, 7, '1700000001.M1P1Q1.host,S=2,W=3',"
	    " 'new/1700000001.M1P1Q1.host,S=2,W=3', 0, '', 499, 1700000001, 3,"
	    " '(\"env\")', '(\"bs\")');",
	    NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	test_assert(store_account_open(root, &acct, &err) == 0);
	test_assert(store_mailbox_open(acct, "INBOX", false, &box, &err) == 0);
	test_assert(store_mailbox_uidvalidity(box) == 77);
	msgs = store_mailbox_msgs(box, &n);
	test_assert(n == 1 && msgs[0].uid == 7);
	/* schema 3: the internal date stands in for the save date */
	test_assert(msgs[0].savedate == 1700000001);
	test_assert(strncmp(msgs[0].path, "cur/", 4) == 0);
	test_assert(store_msg_cache_get(box, 7, &e, &b) == 1);
	test_assert_str(e, "(\"env\")");
	test_assert_str(b, "(\"bs\")");
	free(e);
	free(b);
	{
		char **u;

		/* an index from before: its folders keep base-name UIDLs */
		test_assert(store_mailbox_pop3_uidls(box, &u, &err) == 0);
		test_assert(u[0] == NULL);
		free(u);
	}
	store_mailbox_close(&box);
	store_account_close(&acct);
	test_assert(sqlite3_open(path, &db) == SQLITE_OK);
	test_assert(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='schema'",
	    -1, &st, NULL) == SQLITE_OK);
	test_assert(sqlite3_step(st) == SQLITE_ROW);
	test_assert_str((const char *)sqlite3_column_text(st, 0), "3");
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(path);
	test_end();
}
TEST(test_store_schema_upgrade)

static void
test_store_same_second_order(void)
{
	const char *root = test_tmpdir();
	struct store_account *acct;
	struct store_mailbox *box;
	const struct store_msg *msgs;
	unsigned int n;
	char *err = NULL;

	test_begin("store: deliveries of one second take UIDs by microsecond");
	test_assert(store_account_open(root, &acct, &err) == 0);
	/* the smtp worker does not pad M with zeros */
	deliver(root, "1700000001.M100P1Q3.host,S=2,W=3", "c\n");
	deliver(root, "1700000001.M99P1Q2.host,S=2,W=3", "b\n");
	deliver(root, "1700000001.M7P1Q1.host,S=2,W=3", "a\n");
	test_assert(store_mailbox_open(acct, "INBOX", false, &box, &err) == 0);
	msgs = store_mailbox_msgs(box, &n);
	test_assert(n == 3);
	test_assert(n == 3 && strncmp(msgs[0].base, "1700000001.M7P", 14) == 0 &&
	    strncmp(msgs[1].base, "1700000001.M99P", 15) == 0 &&
	    strncmp(msgs[2].base, "1700000001.M100P", 16) == 0);
	store_mailbox_close(&box);
	store_account_close(&acct);
	test_end();
}
TEST(test_store_same_second_order)

/* The WAL header's salts change each time SQLite starts the log over. */
static void
wal_salts(const char *root, unsigned char salts[8], off_t *size_r)
{
	char *path = xasprintf("%s/" STORE_INDEX_FILE "-wal", root);
	unsigned char hdr[32];
	FILE *f = fopen(path, "rb");
	struct stat st;

	memset(salts, 0, 8);
	*size_r = stat(path, &st) == 0 ? st.st_size : 0;
	if (f != NULL) {
		if (fread(hdr, 1, sizeof(hdr), f) == sizeof(hdr))
			memcpy(salts, hdr + 16, 8);
		fclose(f);
	}
	free(path);
}

/* One commit of several pages: a 20 kB cached rendering. */
static void
wal_commit(struct store_mailbox *box, uint32_t uid, unsigned int n)
{
	char *text = xmalloc(20000);
	struct store_msg_cache mc = { text, NULL, NULL };
	char *err = NULL;

	memset(text, 'a' + (int)(n % 26), 19999);
	text[19999] = '\0';
	test_assert(store_msg_cache_store(box, uid, &mc, &err) == 0);
	free(err);
	free(text);
}

/*
 * The pool's part (here in line) and the loop's, as the imap worker runs
 * them. With box, the loop goes on committing meanwhile: frames the
 * pool's checkpoint cannot copy, here because a reader that began before
 * them holds its snapshot until the pool is done.
 */
static void
wal_checkpoints(const char *dir, struct store_mailbox *box, uint32_t uid,
    unsigned int *n)
{
	char **paths = store_checkpoints_wanted();
	char *err = NULL;

	test_assert(paths != NULL);
	for (size_t i = 0; paths != NULL && paths[i] != NULL; i++) {
		sqlite3 *reader = NULL;

		if (box != NULL) {
			char *db = xasprintf("%s/" STORE_INDEX_FILE, dir);

			test_assert(sqlite3_open(db, &reader) == SQLITE_OK);
			test_assert(sqlite3_exec(reader, "BEGIN; SELECT count(*)"
			    " FROM mailbox", NULL, NULL, NULL) == SQLITE_OK);
			free(db);
			wal_commit(box, uid, (*n)++);
		}
		test_assert(store_index_checkpoint(paths[i], &err) == 0);
		if (reader != NULL) {
			(void)sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL);
			sqlite3_close(reader);
		}
		store_checkpoint_done(paths[i]);
		free(paths[i]);
	}
	free(paths);
}

/* A fresh account under root, with one message in INBOX. */
static void
wal_account(const char *root, const char *name, struct store_account **acct,
    struct store_mailbox **box, uint32_t *uid, char **dir)
{
	char *err = NULL;

	*dir = xasprintf("%s/%s", root, name);
	test_assert(mkdir(*dir, 0700) == 0);
	test_assert(store_account_open(*dir, acct, &err) == 0);
	test_assert(store_mailbox_open(*acct, "INBOX", false, box, &err) == 0);
	test_assert(store_mailbox_append(*box, "Subject: w\r\n\r\nw\r\n", 16,
	    0, NULL, 0, uid, &err) == 0);
	test_assert(store_mailbox_sync(*box, NULL, &err) == 0);
}

/* Commits until the WAL file holds at least frames. */
static void
wal_fill(struct store_mailbox *box, const char *dir, uint32_t uid,
    unsigned int *n, off_t frames)
{
	unsigned char salts[8];
	off_t size;
	unsigned int start = *n;

	do {
		wal_commit(box, uid, (*n)++);
		wal_salts(dir, salts, &size);
	} while (size < frames * (24 + 4096) && *n - start < 4000);
}

static void
test_store_wal_restart(void)
{
	const char *root = test_tmpdir();
	struct store_account *acct;
	struct store_mailbox *box;
	unsigned char s0[8], s1[8];
	off_t size;
	uint32_t uid;
	unsigned int n = 0;
	char *dir;

	test_begin("store: the pool's checkpoint lets a quiet account's WAL start over");
	wal_account(root, "quiet", &acct, &box, &uid, &dir);
	wal_fill(box, dir, uid, &n, 1100);
	wal_salts(dir, s0, &size);
	wal_checkpoints(dir, NULL, 0, NULL);
	wal_commit(box, uid, n++);
	wal_salts(dir, s1, &size);
	test_assert(memcmp(s0, s1, 8) != 0);
	store_mailbox_close(&box);
	store_account_close(&acct);
	free(dir);
	test_end();

	test_begin("store: the loop starts a busy WAL over only once it is big");
	wal_account(root, "busy", &acct, &box, &uid, &dir);
	/* past the checkpoint size, written to meanwhile: the log goes on */
	wal_fill(box, dir, uid, &n, 1100);
	wal_checkpoints(dir, box, uid, &n);
	wal_salts(dir, s0, &size);
	wal_commit(box, uid, n++);
	wal_salts(dir, s1, &size);
	test_assert(memcmp(s0, s1, 8) == 0);
	test_assert(size > 1100 * (24 + 4096));
	/* past the tail size: the loop copies the rest, then a new log */
	wal_fill(box, dir, uid, &n, 4100);
	wal_checkpoints(dir, box, uid, &n);
	wal_salts(dir, s0, &size);
	wal_commit(box, uid, n++);
	wal_salts(dir, s1, &size);
	test_assert(memcmp(s0, s1, 8) != 0);
	/* the new log is written over the old one's blocks: it stays put */
	test_assert(size < 4200 * (24 + 4096));
	store_mailbox_close(&box);
	store_account_close(&acct);
	free(dir);
	test_end();
}
TEST(test_store_wal_restart);

/*
 * Waiting for another process's write lock: short sleeps first (a commit
 * holds it well under a millisecond), never more than 10 ms at a time,
 * 10 s in all; and a lock held for a while is waited for, not failed.
 */
static void
test_store_busy_wait(void)
{
	const char *root = test_tmpdir();
	char *path;
	unsigned long long total = 0;
	unsigned int prev = 0, d;
	int count = 0;
	sqlite3 *db = NULL;

	test_begin("store: the index's lock waits start short and give up after 10 s");
	test_assert(store_index_busy_delay(0) > 0 && store_index_busy_delay(0) <= 50);
	while ((d = store_index_busy_delay(count)) != 0 && count < 100000) {
		test_assert(d >= prev && d <= 10000);
		prev = d;
		total += d;
		count++;
	}
	test_assert(total >= 10000000ULL && total < 10010000ULL);
	test_end();

	test_begin("store: a write lock another process holds for 30 ms is waited for");
	path = xasprintf("%s/t.sqlite", root);
	test_assert(sqlite3_open(path, &db) == SQLITE_OK);
	test_assert(sqlite3_exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE t(x);",
	    NULL, NULL, NULL) == SQLITE_OK);
	{
		int sync_pipe[2];
		pid_t pid;
		char c;
		int status = -1;

		test_assert(pipe(sync_pipe) == 0);
		pid = fork();
		if (pid == 0) {
			sqlite3 *cdb = NULL;
			struct timespec ts = { 0, 30 * 1000 * 1000 };

			if (sqlite3_open(path, &cdb) != SQLITE_OK ||
			    sqlite3_exec(cdb, "BEGIN IMMEDIATE; INSERT INTO t VALUES(1);",
			    NULL, NULL, NULL) != SQLITE_OK)
				_exit(2);
			(void)write(sync_pipe[1], "x", 1);
			nanosleep(&ts, NULL);
			_exit(sqlite3_exec(cdb, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : 3);
		}
		test_assert(pid > 0);
		test_assert(read(sync_pipe[0], &c, 1) == 1);
		store_index_wait(db);
		test_assert(sqlite3_exec(db, "BEGIN IMMEDIATE; INSERT INTO t VALUES(2); COMMIT;",
		    NULL, NULL, NULL) == SQLITE_OK);
		test_assert(waitpid(pid, &status, 0) == pid);
		test_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		close(sync_pipe[0]);
		close(sync_pipe[1]);
	}
	{
		sqlite3_stmt *st = NULL;

		test_assert(sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st,
		    NULL) == SQLITE_OK);
		test_assert(sqlite3_step(st) == SQLITE_ROW);
		test_assert(sqlite3_column_int(st, 0) == 2);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	free(path);
	test_end();
}
TEST(test_store_busy_wait)

/*
 * Expunged files wait under a dot name for the janitor of the process that
 * expunged them; another process's scan leaves them alone unless they are
 * old (a process that died), and a closed account leaves its trash to the
 * janitor.
 */
static void
test_store_trash(void)
{
	char *root = xasprintf("%s/trash", test_tmpdir());
	char *fresh, *old, *err = NULL, **paths;
	struct store_account *acct;
	struct store_mailbox *box;
	int found;

	test_begin("store: another process's trash is left to its janitor");
	test_assert(mkdir(root, 0700) == 0);
	test_assert(store_account_open(root, &acct, &err) == 0);
	fresh = xasprintf("%s/cur/.expunged.1700000001.M1P1Q1.host:2,S", root);
	put_file(fresh, "x\n");
	test_assert(store_mailbox_open(acct, "INBOX", false, &box, &err) == 0);
	test_assert(access(fresh, F_OK) == 0);
	test_assert(store_trash_take() == NULL);
	store_mailbox_close(&box);
	store_account_close(&acct);
	test_end();

	test_begin("store: trash a dead process left is taken by the next scan");
	old = xasprintf("%s/cur/.expunged.1700000002.M1P1Q1.host:2,", root);
	put_file(old, "y\n");
	store_trash_stale_secs = -1;	/* both count as left over */
	test_assert(store_account_open(root, &acct, &err) == 0);
	test_assert(store_mailbox_open(acct, "INBOX", false, &box, &err) == 0);
	store_trash_stale_secs = 300;
	paths = store_trash_take();
	found = 0;
	for (size_t i = 0; paths != NULL && paths[i] != NULL; i++) {
		found += strcmp(paths[i], old) == 0 || strcmp(paths[i], fresh) == 0;
		free(paths[i]);
	}
	free(paths);
	test_assert(found == 2);
	store_mailbox_close(&box);
	store_account_close(&acct);
	(void)unlink(old);
	(void)unlink(fresh);
	test_end();

	test_begin("store: an account closed with trash waiting leaves it to the janitor");
	{
		pid_t pid = fork();
		int status = -1;

		if (pid == 0) {
			const struct store_msg *m;
			unsigned int n;
			uint32_t uid;
			char *p;
			int bad = 0;

			store_trash_janitor();
			deliver(root, "1700000003.M1P1Q1.host", "z\n");
			if (store_account_open(root, &acct, &err) < 0 ||
			    store_mailbox_open(acct, "INBOX", false, &box, &err) < 0)
				_exit(2);
			m = store_mailbox_msgs(box, &n);
			if (n != 1)
				_exit(3);
			uid = m[0].uid;
			if (store_mailbox_expunge(box, &uid, 1, &err) < 0)
				_exit(4);
			store_mailbox_close(&box);
			store_account_close(&acct);
			p = xasprintf("%s/cur/.expunged.1700000003.M1P1Q1.host:2,", root);
			bad |= access(p, F_OK) != 0;		/* not unlinked by the close */
			paths = store_trash_take();
			bad |= paths == NULL || paths[0] == NULL ||
			    strcmp(paths[0], p) != 0 || paths[1] != NULL;
			_exit(bad ? 5 : 0);
		}
		test_assert(pid > 0);
		test_assert(waitpid(pid, &status, 0) == pid);
		test_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	test_end();
	free(fresh);
	free(old);
	free(root);
}
TEST(test_store_trash)

static ino_t
inode_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_ino : 0;
}

/*
 * dovecot-uidlist is appended to when a scan gives UIDs, and the lines of
 * expunged messages stay until they are most of it: a rewrite (a file made
 * and renamed over) on every change would be a file created per change.
 */
static void
test_store_uidlist_lines(void)
{
	const unsigned int grace = store_foreign_grace_ms;
	char *root = xasprintf("%s/uidlist", test_tmpdir());
	char *ul, *s, *from, *err = NULL;
	struct store_account *acct;
	struct store_mailbox *box;
	struct store_sync_changes ch;
	const struct store_msg *m;
	unsigned int n;
	uint32_t uid;
	ino_t ino;

	test_assert(mkdir(root, 0700) == 0);
	ul = xasprintf("%s/dovecot-uidlist", root);
	test_assert(store_account_open(root, &acct, &err) == 0);
	deliver(root, "1700000001.M1P1Q1.host", "a\n");
	deliver(root, "1700000002.M1P1Q1.host", "b\n");
	deliver(root, "1700000003.M1P1Q1.host", "c\n");
	test_assert(store_mailbox_open(acct, "INBOX", false, &box, &err) == 0);
	ino = inode_of(ul);
	test_assert(ino != 0);

	/* the Maildir is changed by hand, as by Dovecot: seen at the next
	   sync, not after store_foreign_grace_ms */
	store_foreign_grace_ms = 0;
	test_begin("store: an expunged message's uidlist line waits for a rewrite");
	m = store_mailbox_msgs(box, &n);
	test_assert(n == 3);
	uid = m[0].uid;
	test_assert(store_mailbox_expunge(box, &uid, 1, &err) == 0);
	/* a flag change made by another program: a full scan */
	flags_by_hand(root, "1700000002.M1P1Q1.host", "S");
	test_assert(store_mailbox_sync(box, &ch, &err) == 0);
	test_assert(ch.nchanged == 1);
	store_sync_changes_free(&ch);
	test_assert(inode_of(ul) == ino);
	s = slurp(ul);
	test_assert(strstr(s, "\n1 :1700000001.M1P1Q1.host\n") != NULL);
	free(s);
	test_end();

	test_begin("store: UIDs a full scan gives are appended to the uidlist");
	/* a file put straight into cur/, as a copy from another server is */
	from = xasprintf("%s/cur/1700000004.M1P1Q1.host:2,", root);
	put_file(from, "d\n");
	free(from);
	flags_by_hand(root, "1700000003.M1P1Q1.host", "F");
	test_assert(store_mailbox_sync(box, &ch, &err) == 0);
	test_assert(ch.nnew == 1);
	store_sync_changes_free(&ch);
	test_assert(inode_of(ul) == ino);
	s = slurp(ul);
	test_assert(strstr(s, "\n4 :1700000004.M1P1Q1.host\n") != NULL);
	free(s);
	test_end();

	test_begin("store: a uidlist mostly of gone messages is written afresh");
	for (int i = 0; i < 80; i++) {
		char name[64];

		snprintf(name, sizeof(name), "17000001%02d.M1P1Q1.host", i);
		deliver(root, name, "e\n");
	}
	test_assert(store_mailbox_sync(box, &ch, &err) == 0);
	store_sync_changes_free(&ch);
	m = store_mailbox_msgs(box, &n);
	test_assert(n == 83);
	{
		uint32_t *uids = xcalloc(n, sizeof(*uids));

		for (unsigned int i = 0; i < n; i++)
			uids[i] = m[i].uid;
		test_assert(store_mailbox_expunge(box, uids, n - 1, &err) == 0);
		free(uids);
	}
	s = slurp(ul);
	test_assert(strstr(s, ":1700000001.M1P1Q1.host\n") == NULL);
	test_assert(strstr(s, ":1700000004.M1P1Q1.host\n") == NULL);
	free(s);
	test_end();

	store_mailbox_close(&box);
	store_account_close(&acct);
	free(ul);
	free(root);
	store_foreign_grace_ms = grace;
}
TEST(test_store_uidlist_lines)

/* The open fd of path in this process, or -1. */
static int
fd_of(const char *path)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	char link[300], target[1024];
	int found = -1;

	if (d == NULL)
		return -1;
	while (found < 0 && (de = readdir(d)) != NULL) {
		ssize_t n;

		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n > 0) {
			target[n] = '\0';
			if (strcmp(target, path) == 0)
				found = atoi(de->d_name);
		}
	}
	closedir(d);
	return found;
}

static void
test_sqlite_noatime(void)
{
	char *dir = realpath(test_tmpdir(), NULL);
	char *db_path = xasprintf("%s/t.sqlite", dir);
	char *wal_path = xasprintf("%s/t.sqlite-wal", dir);
	sqlite3 *db = NULL, *db2 = NULL;
	struct timespec ts[2];
	struct stat st;
	int fd;

	test_begin("store: SQLite opens the index and its log O_NOATIME");
	test_assert(store_sqlite_noatime() == 0);
	test_assert(store_sqlite_noatime() == 0);	/* once is enough */
	test_assert(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE, NULL) == SQLITE_OK);
	test_assert(sqlite3_exec(db, "PRAGMA journal_mode=WAL; "
	    "CREATE TABLE t(x); INSERT INTO t VALUES (1)", NULL, NULL, NULL) ==
	    SQLITE_OK);
	fd = fd_of(db_path);
	test_assert(fd >= 0 && (test_fd_flags(fd) & O_NOATIME) != 0);
	fd = fd_of(wal_path);
	test_assert(fd >= 0 && (test_fd_flags(fd) & O_NOATIME) != 0);
	/* and a reader with a cold cache (it reads the table from the log)
	   leaves the log's atime where it was */
	clock_gettime(CLOCK_REALTIME, &ts[1]);
	ts[0] = ts[1];
	ts[0].tv_sec -= 3600;
	test_assert(utimensat(AT_FDCWD, wal_path, ts, 0) == 0);
	test_assert(sqlite3_open_v2(db_path, &db2, SQLITE_OPEN_READWRITE,
	    NULL) == SQLITE_OK);
	test_assert(sqlite3_exec(db2, "SELECT * FROM t", NULL, NULL, NULL) ==
	    SQLITE_OK);
	test_assert(stat(wal_path, &st) == 0);
	test_assert_int(st.st_atim.tv_sec, ts[0].tv_sec);
	sqlite3_close(db2);
	sqlite3_close(db);
	test_end();
	free(wal_path);
	free(db_path);
	free(dir);
}
TEST(test_sqlite_noatime)
