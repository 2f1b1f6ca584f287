/* The unit-test runner: runs every TEST() registered in src/ *\/test_*.c. */
#include "lib/test.h"
#include "lib/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define MAX_TESTS 1024

struct test_entry {
	const char *name;
	void (*fn)(void);
};

static struct test_entry tests[MAX_TESTS];
static unsigned int test_count;
static const char *cur_name;
static bool cur_failed;
static unsigned int n_passed, n_failed;
static char tmp_root[256];
static unsigned int tmp_seq;

void
test_register(const char *name, void (*fn)(void))
{
	if (test_count == MAX_TESTS) {
		fprintf(stderr, "too many tests\n");
		abort();
	}
	tests[test_count].name = name;
	tests[test_count].fn = fn;
	test_count++;
}

void
test_begin(const char *name)
{
	cur_name = name;
	cur_failed = false;
}

void
test_end(void)
{
	if (cur_failed) {
		n_failed++;
		printf("FAIL %s\n", cur_name);
	} else {
		n_passed++;
		printf("ok   %s\n", cur_name);
	}
	cur_name = NULL;
}

void
test_assert_fail(const char *expr, const char *file, int line)
{
	cur_failed = true;
	printf("     %s:%d: assertion failed: %s (in %s)\n", file, line, expr,
	    cur_name != NULL ? cur_name : "?");
}

void
test_note_str(const char *got, const char *want)
{
	printf("     got  \"%s\"\n     want \"%s\"\n", got ? got : "(null)",
	    want ? want : "(null)");
}

void
test_note_int(long long got, long long want)
{
	printf("     got %lld, want %lld\n", got, want);
}

const char *
test_tmpdir(void)
{
	static char path[512];

	snprintf(path, sizeof(path), "%s/%u", tmp_root, ++tmp_seq);
	if (mkdir(path, 0700) < 0) {
		perror(path);
		abort();
	}
	return path;
}

unsigned long
test_fd_flags(int fd)
{
	char path[64], line[128];
	unsigned long flags = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if ((fp = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (sscanf(line, "flags: %lo", &flags) == 1)
			break;
	fclose(fp);
	return flags;
}

static void
cleanup_tmp(void)
{
	char cmd[300];

	if (tmp_root[0] != '\0' && getenv("TEST_KEEP_TMP") == NULL) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_root);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmp_root);
	}
}

int
main(int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : NULL;

	snprintf(tmp_root, sizeof(tmp_root), "/tmp/tegami-unit.XXXXXX");
	if (mkdtemp(tmp_root) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	atexit(cleanup_tmp);
	/* Modules log as they would in the server; keep the report readable. */
	if (getenv("TEST_VERBOSE") == NULL)
		log_set_level(LOG_ERROR);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (unsigned int i = 0; i < test_count; i++) {
		if (filter != NULL && strstr(tests[i].name, filter) == NULL)
			continue;
		tests[i].fn();
		if (cur_name != NULL) {
			printf("FAIL %s: test_end() missing\n", cur_name);
			n_failed++;
			cur_name = NULL;
		}
	}
	printf("unit: %u passed, %u failed\n", n_passed, n_failed);
	return n_failed == 0 ? 0 : 1;
}
