/*
 * A small unit-test framework in the manner of Dovecot's lib-test.
 *
 *   static void test_buf_append(void) {
 *       test_begin("buf append");
 *       test_assert(buf_append(&b, "x", 1) == 0);
 *       test_end();
 *   }
 *   TEST(test_buf_append);
 *
 * TEST() registers the function at load time, so adding a test file needs
 * no list to edit. The runner (lib/test_main.c) runs every registered test,
 * or those whose name contains argv[1], and ends with "N passed, N failed".
 */
#ifndef TEGAMI_TEST_H
#define TEGAMI_TEST_H

#include <stdbool.h>
#include <string.h>

void test_begin(const char *name);
void test_end(void);
void test_assert_fail(const char *expr, const char *file, int line);
void test_register(const char *name, void (*fn)(void));
/* A fresh, empty directory for this test (removed at exit). */
const char *test_tmpdir(void);
/* The open(2) flags of fd, from /proc/self/fdinfo (0 when unreadable). */
unsigned long test_fd_flags(int fd);

#define test_assert(expr) do { if (!(expr)) test_assert_fail(#expr, __FILE__, __LINE__); } while (0)
#define test_assert_str(a, b) do { const char *_a = (a), *_b = (b); \
	if (_a == NULL || _b == NULL || strcmp(_a, _b) != 0) { \
		test_assert_fail(#a " == " #b, __FILE__, __LINE__); \
		test_note_str(_a, _b); } } while (0)
#define test_assert_int(a, b) do { long long _a = (long long)(a), _b = (long long)(b); \
	if (_a != _b) { test_assert_fail(#a " == " #b, __FILE__, __LINE__); \
		test_note_int(_a, _b); } } while (0)
void test_note_str(const char *got, const char *want);
void test_note_int(long long got, long long want);

#define TEST(fn) \
	__attribute__((constructor)) static void fn##_register(void) { test_register(#fn, fn); }

#endif
