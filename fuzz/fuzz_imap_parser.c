/*
 * Fuzz the IMAP command parser: the input is fed in pieces whose sizes come
 * from the input itself, and every command is walked, so a tree or literal
 * out of bounds shows up under ASan. Sequence sets are parsed from atoms,
 * and a NOTIFY command's arguments by the NOTIFY parser (imap/notify.c).
 */
#include "imap/notify.h"
#include "imap/parser.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t
walk(const struct imap_arg *a, unsigned int depth)
{
	size_t n = 1;
	struct imap_seqset set;
	const char *err;

	switch (a->type) {
	case IMAP_ARG_LIST:
		for (unsigned int i = 0; i < a->count; i++)
			n += walk(&a->list[i], depth + 1);
		break;
	case IMAP_ARG_ATOM:
		if (imap_seqset_parse(a->str, 64, &set, &err) == 0) {
			imap_seqset_normalize(&set, a->len * 7);
			(void)imap_seqset_contains(&set, 3);
			imap_seqset_free(&set);
		}
		/* fall through */
	default:
		n += a->len > 0 ? (unsigned char)a->str[a->len - 1] : 0;
		break;
	}
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct imap_parser_limits lim = {
		.max_line = 1024,
		.max_literal = 4096,
		.max_literal_total = 8192,
		.max_depth = 8,
		.max_args = 256,
	};
	struct imap_parser *p;
	size_t pos = 0;
	uint8_t step;

	if (size < 1)
		return 0;
	step = data[0] % 16 + 1;	/* piece size */
	data++;
	size--;
	p = imap_parser_create(&lim);
	while (pos < size) {
		size_t n = size - pos < step ? size - pos : step, consumed;
		enum imap_parse_result r;

		r = imap_parser_feed(p, data + pos, n, &consumed);
		if (consumed > n)
			__builtin_trap();
		pos += consumed;
		if (r == IMAP_PARSE_DONE) {
			const struct imap_command *cmd = imap_parser_command(p);

			(void)walk(&cmd->args, 0);
			if (strcasecmp(cmd->name, "NOTIFY") == 0) {
				struct imap_notify_spec spec;
				const char *err = NULL;

				if (imap_notify_parse(cmd->args.list, cmd->args.count,
				    &spec, &err) != NOTIFY_PARSE_OK && err == NULL)
					__builtin_trap();
				imap_notify_spec_free(&spec);
			}
		}
		else if (r == IMAP_PARSE_ERROR &&
		    imap_parser_error(p)->text == NULL)
			__builtin_trap();
	}
	imap_parser_free(&p);
	return 0;
}
