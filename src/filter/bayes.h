/*
 * filter/bayes: the junk filter's Bayesian classifier, in SQLite.
 *
 * Token counts are kept per account, plus a global store (account "")
 * that every training also feeds. Classification uses the account's own
 * counts once it has been trained on at least `min_trained` messages of
 * each class, and the global counts before that. Per-token probabilities
 * are Robinson's f(w) and they are combined with Fisher's chi-square
 * method (as SpamBayes does), so the result is a spam probability with
 * a real "don't know" in the middle.
 *
 * Each message trained is remembered by its SHA-256, so training the same
 * message twice does nothing and training it as the other class moves it
 * (a user taking a message out of Junk). Every store is bounded: past
 * max_tokens tokens, the rarest and oldest go first.
 *
 * A struct bayes is one SQLite connection: use it from one thread at a
 * time (one per pool thread, or a lock). Several processes may open the
 * same file (WAL, busy timeout).
 */
#ifndef TEGAMI_FILTER_BAYES_H
#define TEGAMI_FILTER_BAYES_H

#include "filter/tokenize.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum bayes_class {
	BAYES_HAM = 0,
	BAYES_SPAM = 1,
};

struct bayes_settings {
	size_t max_tokens;		/* per store; default 150000 */
	size_t max_trained;		/* remembered messages per store; 20000 */
	unsigned int min_trained;	/* of each class before an account's own
					   store is used; default 10 */
	size_t max_message_tokens;	/* tokens looked at per message; 3000 */
};

extern const struct bayes_settings bayes_default_settings;

struct bayes;

/* Opens (creating) the database at path. settings NULL = defaults. */
int bayes_open(const char *path, const struct bayes_settings *settings,
    struct bayes **b_r, char **error_r);
void bayes_close(struct bayes **b);

/*
 * Trains msg as cls for account (NULL or "" = the global store only).
 * Returns 1 when counts changed, 0 when the message was already trained
 * that way, -1 on a database error (*error_r malloc'd).
 */
int bayes_train(struct bayes *b, const char *account, const char *msg,
    size_t len, enum bayes_class cls, time_t now, char **error_r);
/* Takes a trained message back out. 1 = done, 0 = it was not trained. */
int bayes_untrain(struct bayes *b, const char *account, const char *msg,
    size_t len, char **error_r);
/*
 * The spam probability of msg in [0, 1] (0.5 when the store knows too
 * little to tell). *used_account_r (may be NULL) says whether the
 * account's own store was used.
 */
int bayes_classify(struct bayes *b, const char *account, const char *msg,
    size_t len, double *prob_r, bool *used_account_r, char **error_r);
/* The same for an already tokenized message. */
int bayes_classify_tokens(struct bayes *b, const char *account,
    const struct token_set *tokens, double *prob_r, bool *used_account_r,
    char **error_r);

struct bayes_stats {
	uint64_t spam;		/* messages trained as spam */
	uint64_t ham;
	uint64_t tokens;	/* rows in the store */
};
int bayes_stats(struct bayes *b, const char *account, struct bayes_stats *st_r,
    char **error_r);

/*
 * The combining step on its own, for tests: Fisher/Robinson over n
 * per-token probabilities (each in (0, 1)). 0.5 for n == 0.
 */
double bayes_combine(const double *f, size_t n);

#endif
