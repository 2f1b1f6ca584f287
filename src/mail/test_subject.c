#include "lib/test.h"
#include "lib/xalloc.h"
#include "mail/subject.h"

#include <stdlib.h>
#include <string.h>

static void
test_base_subject(void)
{
	static const struct {
		const char *in, *want;
		bool reply;
	} cases[] = {
		{ "Hello", "HELLO", false },
		{ "", "", false },
		{ "   ", "", false },
		{ "Re: Hello", "HELLO", true },
		{ "RE:Hello", "HELLO", true },
		{ "re: re: Re[2]: hello", "HELLO", true },
		{ "Fwd: hello", "HELLO", true },
		{ "FW: hello", "HELLO", true },
		{ "Re : hello", "HELLO", true },
		{ "Re [foo]: hello", "HELLO", true },
		{ "[list] Re: hello", "HELLO", true },
		{ "[list] hello", "HELLO", false },
		/* a blob that is all there is stays */
		{ "[list]", "[LIST]", false },
		{ "[a] [b] hello", "HELLO", false },
		{ "hello (fwd)", "HELLO", true },
		{ "hello (fwd) (FWD)  ", "HELLO", true },
		{ "[fwd: hello]", "HELLO", true },
		{ "[Fwd: Re: [list] hello (fwd)]", "HELLO", true },
		{ "hello\r\n\tworld  again", "HELLO WORLD AGAIN", false },
		{ "Reply to this", "REPLY TO THIS", false },
		{ "Re:", "", true },
		{ "=?utf-8?q?Re=3A_caf=C3=A9?=", "CAFE\xcc\x81", true },
		{ "Re: =?iso-8859-1?q?caf=E9?=", "CAFE\xcc\x81", true },
		{ "[unclosed hello", "[UNCLOSED HELLO", false },
	};

	test_begin("mail/subject: RFC 5256 base subject");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool reply = !cases[i].reply;
		char *s = mail_base_subject(cases[i].in, strlen(cases[i].in), 4096,
		    &reply);

		test_assert_str(s, cases[i].want);
		if (reply != cases[i].reply)
			test_note_str(cases[i].in, cases[i].reply ? "reply" : "not reply");
		test_assert(reply == cases[i].reply);
		free(s);
	}
	test_end();
}
TEST(test_base_subject);
