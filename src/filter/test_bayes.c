#include "filter/bayes.h"
#include "lib/buf.h"
#include "lib/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const spam_words[] = {
	"viagra", "cheap", "pills", "offer", "winner", "lottery", "prize",
	"claim", "free", "money", "casino", "bonus", "discount", "pharmacy",
	"unsubscribe", "limited", "urgent", "cash", "loan", "crypto",
};
static const char *const ham_words[] = {
	"meeting", "project", "report", "tomorrow", "lunch", "schedule",
	"review", "code", "patch", "release", "notes", "family", "weekend",
	"agenda", "minutes", "budget", "invoice", "draft", "thanks", "regards",
};
static const char *const common_words[] = {
	"the", "and", "you", "your", "with", "this", "that", "have", "from", "will",
};

#define NWORDS(a) (sizeof(a) / sizeof((a)[0]))

/* A deterministic generator, so the corpus is the same on every run. */
static unsigned int
lcg(unsigned int *state)
{
	*state = *state * 1103515245u + 12345u;
	return (*state >> 16) & 0x7fff;
}

static char *
make_message(bool spam, unsigned int *seed, int uniq)
{
	const char *const *w = spam ? spam_words : ham_words;
	size_t nw = spam ? NWORDS(spam_words) : NWORDS(ham_words);
	struct buf b;

	buf_init(&b, 1 << 20);
	buf_printf(&b, "From: %s <%s@%s>\r\nSubject: %s %s\r\n\r\n",
	    spam ? "Deals" : "Colleague", spam ? "promo" : "jane",
	    spam ? "bulk.example" : "work.example",
	    w[lcg(seed) % nw], w[lcg(seed) % nw]);
	for (int i = 0; i < 25; i++)
		buf_printf(&b, "%s ", w[lcg(seed) % nw]);
	for (int i = 0; i < 10; i++)
		buf_printf(&b, "%s ", common_words[lcg(seed) % NWORDS(common_words)]);
	/* unique words make each message (and its digest) distinct */
	for (int i = 0; i < uniq; i++)
		buf_printf(&b, "uniq%ux%d ", lcg(seed), i);
	buf_append_str(&b, "\r\n");
	return buf_steal(&b);
}

static struct bayes *
open_db(const struct bayes_settings *set)
{
	struct bayes *b;
	char path[512], *err = NULL;

	snprintf(path, sizeof(path), "%s/bayes.db", test_tmpdir());
	if (bayes_open(path, set, &b, &err) < 0) {
		printf("     %s\n", err);
		free(err);
		return NULL;
	}
	return b;
}

static int
train_corpus(struct bayes *b, const char *account, int n, bool flip,
    unsigned int seed, int uniq)
{
	char *err = NULL;
	int failures = 0;

	for (int i = 0; i < 2 * n; i++) {
		bool spam = i % 2 == 0;
		char *m = make_message(spam, &seed, uniq);

		if (bayes_train(b, account, m, strlen(m), spam != flip ? BAYES_SPAM :
		    BAYES_HAM, 1000 + i, &err) != 1) {
			printf("     train: %s\n", err != NULL ? err : "not trained");
			free(err);
			err = NULL;
			failures++;
		}
		free(m);
	}
	return failures;
}

static void
test_bayes_combine(void)
{
	double hi[20], lo[20], mixed[2] = { 0.99, 0.01 };

	test_begin("bayes: chi-square combining");
	for (int i = 0; i < 20; i++) {
		hi[i] = 0.95;
		lo[i] = 0.05;
	}
	test_assert(bayes_combine(hi, 20) > 0.99);
	test_assert(bayes_combine(lo, 20) < 0.01);
	test_assert(bayes_combine(mixed, 2) > 0.4 && bayes_combine(mixed, 2) < 0.6);
	test_assert(bayes_combine(NULL, 0) == 0.5);
	test_end();
}
TEST(test_bayes_combine)

static void
test_bayes_classify(void)
{
	struct bayes *b = open_db(NULL);
	unsigned int seed = 4242;
	char *spam, *ham, *err = NULL;
	const char *neutral = "Subject: hello\r\n\r\nthe and you with this that\r\n";
	double p;
	struct bayes_stats st;

	test_begin("bayes: trained on a small corpus, tells spam from ham");
	test_assert(b != NULL);
	if (b == NULL) {
		test_end();
		return;
	}
	/* nothing trained: no opinion */
	spam = make_message(true, &seed, 0);
	ham = make_message(false, &seed, 0);
	test_assert(bayes_classify(b, NULL, spam, strlen(spam), &p, NULL, &err) == 0);
	test_assert(p == 0.5);

	test_assert(train_corpus(b, NULL, 30, false, 1, 3) == 0);
	test_assert(bayes_stats(b, NULL, &st, &err) == 0);
	test_assert(st.spam == 30 && st.ham == 30 && st.tokens > 100);

	test_assert(bayes_classify(b, NULL, spam, strlen(spam), &p, NULL, &err) == 0);
	if (p <= 0.9)
		printf("     spam scored %f\n", p);
	test_assert(p > 0.9);
	test_assert(bayes_classify(b, NULL, ham, strlen(ham), &p, NULL, &err) == 0);
	if (p >= 0.1)
		printf("     ham scored %f\n", p);
	test_assert(p < 0.1);
	test_assert(bayes_classify(b, NULL, neutral, strlen(neutral), &p, NULL,
	    &err) == 0);
	test_assert(p > 0.2 && p < 0.8);

	/* the same message twice: once; the other class: moved */
	test_assert(bayes_train(b, NULL, spam, strlen(spam), BAYES_SPAM, 5000,
	    &err) == 1);
	test_assert(bayes_train(b, NULL, spam, strlen(spam), BAYES_SPAM, 5001,
	    &err) == 0);
	test_assert(bayes_stats(b, NULL, &st, &err) == 0 && st.spam == 31);
	test_assert(bayes_train(b, NULL, spam, strlen(spam), BAYES_HAM, 5002,
	    &err) == 1);
	test_assert(bayes_stats(b, NULL, &st, &err) == 0);
	test_assert(st.spam == 30 && st.ham == 31);
	test_assert(bayes_untrain(b, NULL, spam, strlen(spam), &err) == 1);
	test_assert(bayes_untrain(b, NULL, spam, strlen(spam), &err) == 0);
	test_assert(bayes_stats(b, NULL, &st, &err) == 0);
	test_assert(st.spam == 30 && st.ham == 30);

	/* CRLF (an IMAP APPEND) and LF (its Maildir file) are one message */
	{
		const char *crlf = "Subject: twin\r\n\r\nthe very same words\r\n";
		const char *lf = "Subject: twin\n\nthe very same words\n";

		test_assert(bayes_train(b, NULL, crlf, strlen(crlf), BAYES_SPAM,
		    5003, &err) == 1);
		test_assert(bayes_train(b, NULL, lf, strlen(lf), BAYES_SPAM,
		    5004, &err) == 0);
		test_assert(bayes_train(b, NULL, lf, strlen(lf), BAYES_HAM,
		    5005, &err) == 1);
		test_assert(bayes_stats(b, NULL, &st, &err) == 0);
		test_assert(st.spam == 30 && st.ham == 31);
	}

	free(spam);
	free(ham);
	bayes_close(&b);
	test_end();
}
TEST(test_bayes_classify)

static void
test_bayes_accounts(void)
{
	struct bayes_settings set = bayes_default_settings;
	struct bayes *b;
	unsigned int seed = 99;
	char *spam, *err = NULL;
	double p;
	bool own;
	struct bayes_stats st;

	test_begin("bayes: an account's own store once trained, global before");
	set.min_trained = 5;
	b = open_db(&set);
	test_assert(b != NULL);
	if (b == NULL) {
		test_end();
		return;
	}
	spam = make_message(true, &seed, 0);
	/* alice trains 4 of each the other way round: not enough yet */
	test_assert(train_corpus(b, "alice@example.com", 4, true, 7, 2) == 0);
	test_assert(bayes_classify(b, "alice@example.com", spam, strlen(spam), &p,
	    &own, &err) == 0);
	test_assert(!own);
	/* the global store learnt from her: it sees her view */
	test_assert(p < 0.1);
	/* bob trains the usual way and outweighs her in the global store */
	test_assert(train_corpus(b, "bob@example.com", 20, false, 8, 2) == 0);
	test_assert(bayes_classify(b, "carol@example.com", spam, strlen(spam), &p,
	    &own, &err) == 0);
	test_assert(!own && p > 0.9);
	/* one more of each for alice: her own (reversed) store counts now */
	test_assert(train_corpus(b, "alice@example.com", 1, true, 9, 2) == 0);
	test_assert(bayes_classify(b, "alice@example.com", spam, strlen(spam), &p,
	    &own, &err) == 0);
	test_assert(own && p < 0.1);
	test_assert(bayes_stats(b, "alice@example.com", &st, &err) == 0);
	test_assert(st.spam == 5 && st.ham == 5);
	test_assert(bayes_stats(b, "", &st, &err) == 0);
	test_assert(st.spam == 25 && st.ham == 25);
	free(spam);
	bayes_close(&b);
	test_end();
}
TEST(test_bayes_accounts)

static void
test_bayes_prune(void)
{
	struct bayes_settings set = bayes_default_settings;
	struct bayes *b;
	unsigned int seed = 5;
	char *spam, *err = NULL;
	struct bayes_stats st;
	double p;

	test_begin("bayes: pruning keeps the store bounded and useful");
	set.max_tokens = 300;
	set.max_trained = 25;
	b = open_db(&set);
	test_assert(b != NULL);
	if (b == NULL) {
		test_end();
		return;
	}
	/* 40 unique words a message: far more tokens than the bound */
	test_assert(train_corpus(b, NULL, 30, false, 11, 40) == 0);
	test_assert(bayes_stats(b, NULL, &st, &err) == 0);
	test_assert(st.tokens <= 300);
	test_assert(st.spam == 30 && st.ham == 30);
	/* the frequent words survived: it still classifies */
	spam = make_message(true, &seed, 0);
	test_assert(bayes_classify(b, NULL, spam, strlen(spam), &p, NULL, &err) == 0);
	test_assert(p > 0.9);
	free(spam);
	bayes_close(&b);
	test_end();
}
TEST(test_bayes_prune)
