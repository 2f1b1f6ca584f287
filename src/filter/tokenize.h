/*
 * filter/tokenize: turns a message into the set of tokens the Bayesian
 * classifier counts.
 *
 * Tokens are lower-cased (ASCII) words of 3 to TOKENIZE_WORD_MAX bytes
 * (UTF-8 sequences count as letters; an over-long word becomes one
 * "skip:<c>:<len>" token; Chinese, Japanese and Korean text, which has no
 * spaces, gives "cjk:" character bigrams), prefixed by where they were
 * seen: "subject:",
 * "from:" (address, domain and display-name words), "url:" (host names
 * of links and their parent domains), "ct:" (MIME types); body words
 * carry no prefix. Bodies are decoded (base64, quoted-printable), HTML
 * tags are dropped (their links kept), multipart is walked down to
 * TOKENIZE_MIME_DEPTH levels. Each token appears once per message.
 *
 * Bounds: the first TOKENIZE_INPUT_MAX bytes of a message are looked at,
 * at most TOKENIZE_PARTS_MAX MIME parts, and a set holds at most the
 * `max` tokens given at init.
 */
#ifndef TEGAMI_FILTER_TOKENIZE_H
#define TEGAMI_FILTER_TOKENIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOKENIZE_WORD_MIN 3
#define TOKENIZE_WORD_MAX 40
#define TOKENIZE_TOKEN_MAX 80	/* prefix + word */
#define TOKENIZE_INPUT_MAX (1024 * 1024)
#define TOKENIZE_DECODED_MAX (512 * 1024)
#define TOKENIZE_MIME_DEPTH 8
#define TOKENIZE_PARTS_MAX 64
#define TOKENIZE_DEFAULT_MAX 3000

struct token_set {
	char **tokens;	/* NUL-terminated, malloc'd; insertion order */
	size_t count;
	size_t max;
	uint32_t *slots;	/* hash of index + 1; 0 = empty */
	size_t nslots;
};

void token_set_init(struct token_set *s, size_t max);
void token_set_free(struct token_set *s);
/* Adds a token (cut to TOKENIZE_TOKEN_MAX bytes). Returns true if it was
 * added, false if it was there already or the set is full. */
bool token_set_add(struct token_set *s, const char *tok, size_t len);
bool token_set_contains(const struct token_set *s, const char *tok);

/* Words of plain text, each with prefix ("" for none). */
void tokenize_text(struct token_set *s, const char *prefix, const char *text,
    size_t len);
/* Text with HTML tags and entities removed, links kept as url: tokens. */
void tokenize_html(struct token_set *s, const char *html, size_t len);
/* Links (http://, https://, www.) in text as url: tokens. */
void tokenize_urls(struct token_set *s, const char *text, size_t len);
/* One header field (value unfolded or not, RFC 2047 words decoded here). */
void tokenize_header(struct token_set *s, const char *name, size_t name_len,
    const char *value, size_t value_len);
/* A whole RFC 5322 message, header and body (LF or CRLF lines). */
void tokenize_message(struct token_set *s, const char *msg, size_t len);

#endif
