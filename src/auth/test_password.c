#include "auth/password.h"
#include "lib/test.h"

#include <stdlib.h>

static void
test_password_schemes(void)
{
	const char *err;
	char *h;

	test_begin("password: docker-mailserver's documented example hash");
	/* docs/content/config/account-management/provisioner/file.md: "secret" */
	test_assert(password_verify("{SHA512-CRYPT}$6$W4rxRQwI6HNMt9n3$riCi5/OqUxnU8eZsOlZwoCnrNgu1gBGPkJc.ER.LhJCu7sOg9i1kBrRIistlBIp938GdBgMlYuoXYUU5A4Qiv0",
	    "secret", &err) == 1);
	test_assert(password_verify("{SHA512-CRYPT}$6$W4rxRQwI6HNMt9n3$riCi5/OqUxnU8eZsOlZwoCnrNgu1gBGPkJc.ER.LhJCu7sOg9i1kBrRIistlBIp938GdBgMlYuoXYUU5A4Qiv0",
	    "Secret", &err) == 0);
	test_end();

	test_begin("password: PLAIN, SSHA512, unknown schemes");
	test_assert(password_verify("{PLAIN}hunter2", "hunter2", &err) == 1);
	test_assert(password_verify("{PLAIN}hunter2", "hunter", &err) == 0);
	/* doveadm pw -s SSHA512 -p test */
	test_assert(password_verify("{SSHA512}5jHYX9N0FBZ5B958UkKBXNu37jowKypMr3Bs+EGF+x65ku/n0l+EfQVUJv56HWSGGMm/8EsRz29OYgSwNpmh0lR6HAs=", "test", &err) == 1);
	test_assert(password_verify("{SSHA512}5jHYX9N0FBZ5B958UkKBXNu37jowKypMr3Bs+EGF+x65ku/n0l+EfQVUJv56HWSGGMm/8EsRz29OYgSwNpmh0lR6HAs=", "tesT", &err) == 0);
	test_assert(password_verify("{ARGON9}xyz", "x", &err) == -1);
	test_assert(password_verify("{SHA512-CRYPT}garbage", "x", &err) == -1);
	test_end();

	test_begin("password: the other crypt schemes doveadm pw writes");
	{
		static const char *const hashes[] = {
			"{BLF-CRYPT}$2y$05$08BIdxCmhI//5b5gP3efwOjdj.IYjT5R01eSYGqROvquYNzn2pDzy",
			"{SHA256-CRYPT}$5$m69sA6BSpyzi4eH2$.4WQDfWbNkzXXcVTsqxFv0Frv/60bKLLXNNIqj7paVC",
			"{MD5-CRYPT}$1$WjyjJ2Je$Q28zpkvUiZVRz9yHzD2Zg/",
			/* no {SCHEME}: docker-mailserver's default, SHA512-CRYPT */
			"$6$W4rxRQwI6HNMt9n3$riCi5/OqUxnU8eZsOlZwoCnrNgu1gBGPkJc.ER.LhJCu7sOg9i1kBrRIistlBIp938GdBgMlYuoXYUU5A4Qiv0",
		};
		const char *const plains[] = { "test", "test", "test", "secret" };

		for (size_t i = 0; i < 4; i++) {
			test_assert(password_verify(hashes[i], plains[i], &err) == 1);
			test_assert(password_verify(hashes[i], "nope", &err) == 0);
		}
	}
	test_end();

	test_begin("password: hash round trip");
	h = password_hash("correct horse");
	test_assert(h != NULL && strncmp(h, "{SHA512-CRYPT}$6$", 17) == 0);
	test_assert(password_verify(h, "correct horse", &err) == 1);
	test_assert(password_verify(h, "correct horsE", &err) == 0);
	free(h);
	test_end();
}
TEST(test_password_schemes)
