/* str: small string helpers that know nothing about mail. */
#ifndef TEGAMI_STR_H
#define TEGAMI_STR_H

#include <stdbool.h>
#include <stddef.h>

/* Copies src into dst (size > 0); -1 if it had to be cut. */
int str_copy(char *dst, size_t size, const char *src);
/* ASCII lower-casing in place; returns s. */
char *str_lower(char *s);
/* Trims ASCII white space at both ends in place; returns the new start. */
char *str_trim(char *s);
bool str_has_prefix(const char *s, const char *prefix);
bool str_has_prefix_ci(const char *s, const char *prefix);
bool str_has_suffix(const char *s, const char *suffix);
/* FNV-1a (32 bits) of a NUL-terminated string, for in-memory hash tables. */
unsigned int str_hash(const char *s);
/*
 * Splits s on any of the characters in seps, dropping empty fields and
 * trimming each; returns a NULL-terminated array of malloc'd strings and
 * the count in *count_r (may be NULL). Free with str_array_free().
 */
char **str_split(const char *s, const char *seps, size_t *count_r);
void str_array_free(char **array);
size_t str_array_len(char *const *array);
/*
 * Parses a decimal unsigned number that fills the whole string.
 * -1 on empty input, junk, or overflow.
 */
int str_to_ullong(const char *s, unsigned long long *v_r);
/* Is every byte valid UTF-8 (no overlongs, no surrogates)? */
bool str_is_utf8(const void *p, size_t len);
/* Constant-time comparison of two buffers of the same length. */
bool str_mem_equal_ct(const void *a, const void *b, size_t len);
/* Overwrites memory so the compiler cannot elide it (for secrets). */
void str_wipe(void *p, size_t len);

#endif
