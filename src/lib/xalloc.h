/*
 * Allocation that either succeeds or does not return (Postfix mymalloc):
 * out of memory is not something a mail server can handle halfway.
 */
#ifndef TEGAMI_XALLOC_H
#define TEGAMI_XALLOC_H

#include <stddef.h>
#include <stdlib.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Frees *pp and leaves it NULL (Dovecot i_free_and_null). */
#define x_free(pp) do { free(*(pp)); *(pp) = NULL; } while (0)

#endif
