#include "queue/spool.h"
#include "lib/file.h"
#include "lib/str.h"
#include "lib/test.h"
#include "lib/xalloc.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static size_t
count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	while (d != NULL && (e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	if (d != NULL)
		closedir(d);
	return n;
}

static const char hostile_addr[] = "evil\r\nrcpt addr=x@y state=sent\n@x.org";

static struct spool *
commit_one(struct spool *s, char *id_r, const char *body, size_t len)
{
	struct spool_msg *m;
	struct spool_envelope env;
	char *err = NULL;
	const char *werr;

	memset(&env, 0, sizeof(env));
	env.from = xstrdup("al ice=%@example.com");
	env.auth = xstrdup("alice@example.com");
	env.body = SPOOL_BODY_8BITMIME;
	env.smtputf8 = true;
	env.envid = xstrdup("-");
	spool_envelope_add_rcpt(&env, "bob@example.org");
	spool_envelope_add_rcpt(&env, hostile_addr);
	spool_envelope_add_rcpt(&env, "j\xc3\xbcrgen@b\xc3\xbc" "cher.de");
	env.rcpts[0].notify = xstrdup("SUCCESS,FAILURE");
	env.rcpts[0].orcpt = xstrdup("rfc822;bob@example.org");
	m = spool_msg_create(s, &err);
	if (m == NULL)
		abort();
	for (size_t i = 0; i < len; i += 1000)
		spool_msg_write(m, body + i, len - i < 1000 ? len - i : 1000, &werr);
	if (spool_msg_commit(m, &env, &err) < 0) {
		printf("     commit: %s\n", err);
		abort();
	}
	memcpy(id_r, env.id, SPOOL_ID_LEN + 1);
	spool_msg_free(&m);
	spool_envelope_free(&env);
	return s;
}

static void
test_spool_round_trip(void)
{
	const char *state = test_tmpdir();
	struct spool *s;
	struct spool_envelope env;
	char id[SPOOL_ID_LEN + 1], *err = NULL, **ids, *path, *data;
	size_t n, len, biglen = 300000;
	char *big = xmalloc(biglen);

	test_begin("spool: write, commit, list, read back");
	for (size_t i = 0; i < biglen; i++)
		big[i] = i % 80 == 78 ? '\r' : i % 80 == 79 ? '\n' : (char)('a' + i % 26);
	s = spool_open(state, &err);
	test_assert(s != NULL);
	commit_one(s, id, big, biglen);
	test_assert(spool_id_valid(id));
	test_assert(spool_list(s, &ids, &n, &err) == 0);
	test_assert_int(n, 1);
	test_assert_str(ids[0], id);
	str_array_free(ids);
	path = spool_msg_path(s, id);
	test_assert(file_read_all(path, 1 << 20, &data, &len) == 0);
	test_assert(len == biglen && memcmp(data, big, len) == 0);
	free(data);
	free(path);
	test_assert(spool_read_envelope(s, id, &env, &err) == 1);
	test_assert_str(env.id, id);
	test_assert_str(env.from, "al ice=%@example.com");
	test_assert_str(env.auth, "alice@example.com");
	test_assert_str(env.envid, "-");
	test_assert(env.ret == NULL);
	test_assert(env.body == SPOOL_BODY_8BITMIME && env.smtputf8 && !env.hold);
	test_assert_int(env.size, biglen);
	test_assert(env.created > 0);
	test_assert_int(env.rcpt_count, 3);
	test_assert_str(env.rcpts[0].address, "bob@example.org");
	test_assert_str(env.rcpts[0].notify, "SUCCESS,FAILURE");
	test_assert_str(env.rcpts[0].orcpt, "rfc822;bob@example.org");
	test_assert_str(env.rcpts[1].address, hostile_addr);
	test_assert(env.rcpts[1].state == SPOOL_RCPT_PENDING);
	test_assert_str(env.rcpts[2].address, "j\xc3\xbcrgen@b\xc3\xbc" "cher.de");
	test_assert(env.rcpts[2].last_reply == NULL);
	spool_envelope_free(&env);
	path = xasprintf("%s/tegami/queue/tmp", state);
	test_assert_int(count_files(path), 0);
	free(path);
	test_end();

	test_begin("spool: hostile values cannot forge lines or fields");
	path = xasprintf("%s/tegami/queue/env/%s", state, id);
	test_assert(file_read_all(path, 1 << 20, &data, &len) == 0);
	/* exactly the lines we wrote: magic + 10 keys + 3 recipients */
	n = 0;
	for (size_t i = 0; i < len; i++)
		n += data[i] == '\n';
	test_assert_int(n, 14);
	test_assert(strstr(data, "rcpt addr=evil%0D%0Arcpt%20addr%3Dx@y%20state%3Dsent%0A@x.org state=pending") != NULL);
	test_assert(strstr(data, "\nfrom al%20ice%3D%25@example.com\n") != NULL);
	test_assert(strstr(data, "\nenvid %2D\n") != NULL);
	free(data);
	free(path);
	test_end();

	test_begin("spool: update and remove");
	test_assert(spool_read_envelope(s, id, &env, &err) == 1);
	test_assert(!env.delay_warned);
	env.delay_warned = true;
	env.rcpts[0].state = SPOOL_RCPT_SENT;
	env.rcpts[0].last_reply = xstrdup("250 2.0.0 Ok: queued as X");
	env.rcpts[1].state = SPOOL_RCPT_FAILED;
	env.rcpts[1].attempts = 3;
	env.rcpts[1].next_attempt = 1764270000;
	env.rcpts[1].last_reply = xstrdup("550 5.1.1 <evil>\r\n550 no such user");
	env.hold = true;
	test_assert(spool_update_envelope(s, &env, &err) == 0);
	spool_envelope_free(&env);
	test_assert(spool_read_envelope(s, id, &env, &err) == 1);
	test_assert(env.hold);
	test_assert(env.delay_warned);
	test_assert(env.rcpts[0].state == SPOOL_RCPT_SENT);
	test_assert_str(env.rcpts[0].last_reply, "250 2.0.0 Ok: queued as X");
	test_assert(env.rcpts[1].state == SPOOL_RCPT_FAILED);
	test_assert_int(env.rcpts[1].attempts, 3);
	test_assert_int(env.rcpts[1].next_attempt, 1764270000);
	test_assert_str(env.rcpts[1].last_reply, "550 5.1.1 <evil>\r\n550 no such user");
	spool_envelope_free(&env);
	path = xasprintf("%s/tegami/queue/tmp", state);
	test_assert_int(count_files(path), 0);
	free(path);

	test_assert(spool_remove(s, id, &err) == 0);
	test_assert(spool_list(s, &ids, &n, &err) == 0);
	test_assert_int(n, 0);
	str_array_free(ids);
	test_assert(spool_read_envelope(s, id, &env, &err) == 0);
	path = spool_msg_path(s, id);
	test_assert(access(path, F_OK) < 0);
	free(path);
	test_assert(spool_remove(s, id, &err) == 0);
	test_assert(spool_remove(s, "../../etc/passwd", &err) == -1);
	free(err);
	err = NULL;
	test_assert(spool_read_envelope(s, "../env/x", &env, &err) == 0);
	test_end();

	spool_close(&s);
	test_assert(s == NULL);
	free(big);
}
TEST(test_spool_round_trip)

static void
test_spool_crash_garbage(void)
{
	const char *state = test_tmpdir();
	struct spool *s;
	struct spool_msg *m;
	struct spool_envelope env;
	char id[SPOOL_ID_LEN + 1], *err = NULL, **ids, *p;
	const char *werr;
	size_t n;

	test_begin("spool: a message without envelope is not listed, cleaned after an hour");
	s = spool_open(state, &err);
	test_assert(s != NULL);
	commit_one(s, id, "x\r\n", 3);
	/* what a crash between the renames leaves */
	p = xasprintf("%s/tegami/queue/msg/0123456789abcdef01234567", state);
	test_assert(file_write_atomic(p, "y\r\n", 3, 0600) == 0);
	free(p);
	p = xasprintf("%s/tegami/queue/tmp/89abcdef0123456789abcdef", state);
	test_assert(file_write_atomic(p, "partial", 7, 0600) == 0);
	free(p);
	/* a message being written right now */
	m = spool_msg_create(s, &err);
	test_assert(m != NULL);
	test_assert(spool_msg_write(m, "z", 1, &werr) == 0);
	test_assert(spool_list(s, &ids, &n, &err) == 0);
	test_assert_int(n, 1);
	test_assert_str(ids[0], id);
	str_array_free(ids);
	test_assert_int(spool_cleanup(s, time(NULL)), 0);
	test_assert_int(spool_cleanup(s, time(NULL) + 2 * SPOOL_GARBAGE_AGE), 3);
	p = xasprintf("%s/tegami/queue/msg", state);
	test_assert_int(count_files(p), 1);	/* the real entry's message */
	free(p);
	test_assert(spool_read_envelope(s, id, &env, &err) == 1);
	spool_envelope_free(&env);
	spool_msg_free(&m);
	test_end();

	test_begin("spool: a commit without recipients leaves nothing");
	m = spool_msg_create(s, &err);
	test_assert(m != NULL);
	memset(&env, 0, sizeof(env));
	test_assert(spool_msg_commit(m, &env, &err) == -1);
	free(err);
	err = NULL;
	spool_msg_free(&m);
	p = xasprintf("%s/tegami/queue/tmp", state);
	test_assert_int(count_files(p), 0);
	free(p);
	p = xasprintf("%s/tegami/queue/env", state);
	test_assert_int(count_files(p), 1);
	free(p);
	test_end();
	spool_close(&s);

	test_begin("spool: open fails on a file in the way");
	p = xasprintf("%s/blocked", test_tmpdir());
	test_assert(file_write_atomic(p, "", 0, 0600) == 0);
	s = spool_open(p, &err);
	test_assert(s == NULL && err != NULL);
	free(err);
	free(p);
	test_end();
}
TEST(test_spool_crash_garbage)

static const char *const bad_envelopes[] = {
	"",
	"tegami-queue 2\nid 0123456789abcdef01234567\ncreated 1\nfrom -\n",
	"tegami-queue 1\ncreated 1\nfrom -\n",
	"tegami-queue 1\nid 0123456789ABCDEF01234567\ncreated 1\nfrom -\n",
	"tegami-queue 1\nid ../../../etc/passwd\ncreated 1\nfrom -\n",
	"tegami-queue 1\nid 0123456789abcdef01234567\ncreated -1\nfrom -\n",
	"tegami-queue 1\nid 0123456789abcdef01234567\ncreated 1\nfrom a%0\n",
	"tegami-queue 1\nid 0123456789abcdef01234567\ncreated 1\nfrom a%00b\n",
	"tegami-queue 1\nid 0123456789abcdef01234567\ncreated 1\nfrom a%zzb\n",
	"tegami-queue 1\nid 0123456789abcdef01234567\ncreated 1\nfrom -\nrcpt state=pending\n",
	"tegami-queue 1\nid 0123456789abcdef01234567\ncreated 1\nfrom -\nrcpt addr=x@y\n",
	"tegami-queue 1\nid 0123456789abcdef01234567\ncreated 1\nfrom -\nrcpt addr=x@y state=lost\n",
	"tegami-queue 1\nid 0123456789abcdef01234567\ncreated 1\nfrom -\nrcpt addr=x@y addr=z@y state=sent\n",
	"tegami-queue 1\nid 0123456789abcdef01234567\ncreated 1\nfrom -\nrcpt addr=x@y state=sent attempts=x\n",
	"tegami-queue 1\nid 0123456789abcdef01234567\ncreated 1\nfrom -\nrcpt addr=x@y state=sent junk\n",
	"tegami-queue 1\nid 0123456789abcdef01234567\ncreated 1\nfrom -\nbody 9bit\n",
	"tegami-queue 1\nid 0123456789abcdef01234567\ncreated 1\nfrom -\nhold yes\n",
	"tegami-queue 1\nid 0123456789abcdef01234567\ncreated 1\nfrom -\nnovalue\n",
	"tegami-queue 1\nid 0123456789abcdef01234567\ncreated 1\nfrom \n",
	"tegami-queue 1\nid 0123456789abcdef01234567\ncreated 99999999999999999999999\nfrom -\n",
};

static void
test_spool_envelope_parse(void)
{
	struct spool_envelope env;
	char *err = NULL;
	static const char good[] =
		"tegami-queue 1\nid 0123456789abcdef01234567\ncreated 5\nfrom -\n"
		"future-key whatever\n\n"
		"rcpt future=1 state=bounced addr=x@y reply=%2D next=7\n"
		"rcpt addr=a%20b@c state=pending";

	test_begin("spool: malformed envelopes are refused, never crash");
	for (size_t i = 0; i < sizeof(bad_envelopes) / sizeof(bad_envelopes[0]); i++) {
		err = NULL;
		if (spool_envelope_parse(bad_envelopes[i], strlen(bad_envelopes[i]),
		    &env, &err) != -1)
			printf("     accepted #%zu\n", i);
		test_assert(err != NULL);
		free(err);
	}
	test_assert(spool_envelope_parse("tegami-queue 1\0x", 16, &env, &err) == -1);
	free(err);
	test_end();

	test_begin("spool: unknown keys are ignored, the rest parses");
	test_assert(spool_envelope_parse(good, sizeof(good) - 1, &env, &err) == 0);
	test_assert_str(env.from, "");
	test_assert(env.auth == NULL);
	test_assert_int(env.rcpt_count, 2);
	test_assert(env.rcpts[0].state == SPOOL_RCPT_BOUNCED);
	test_assert_str(env.rcpts[0].last_reply, "-");
	test_assert_int(env.rcpts[0].next_attempt, 7);
	test_assert_str(env.rcpts[1].address, "a b@c");
	{
		size_t len;
		char *text = spool_envelope_format(&env, &len);
		struct spool_envelope env2;

		test_assert(spool_envelope_parse(text, len, &env2, &err) == 0);
		test_assert_str(env2.rcpts[0].last_reply, "-");
		test_assert_str(env2.rcpts[1].address, "a b@c");
		spool_envelope_free(&env2);
		free(text);
	}
	spool_envelope_free(&env);
	test_end();
}
TEST(test_spool_envelope_parse)
