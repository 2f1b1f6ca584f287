/*
 * Bayesian junk filter on SQLite. Robinson's per-token probability with
 * a prior (strength s = 0.45 around x = 0.5) keeps rare tokens near
 * neutral; only tokens at least 0.1 away from neutral, the 150 strongest,
 * are combined, with Fisher's chi-square method.
 */
#include "filter/bayes.h"

#include "lib/log.h"
#include "lib/xalloc.h"

#include <math.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define PRIOR_STRENGTH 0.45
#define PRIOR_PROB 0.5
#define MIN_DEVIATION 0.1
#define MAX_DISCRIMINATORS 150
#define DIGEST_LEN 32

const struct bayes_settings bayes_default_settings = {
	.max_tokens = 150000,
	.max_trained = 20000,
	.min_trained = 10,
	.max_message_tokens = TOKENIZE_DEFAULT_MAX,
};

struct bayes {
	sqlite3 *db;
	struct bayes_settings set;
	sqlite3_stmt *get_token;
	sqlite3_stmt *add_token;
	sqlite3_stmt *sub_token;
	sqlite3_stmt *get_totals;
	sqlite3_stmt *add_totals;
	sqlite3_stmt *get_trained;
	sqlite3_stmt *put_trained;
	sqlite3_stmt *del_trained;
};

static const char schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=NORMAL;"
	/* 512 KiB of page cache, not 2 MiB: the kernel's page cache holds
	 * the file anyway, and each worker has several such connections */
	"PRAGMA cache_size=-512;"
	"CREATE TABLE IF NOT EXISTS bayes_tokens ("
	"  account TEXT NOT NULL, token TEXT NOT NULL,"
	"  spam INTEGER NOT NULL, ham INTEGER NOT NULL, seen INTEGER NOT NULL,"
	"  PRIMARY KEY (account, token)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS bayes_totals ("
	"  account TEXT PRIMARY KEY NOT NULL,"
	"  spam INTEGER NOT NULL, ham INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS bayes_trained ("
	"  account TEXT NOT NULL, digest BLOB NOT NULL,"
	"  class INTEGER NOT NULL, at INTEGER NOT NULL,"
	"  PRIMARY KEY (account, digest)) WITHOUT ROWID;";

static int
db_error(struct bayes *b, const char *what, char **error_r)
{
	*error_r = xasprintf("bayes: %s: %s", what, sqlite3_errmsg(b->db));
	return -1;
}

static int
prepare(struct bayes *b, const char *sql, sqlite3_stmt **st_r, char **error_r)
{
	if (sqlite3_prepare_v2(b->db, sql, -1, st_r, NULL) != SQLITE_OK)
		return db_error(b, "prepare", error_r);
	return 0;
}

int
bayes_open(const char *path, const struct bayes_settings *settings,
    struct bayes **b_r, char **error_r)
{
	struct bayes *b = xcalloc(1, sizeof(*b));
	char *err = NULL;

	*b_r = NULL;
	b->set = settings != NULL ? *settings : bayes_default_settings;
	if (b->set.max_message_tokens == 0)
		b->set.max_message_tokens = TOKENIZE_DEFAULT_MAX;
	if (sqlite3_open_v2(path, &b->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		*error_r = xasprintf("bayes: cannot open %s: %s", path,
		    b->db != NULL ? sqlite3_errmsg(b->db) : "out of memory");
		bayes_close(&b);
		return -1;
	}
	sqlite3_busy_timeout(b->db, 5000);
	if (sqlite3_exec(b->db, schema, NULL, NULL, &err) != SQLITE_OK) {
		*error_r = xasprintf("bayes: schema of %s: %s", path,
		    err != NULL ? err : "?");
		sqlite3_free(err);
		bayes_close(&b);
		return -1;
	}
	if (prepare(b, "SELECT spam, ham FROM bayes_tokens WHERE account=?1 AND token=?2",
	    &b->get_token, error_r) < 0 ||
	    prepare(b, "INSERT INTO bayes_tokens (account, token, spam, ham, seen) "
	    "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (account, token) DO UPDATE SET "
	    "spam = spam + excluded.spam, ham = ham + excluded.ham, seen = excluded.seen",
	    &b->add_token, error_r) < 0 ||
	    prepare(b, "UPDATE bayes_tokens SET spam = max(spam - ?3, 0), "
	    "ham = max(ham - ?4, 0) WHERE account=?1 AND token=?2",
	    &b->sub_token, error_r) < 0 ||
	    prepare(b, "SELECT spam, ham FROM bayes_totals WHERE account=?1",
	    &b->get_totals, error_r) < 0 ||
	    prepare(b, "INSERT INTO bayes_totals (account, spam, ham) VALUES (?1, "
	    "max(?2, 0), max(?3, 0)) ON CONFLICT (account) DO UPDATE SET "
	    "spam = max(spam + ?2, 0), ham = max(ham + ?3, 0)",
	    &b->add_totals, error_r) < 0 ||
	    prepare(b, "SELECT class FROM bayes_trained WHERE account=?1 AND digest=?2",
	    &b->get_trained, error_r) < 0 ||
	    prepare(b, "INSERT OR REPLACE INTO bayes_trained (account, digest, class, at) "
	    "VALUES (?1, ?2, ?3, ?4)", &b->put_trained, error_r) < 0 ||
	    prepare(b, "DELETE FROM bayes_trained WHERE account=?1 AND digest=?2",
	    &b->del_trained, error_r) < 0) {
		bayes_close(&b);
		return -1;
	}
	*b_r = b;
	return 0;
}

void
bayes_close(struct bayes **bp)
{
	struct bayes *b = *bp;

	if (b == NULL)
		return;
	sqlite3_finalize(b->get_token);
	sqlite3_finalize(b->add_token);
	sqlite3_finalize(b->sub_token);
	sqlite3_finalize(b->get_totals);
	sqlite3_finalize(b->add_totals);
	sqlite3_finalize(b->get_trained);
	sqlite3_finalize(b->put_trained);
	sqlite3_finalize(b->del_trained);
	sqlite3_close(b->db);
	free(b);
	*bp = NULL;
}

static int
exec_sql(struct bayes *b, const char *sql, char **error_r)
{
	if (sqlite3_exec(b->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_error(b, sql, error_r);
	return 0;
}

/*
 * The message's identity: SHA-256 of its bytes without CRs, so the CRLF
 * text an IMAP client APPENDs and the LF file it becomes in the Maildir
 * are one message (trained twice = moved, not counted twice).
 */
static void
digest(const char *msg, size_t len, unsigned char out[DIGEST_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = DIGEST_LEN;
	size_t start = 0;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		panic("bayes: SHA-256 failed");
	for (size_t i = 0; i <= len; i++) {
		if (i < len && msg[i] != '\r')
			continue;
		if (i > start && EVP_DigestUpdate(ctx, msg + start, i - start) != 1)
			panic("bayes: SHA-256 failed");
		start = i + 1;
	}
	if (EVP_DigestFinal_ex(ctx, out, &n) != 1)
		panic("bayes: SHA-256 failed");
	EVP_MD_CTX_free(ctx);
}

static int
get_totals(struct bayes *b, const char *account, uint64_t *spam_r,
    uint64_t *ham_r, char **error_r)
{
	sqlite3_stmt *st = b->get_totals;
	int rc;

	*spam_r = *ham_r = 0;
	sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*spam_r = (uint64_t)sqlite3_column_int64(st, 0);
		*ham_r = (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(b, "read totals", error_r);
	return 0;
}

static int
step_done(struct bayes *b, sqlite3_stmt *st, const char *what, char **error_r)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return db_error(b, what, error_r);
	return 0;
}

/* Adds (sign +1) or removes (sign -1) one message's tokens and totals. */
static int
apply(struct bayes *b, const char *account, const struct token_set *toks,
    enum bayes_class cls, int sign, time_t now, char **error_r)
{
	sqlite3_stmt *st = sign > 0 ? b->add_token : b->sub_token;
	int spam = cls == BAYES_SPAM ? 1 : 0, ham = 1 - spam;

	for (size_t i = 0; i < toks->count; i++) {
		sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, toks->tokens[i], -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 3, spam);
		sqlite3_bind_int(st, 4, ham);
		if (sign > 0)
			sqlite3_bind_int64(st, 5, (sqlite3_int64)now);
		if (step_done(b, st, "update token", error_r) < 0)
			return -1;
	}
	if (sign < 0) {
		sqlite3_stmt *del;

		if (prepare(b, "DELETE FROM bayes_tokens WHERE account=?1 AND "
		    "spam = 0 AND ham = 0", &del, error_r) < 0)
			return -1;
		sqlite3_bind_text(del, 1, account, -1, SQLITE_STATIC);
		if (step_done(b, del, "drop empty tokens", error_r) < 0) {
			sqlite3_finalize(del);
			return -1;
		}
		sqlite3_finalize(del);
	}
	sqlite3_bind_text(b->add_totals, 1, account, -1, SQLITE_STATIC);
	sqlite3_bind_int(b->add_totals, 2, sign * spam);
	sqlite3_bind_int(b->add_totals, 3, sign * ham);
	return step_done(b, b->add_totals, "update totals", error_r);
}

static int64_t
count_rows(struct bayes *b, const char *sql, const char *account)
{
	sqlite3_stmt *st;
	int64_t n = -1;

	if (sqlite3_prepare_v2(b->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static int
delete_limited(struct bayes *b, const char *sql, const char *account,
    int64_t limit, char **error_r)
{
	sqlite3_stmt *st;

	if (prepare(b, sql, &st, error_r) < 0)
		return -1;
	sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, limit);
	if (step_done(b, st, "prune", error_r) < 0) {
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

/* Keeps a store under its bounds: down to 90% of max_tokens, tokens
 * seen in one message only and longest ago first, then the oldest. */
static int
prune(struct bayes *b, const char *account, char **error_r)
{
	int64_t n = count_rows(b, "SELECT count(*) FROM bayes_tokens WHERE account=?1",
	    account);
	int64_t max = (int64_t)b->set.max_tokens, excess;

	if (n < 0)
		return db_error(b, "count tokens", error_r);
	if (n > max) {
		excess = n - max * 9 / 10;
		if (delete_limited(b, "DELETE FROM bayes_tokens WHERE account=?1 AND "
		    "token IN (SELECT token FROM bayes_tokens WHERE account=?1 AND "
		    "spam + ham <= 1 ORDER BY seen ASC LIMIT ?2)", account, excess,
		    error_r) < 0)
			return -1;
		n = count_rows(b, "SELECT count(*) FROM bayes_tokens WHERE account=?1",
		    account);
		excess = n - max * 9 / 10;
		if (excess > 0 && delete_limited(b, "DELETE FROM bayes_tokens WHERE "
		    "account=?1 AND token IN (SELECT token FROM bayes_tokens WHERE "
		    "account=?1 ORDER BY seen ASC, spam + ham ASC LIMIT ?2)", account,
		    excess, error_r) < 0)
			return -1;
	}
	n = count_rows(b, "SELECT count(*) FROM bayes_trained WHERE account=?1",
	    account);
	if (n > (int64_t)b->set.max_trained &&
	    delete_limited(b, "DELETE FROM bayes_trained WHERE account=?1 AND "
	    "digest IN (SELECT digest FROM bayes_trained WHERE account=?1 "
	    "ORDER BY at ASC LIMIT ?2)", account,
	    n - (int64_t)b->set.max_trained, error_r) < 0)
		return -1;
	return 0;
}

/* -1 = not trained, else the class it was trained as. */
static int
trained_class(struct bayes *b, const char *account,
    const unsigned char dg[DIGEST_LEN], char **error_r)
{
	sqlite3_stmt *st = b->get_trained;
	int rc, cls = -1;

	sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, dg, DIGEST_LEN, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		cls = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		db_error(b, "read trained", error_r);
		return -2;
	}
	return cls;
}

/* Trains (cls >= 0) or untrains (cls < 0) one store. 1 = changed. */
static int
train_store(struct bayes *b, const char *account, const struct token_set *toks,
    const unsigned char dg[DIGEST_LEN], int cls, time_t now, char **error_r)
{
	int old = trained_class(b, account, dg, error_r);

	if (old == -2)
		return -1;
	if (old == cls || (cls < 0 && old < 0))
		return 0;
	if (old >= 0 && apply(b, account, toks, (enum bayes_class)old, -1, now,
	    error_r) < 0)
		return -1;
	if (cls < 0) {
		sqlite3_bind_text(b->del_trained, 1, account, -1, SQLITE_STATIC);
		sqlite3_bind_blob(b->del_trained, 2, dg, DIGEST_LEN, SQLITE_STATIC);
		return step_done(b, b->del_trained, "forget message", error_r) < 0 ?
		    -1 : 1;
	}
	if (apply(b, account, toks, (enum bayes_class)cls, 1, now, error_r) < 0)
		return -1;
	sqlite3_bind_text(b->put_trained, 1, account, -1, SQLITE_STATIC);
	sqlite3_bind_blob(b->put_trained, 2, dg, DIGEST_LEN, SQLITE_STATIC);
	sqlite3_bind_int(b->put_trained, 3, cls);
	sqlite3_bind_int64(b->put_trained, 4, (sqlite3_int64)now);
	if (step_done(b, b->put_trained, "remember message", error_r) < 0)
		return -1;
	if (prune(b, account, error_r) < 0)
		return -1;
	return 1;
}

static int
train_or_untrain(struct bayes *b, const char *account, const char *msg,
    size_t len, int cls, time_t now, char **error_r)
{
	unsigned char dg[DIGEST_LEN];
	struct token_set toks;
	int ret, ret2 = 0;

	if (account == NULL)
		account = "";
	digest(msg, len, dg);
	token_set_init(&toks, b->set.max_message_tokens);
	tokenize_message(&toks, msg, len);
	if (exec_sql(b, "BEGIN IMMEDIATE", error_r) < 0) {
		token_set_free(&toks);
		return -1;
	}
	ret = train_store(b, account, &toks, dg, cls, now, error_r);
	if (ret >= 0 && account[0] != '\0')
		ret2 = train_store(b, "", &toks, dg, cls, now, error_r);
	if (ret < 0 || ret2 < 0) {
		sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
		ret = -1;
	} else if (exec_sql(b, "COMMIT", error_r) < 0) {
		sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
		ret = -1;
	} else if (ret2 > 0) {
		ret = 1;
	}
	token_set_free(&toks);
	return ret;
}

int
bayes_train(struct bayes *b, const char *account, const char *msg, size_t len,
    enum bayes_class cls, time_t now, char **error_r)
{
	return train_or_untrain(b, account, msg, len, (int)cls, now, error_r);
}

int
bayes_untrain(struct bayes *b, const char *account, const char *msg, size_t len,
    char **error_r)
{
	return train_or_untrain(b, account, msg, len, -1, 0, error_r);
}

/* Q(chi2 | v) for even v: the probability of a chi-square value at
 * least this large, by the series for even degrees of freedom. */
static double
chi2q(double x2, size_t v)
{
	double m = x2 / 2.0, term = exp(-m), sum = term;

	for (size_t i = 1; i < v / 2; i++) {
		term *= m / (double)i;
		sum += term;
	}
	return sum < 1.0 ? sum : 1.0;
}

double
bayes_combine(const double *f, size_t n)
{
	double lnh = 0, lns = 0, h, s;

	if (n == 0)
		return 0.5;
	for (size_t i = 0; i < n; i++) {
		lnh += log(f[i]);
		lns += log(1.0 - f[i]);
	}
	h = chi2q(-2.0 * lnh, 2 * n);	/* near 1 when every f is spammy */
	s = chi2q(-2.0 * lns, 2 * n);	/* near 1 when every f is hammy */
	return (1.0 + h - s) / 2.0;
}

struct scored {
	double f;
	double dev;
};

static int
cmp_dev_desc(const void *a, const void *b)
{
	double x = ((const struct scored *)a)->dev, y = ((const struct scored *)b)->dev;

	return x < y ? 1 : x > y ? -1 : 0;
}

int
bayes_classify_tokens(struct bayes *b, const char *account,
    const struct token_set *toks, double *prob_r, bool *used_account_r,
    char **error_r)
{
	const char *store = "";
	uint64_t nspam, nham;
	struct scored *sc;
	double *f;
	size_t n = 0;

	*prob_r = 0.5;
	if (used_account_r != NULL)
		*used_account_r = false;
	if (account != NULL && account[0] != '\0') {
		if (get_totals(b, account, &nspam, &nham, error_r) < 0)
			return -1;
		if (nspam >= b->set.min_trained && nham >= b->set.min_trained) {
			store = account;
			if (used_account_r != NULL)
				*used_account_r = true;
		}
	}
	if (get_totals(b, store, &nspam, &nham, error_r) < 0)
		return -1;
	if (nspam == 0 || nham == 0)
		return 0;	/* one-sided training tells nothing */

	sc = xcalloc(toks->count + 1, sizeof(*sc));
	for (size_t i = 0; i < toks->count; i++) {
		sqlite3_stmt *st = b->get_token;
		double ts, th, ps, ph, p, cnt;
		int rc;

		sqlite3_bind_text(st, 1, store, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, toks->tokens[i], -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW) {
			sqlite3_reset(st);
			if (rc != SQLITE_DONE) {
				free(sc);
				return db_error(b, "read token", error_r);
			}
			continue;
		}
		ts = (double)sqlite3_column_int64(st, 0);
		th = (double)sqlite3_column_int64(st, 1);
		sqlite3_reset(st);
		/* counts can exceed totals after pruning of totals' history */
		ps = fmin(ts / (double)nspam, 1.0);
		ph = fmin(th / (double)nham, 1.0);
		if (ps + ph == 0)
			continue;
		p = ps / (ps + ph);
		cnt = ts + th;
		p = (PRIOR_STRENGTH * PRIOR_PROB + cnt * p) / (PRIOR_STRENGTH + cnt);
		if (fabs(p - 0.5) < MIN_DEVIATION)
			continue;
		sc[n].f = p;
		sc[n].dev = fabs(p - 0.5);
		n++;
	}
	qsort(sc, n, sizeof(*sc), cmp_dev_desc);
	if (n > MAX_DISCRIMINATORS)
		n = MAX_DISCRIMINATORS;
	f = xcalloc(n + 1, sizeof(*f));
	for (size_t i = 0; i < n; i++)
		f[i] = sc[i].f;
	*prob_r = bayes_combine(f, n);
	free(f);
	free(sc);
	return 0;
}

int
bayes_classify(struct bayes *b, const char *account, const char *msg,
    size_t len, double *prob_r, bool *used_account_r, char **error_r)
{
	struct token_set toks;
	int ret;

	token_set_init(&toks, b->set.max_message_tokens);
	tokenize_message(&toks, msg, len);
	ret = bayes_classify_tokens(b, account, &toks, prob_r, used_account_r,
	    error_r);
	token_set_free(&toks);
	return ret;
}

int
bayes_stats(struct bayes *b, const char *account, struct bayes_stats *st_r,
    char **error_r)
{
	int64_t n;

	if (account == NULL)
		account = "";
	memset(st_r, 0, sizeof(*st_r));
	if (get_totals(b, account, &st_r->spam, &st_r->ham, error_r) < 0)
		return -1;
	n = count_rows(b, "SELECT count(*) FROM bayes_tokens WHERE account=?1",
	    account);
	if (n < 0)
		return db_error(b, "count tokens", error_r);
	st_r->tokens = (uint64_t)n;
	return 0;
}
