/*
 * Fuzz the header-text readers that SEARCH, SORT and THREAD run on mail
 * from the network: RFC 2047 decoding with charset conversion, case
 * folding, the RFC 5256 base subject, RFC 5322 dates, message-id lists,
 * modified UTF-7, and threading itself on messages made of the input
 * (one per line: "<id> <refs...>|subject").
 */
#include "imap/mutf7.h"
#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mail/charset.h"
#include "mail/date.h"
#include "mail/subject.h"
#include "mail/thread.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LINES 200

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = xstrndup((const char *)data, size);
	size_t len = strlen(s);
	struct buf b;
	time_t t;
	bool reply;
	char *subj;
	struct thread_input in[MAX_LINES];
	char **ids[MAX_LINES], *subjects[MAX_LINES];
	unsigned int nids[MAX_LINES], n = 0;

	buf_init(&b, 1 << 20);
	(void)charset_decode_header(s, len, &b);
	(void)charset_utf8_fold(s, len, &b);
	(void)charset_to_utf8("ISO-2022-JP", s, len, &b);
	buf_reset(&b);
	(void)imap_mutf7_to_utf8(s, &b);
	buf_reset(&b);
	(void)imap_utf8_to_mutf7(s, &b);
	buf_free(&b);
	(void)mail_date_parse(s, len, &t);
	subj = mail_base_subject(s, len, 4096, &reply);
	free(subj);

	for (char *line = s, *next; line != NULL && n < MAX_LINES; line = next) {
		char *bar;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		bar = strchr(line, '|');
		if (bar != NULL)
			*bar++ = '\0';
		ids[n] = thread_parse_ids(line, 20, &nids[n]);
		subjects[n] = mail_base_subject(bar != NULL ? bar : "",
		    bar != NULL ? strlen(bar) : 0, 256, &in[n].is_reply);
		in[n].id = n + 1;
		in[n].message_id = nids[n] > 0 ? ids[n][0] : NULL;
		in[n].refs = nids[n] > 1 ? (const char *const *)ids[n] + 1 : NULL;
		in[n].nrefs = nids[n] > 1 ? nids[n] - 1 : 0;
		in[n].base_subject = subjects[n];
		in[n].date = (time_t)(len % 7) * (time_t)(n % 3);
		n++;
	}
	for (int alg = THREAD_REFERENCES; alg <= THREAD_ORDEREDSUBJECT; alg++) {
		struct thread_tree *tree = thread_build(alg, in, n);
		unsigned int seen = 0;

		/* every message appears exactly once in the tree */
		for (unsigned int i = 0; i < tree->nnodes; i++)
			seen += tree->nodes[i].id != 0;
		if (seen != n)
			abort();
		thread_tree_free(&tree);
	}
	for (unsigned int i = 0; i < n; i++) {
		thread_ids_free(ids[i], nids[i]);
		free(subjects[i]);
	}
	free(s);
	return 0;
}
