#include "imap/parser.h"
#include "lib/buf.h"
#include "lib/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct imap_parser_limits test_limits = {
	.max_line = 200,
	.max_literal = 20,
	.max_literal_total = 30,
	.max_depth = 3,
	.max_args = 12,
};

static void
render_arg(struct buf *out, const struct imap_arg *a)
{
	switch (a->type) {
	case IMAP_ARG_ATOM:
		buf_append(out, a->str, a->len);
		break;
	case IMAP_ARG_NIL:
		buf_append_str(out, "NIL");
		break;
	case IMAP_ARG_QUOTED:
		buf_printf(out, "\"%s\"", a->str);
		break;
	case IMAP_ARG_LITERAL:
		buf_printf(out, "%s{%zu%s}", a->literal8 ? "~" : "", a->len,
		    a->literal_nonsync ? "+" : "");
		buf_append(out, a->str, a->len);
		break;
	case IMAP_ARG_LIST:
		buf_append_c(out, '(');
		for (unsigned int i = 0; i < a->count; i++) {
			if (i > 0)
				buf_append_c(out, ' ');
			render_arg(out, &a->list[i]);
		}
		buf_append_c(out, ')');
		break;
	}
}

static void
note_result(struct imap_parser *p, enum imap_parse_result r, struct buf *out)
{
	const struct imap_command *cmd;
	const struct imap_parse_error *err;

	switch (r) {
	case IMAP_PARSE_MORE:
		break;
	case IMAP_PARSE_CONTINUE:
		buf_printf(out, "+%llu|",
		    (unsigned long long)imap_parser_literal_size(p));
		break;
	case IMAP_PARSE_DONE:
		cmd = imap_parser_command(p);
		buf_printf(out, "%s %s ", cmd->tag, cmd->name);
		render_arg(out, &cmd->args);
		buf_append_c(out, '|');
		break;
	case IMAP_PARSE_ERROR:
		err = imap_parser_error(p);
		buf_printf(out, "ERR %s [%s] %s%s|",
		    imap_parser_tag(p) != NULL ? imap_parser_tag(p) : "*",
		    err->code != NULL ? err->code : "", err->text,
		    err->line_too_long ? " (long)" : "");
		break;
	}
}

/* Feeds input in pieces of step bytes (0 = all at once). */
static char *
run(const char *input, size_t len, size_t step, size_t *out_len_r)
{
	struct imap_parser *p = imap_parser_create(&test_limits);
	struct buf out;
	size_t pos = 0;

	buf_init(&out, BUF_UNLIMITED);
	buf_append_str(&out, "");
	while (pos < len) {
		size_t n = step == 0 ? len - pos : step;
		size_t consumed;
		enum imap_parse_result r;

		if (n > len - pos)
			n = len - pos;
		r = imap_parser_feed(p, input + pos, n, &consumed);
		test_assert(consumed <= n);
		test_assert(r == IMAP_PARSE_MORE ? consumed == n : true);
		pos += consumed;
		note_result(p, r, &out);
	}
	imap_parser_free(&p);
	*out_len_r = out.len;
	return buf_steal(&out);
}

struct parse_case {
	const char *in;
	size_t in_len;
	const char *want;
	size_t want_len;
};
#define C(in, want) { in, sizeof(in) - 1, want, sizeof(want) - 1 }

static const struct parse_case parse_cases[] = {
	C("a1 NOOP\r\n", "a1 NOOP ()|"),
	C("a1 noop\n", "a1 noop ()|"),
	C("\r\na1 NOOP\r\n", "a1 NOOP ()|"),
	C("x LOGIN joe \"se\\\"cr\\\\et\"\r\n", "x LOGIN (joe \"se\"cr\\et\")|"),
	C("x SELECT \"\"\r\n", "x SELECT (\"\")|"),
	C("x FETCH 1:*,5 (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100>)\r\n",
	  "x FETCH (1:*,5 (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100>))|"),
	C("x STORE 1 +FLAGS (\\Seen \\Deleted)\r\n",
	  "x STORE (1 +FLAGS (\\Seen \\Deleted))|"),
	C("x LIST \"\" %\r\n", "x LIST (\"\" %)|"),
	C("x LIST \"\" [Gmail]/*\r\n", "x LIST (\"\" [Gmail]/*)|"),
	C("x ID NIL\r\n", "x ID (NIL)|"),
	C("x ID (\"name\" \"mutt\" \"version\" nil)\r\n",
	  "x ID ((\"name\" \"mutt\" \"version\" NIL))|"),
	C("x LOGIN {3}\r\njoe {4}\r\npass\r\n",
	  "+3|+4|x LOGIN ({3}joe {4}pass)|"),
	C("x LOGIN {3+}\r\njoe {4+}\r\npass\r\n",
	  "x LOGIN ({3+}joe {4+}pass)|"),
	C("x APPEND INBOX (\\Seen) ~{5+}\r\na\0b\r\n\r\n",
	  "x APPEND (INBOX (\\Seen) ~{5+}a\0b\r\n)|"),
	C("x APPEND INBOX {0}\r\n\r\n", "+0|x APPEND (INBOX {0})|"),
	C("x X ((a {2+}\r\nbc) d)\r\n", "x X (((a {2+}bc) d))|"),
	C("a NOOP\r\nb NOOP\r\n", "a NOOP ()|b NOOP ()|"),
	/* tolerated: several spaces, trailing space */
	C("a X  b \r\n", "a X (b)|"),
	/* errors, each followed by a good command to show resync */
	C("a+ NOOP\r\nb NOOP\r\n", "ERR * [] Invalid tag|b NOOP ()|"),
	C("a\r\nb NOOP\r\n", "ERR a [] Missing command|b NOOP ()|"),
	C("a NO*OP\r\nb NOOP\r\n", "ERR a [] Invalid command name|b NOOP ()|"),
	C("a X \"abc\r\nb NOOP\r\n",
	  "ERR a [] Unterminated quoted string|b NOOP ()|"),
	C("a X \"a\\bc\"\r\nb NOOP\r\n",
	  "ERR a [] Invalid escape in quoted string|b NOOP ()|"),
	C("a X (b\r\nb NOOP\r\n", "ERR a [] Missing ')'|b NOOP ()|"),
	C("a X b)\r\nb NOOP\r\n", "ERR a [] Unexpected ')'|b NOOP ()|"),
	C("a X \"b\"c\r\nb NOOP\r\n",
	  "ERR a [] Missing space between arguments|b NOOP ()|"),
	C("a X {3}\r\nabcd\r\nb NOOP\r\n",
	  "+3|ERR a [] Missing space between arguments|b NOOP ()|"),
	C("a X a\"b\r\nb NOOP\r\n", "ERR a [] Unexpected quote in atom|b NOOP ()|"),
	C("a X a\rb\r\nb NOOP\r\n",
	  "ERR a [] Control character in command|b NOOP ()|"),
	C("a X {3x}\r\nb NOOP\r\n", "ERR a [] Invalid literal|b NOOP ()|"),
	C("a X ((((a))))\r\nb NOOP\r\n",
	  "ERR a [LIMIT] Too deeply nested|b NOOP ()|"),
	C("a X 1 2 3 4 5 6 7 8 9 10 11 12 13\r\nb NOOP\r\n",
	  "ERR a [LIMIT] Too many arguments|b NOOP ()|"),
	/* a synchronizing literal that is too big is refused at once: the
	   client waits, so the next bytes are a new command */
	C("a APPEND INBOX {21}\r\nb NOOP\r\n",
	  "ERR a [TOOBIG] Literal too big|b NOOP ()|"),
	C("a APPEND INBOX {99999999999999999999999}\r\nb NOOP\r\n",
	  "ERR a [TOOBIG] Literal too big|b NOOP ()|"),
	/* a non-synchronizing one is skipped, with what follows it */
	C("a APPEND INBOX {21+}\r\n123456789012345678901 {2+}\r\nxy\r\nb NOOP\r\n",
	  "ERR a [TOOBIG] Literal too big|b NOOP ()|"),
	/* total of literals in one command */
	C("a X {20+}\r\n12345678901234567890 {11+}\r\n12345678901\r\nb NOOP\r\n",
	  "ERR a [TOOBIG] Literal too big|b NOOP ()|"),
	/* an error earlier in a line that ends in {n+} skips the literal */
	C("a X b) {4+}\r\n\r\n\r\n\r\nb NOOP\r\n",
	  "ERR a [] Unexpected ')'|b NOOP ()|"),
};

static void
test_imap_parser_table(void)
{
	test_begin("imap parser: table, whole and one byte at a time");
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		size_t steps[] = { 0, 1, 2, 7 };

		for (size_t j = 0; j < sizeof(steps) / sizeof(steps[0]); j++) {
			size_t len;
			char *got = run(c->in, c->in_len, steps[j], &len);
			bool ok = len == c->want_len &&
			    memcmp(got, c->want, len) == 0;

			if (!ok)
				printf("     case %zu step %zu: got \"%s\" want \"%s\"\n",
				    i, steps[j], got, c->want);
			test_assert(ok);
			free(got);
		}
	}
	test_end();
}
TEST(test_imap_parser_table)

static void
test_imap_parser_long_line(void)
{
	struct imap_parser *p = imap_parser_create(&test_limits);
	char line[400];
	size_t consumed, pos = 0;
	enum imap_parse_result r = IMAP_PARSE_MORE;

	test_begin("imap parser: line too long, reported as soon as it is");
	memset(line, 'x', sizeof(line));
	memcpy(line, "a X ", 4);
	memcpy(line + sizeof(line) - 2, "\r\n", 2);
	while (pos < sizeof(line)) {
		r = imap_parser_feed(p, line + pos, 1, &consumed);
		pos += consumed;
		if (r != IMAP_PARSE_MORE)
			break;
	}
	test_assert(r == IMAP_PARSE_ERROR);
	/* max_line 200 plus the room for a CR */
	test_assert(pos == 201);
	test_assert(imap_parser_error(p)->line_too_long);
	test_assert_str(imap_parser_tag(p), "a");
	r = imap_parser_feed(p, line, sizeof(line), &consumed);
	test_assert(r == IMAP_PARSE_ERROR && consumed == 201);
	test_assert_str(imap_parser_tag(p), "a");

	/* a line at exactly the limit is fine */
	memset(line, 'x', 200);
	memcpy(line, "a X ", 4);
	memcpy(line + 200, "\r\n", 2);
	r = imap_parser_feed(p, line, 202, &consumed);
	test_assert(r == IMAP_PARSE_DONE && consumed == 202);
	memcpy(line + 200, "yy\r\n", 4);
	r = imap_parser_feed(p, line, 204, &consumed);
	test_assert(r == IMAP_PARSE_ERROR && imap_parser_error(p)->line_too_long);
	/* a line too long over several literals */
	r = imap_parser_feed(p, "b X {3+}\r\nabc ", 15, &consumed);
	test_assert(r == IMAP_PARSE_MORE);
	memset(line, 'z', 300);
	r = imap_parser_feed(p, line, 300, &consumed);
	test_assert(r == IMAP_PARSE_ERROR && imap_parser_error(p)->line_too_long);
	test_assert_str(imap_parser_tag(p), "b");
	imap_parser_free(&p);
	test_end();
}
TEST(test_imap_parser_long_line)

static void
test_imap_parser_continue_stops(void)
{
	struct imap_parser *p = imap_parser_create(&test_limits);
	const char *in = "a LOGIN {3}\r\njoe pw\r\n";
	size_t consumed;
	const struct imap_command *cmd;

	test_begin("imap parser: stops at a synchronizing literal, reset");
	test_assert(imap_parser_feed(p, in, strlen(in), &consumed) ==
	    IMAP_PARSE_CONTINUE);
	test_assert(consumed == 13);
	test_assert(imap_parser_literal_size(p) == 3);
	test_assert_str(imap_parser_name(p), "LOGIN");
	test_assert(imap_parser_feed(p, in + 13, strlen(in) - 13, &consumed) ==
	    IMAP_PARSE_DONE);
	cmd = imap_parser_command(p);
	test_assert(cmd->args.count == 2);
	test_assert_str(imap_arg_astring(&cmd->args.list[0]), "joe");
	test_assert(imap_arg_string(&cmd->args.list[0]) != NULL);
	test_assert(imap_arg_string(&cmd->args.list[1]) == NULL);
	test_assert(imap_arg_is_atom(&cmd->args.list[1], "PW"));

	/* the session refuses the literal (quota) and resets */
	test_assert(imap_parser_feed(p, "c APPEND x {10}\r\n", 17, &consumed) ==
	    IMAP_PARSE_CONTINUE);
	imap_parser_reset(p);
	test_assert(imap_parser_feed(p, "d NOOP\r\n", 8, &consumed) ==
	    IMAP_PARSE_DONE);
	test_assert_str(imap_parser_tag(p), "d");
	imap_parser_free(&p);
	test_end();
}
TEST(test_imap_parser_continue_stops)

struct seq_case {
	const char *in;
	uint32_t star;
	const char *want;	/* "lo-hi,..." or "ERR" or "$" */
};

static const struct seq_case seq_cases[] = {
	{ "1", 10, "1-1" },
	{ "1:*", 10, "1-10" },
	{ "*", 10, "10-10" },
	{ "*:4", 10, "4-10" },
	{ "9:7", 10, "7-9" },
	{ "1:*,5,7:9", 10, "1-10" },
	{ "5,3,4,1", 10, "1-1,3-5" },
	{ "1:3,10:12,4", 20, "1-4,10-12" },
	{ "4294967295", 3, "4294967295-4294967295" },
	{ "4294967294:4294967295,1", 3, "1-1,4294967294-4294967295" },
	{ "5:*", 3, "3-5" },
	{ "1:*", 0, "1-1" },
	{ "*", 0, "" },
	{ "$", 0, "$" },
	{ "", 10, "ERR" },
	{ "0", 10, "ERR" },
	{ "01", 10, "ERR" },
	{ "1,", 10, "ERR" },
	{ ",1", 10, "ERR" },
	{ "1::2", 10, "ERR" },
	{ "1:", 10, "ERR" },
	{ "4294967296", 10, "ERR" },
	{ "1,$", 10, "ERR" },
	{ "a", 10, "ERR" },
	{ "1,2,3,4,5,6,7,8,9", 10, "ERR" },	/* more than 8 ranges */
};

static void
test_imap_seqset(void)
{
	test_begin("imap sequence sets: parse and normalize");
	for (size_t i = 0; i < sizeof(seq_cases) / sizeof(seq_cases[0]); i++) {
		const struct seq_case *c = &seq_cases[i];
		struct imap_seqset set;
		const char *err;
		struct buf out;

		buf_init(&out, BUF_UNLIMITED);
		buf_append_str(&out, "");
		if (imap_seqset_parse(c->in, 8, &set, &err) < 0) {
			buf_append_str(&out, "ERR");
		} else if (set.searchres) {
			buf_append_str(&out, "$");
		} else {
			imap_seqset_normalize(&set, c->star);
			for (unsigned int j = 0; j < set.count; j++)
				buf_printf(&out, "%s%u-%u", j > 0 ? "," : "",
				    set.ranges[j].lo, set.ranges[j].hi);
		}
		if (strcmp(buf_cstr(&out), c->want) != 0)
			printf("     case %zu \"%s\"\n", i, c->in);
		test_assert_str(buf_cstr(&out), c->want);
		imap_seqset_free(&set);
		buf_free(&out);
	}
	test_end();

	test_begin("imap sequence sets: contains");
	{
		struct imap_seqset set;
		const char *err;

		test_assert(imap_seqset_parse("2:4,8,10:*", 8, &set, &err) == 0);
		imap_seqset_normalize(&set, 12);
		test_assert(!imap_seqset_contains(&set, 1));
		test_assert(imap_seqset_contains(&set, 2));
		test_assert(imap_seqset_contains(&set, 4));
		test_assert(!imap_seqset_contains(&set, 5));
		test_assert(imap_seqset_contains(&set, 8));
		test_assert(!imap_seqset_contains(&set, 9));
		test_assert(imap_seqset_contains(&set, 12));
		test_assert(!imap_seqset_contains(&set, 13));
		imap_seqset_free(&set);
	}
	test_end();
}
TEST(test_imap_seqset)
