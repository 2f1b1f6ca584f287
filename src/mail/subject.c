/* RFC 5256 §2.1 base subject extraction. */
#include "mail/subject.h"

#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mail/charset.h"

#include <string.h>

/* Decoded, folded, with every white space run made one space. */
static char *
normalize(const char *raw, size_t len, size_t max)
{
	struct buf dec, fold, out;
	bool space = false;

	buf_init(&dec, max);
	buf_init(&fold, max * 2);
	buf_init(&out, max);
	(void)charset_decode_header(raw, len, &dec);
	(void)charset_utf8_fold(dec.data != NULL ? dec.data : "", dec.len, &fold);
	buf_append_str(&out, "");
	for (size_t i = 0; i < fold.len; i++) {
		char c = fold.data[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			space = true;
			continue;
		}
		if (space && buf_append_c(&out, ' ') < 0)
			break;
		space = false;
		if (buf_append_c(&out, c) < 0)
			break;
	}
	if (space)
		(void)buf_append_c(&out, ' ');
	buf_free(&dec);
	buf_free(&fold);
	return buf_steal(&out);
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP at s: its length, or 0. */
static size_t
blob_len(const char *s)
{
	size_t i = 1;

	if (s[0] != '[')
		return 0;
	while (s[i] != '\0' && s[i] != ']' && s[i] != '[')
		i++;
	if (s[i] != ']')
		return 0;
	i++;
	while (s[i] == ' ')
		i++;
	return i;
}

/*
 * subj-leader = (*subj-blob subj-refwd) / WSP
 * subj-refwd  = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
 * Returns its length at s (0: none); *refwd_r when it was a subj-refwd.
 */
static size_t
leader_len(const char *s, bool *refwd_r)
{
	size_t i = 0, b;

	*refwd_r = false;
	if (s[0] == ' ')
		return 1;
	while ((b = blob_len(s + i)) > 0)
		i += b;
	if (strncmp(s + i, "RE", 2) == 0)
		i += 2;
	else if (strncmp(s + i, "FWD", 3) == 0)
		i += 3;
	else if (strncmp(s + i, "FW", 2) == 0)
		i += 2;
	else
		return 0;
	while (s[i] == ' ')
		i++;
	i += blob_len(s + i);
	if (s[i] != ':')
		return 0;
	*refwd_r = true;
	return i + 1;
}

char *
mail_base_subject(const char *raw, size_t len, size_t max, bool *is_reply_r)
{
	char *subj = normalize(raw, len, max);
	size_t start = 0, end = strlen(subj);
	bool reply = false;

	for (;;) {
		bool changed;

		/* (2) trailers: "(fwd)" and white space */
		for (;;) {
			if (end > start && subj[end - 1] == ' ') {
				end--;
			} else if (end - start >= 5 &&
			    memcmp(subj + end - 5, "(FWD)", 5) == 0) {
				end -= 5;
				reply = true;
			} else {
				break;
			}
		}
		subj[end] = '\0';
		/* (3) leaders, (4) a blob when something is left after it,
		   (5) both until nothing changes */
		do {
			size_t l, b;
			bool refwd;

			changed = false;
			while ((l = leader_len(subj + start, &refwd)) > 0) {
				start += l;
				reply = reply || refwd;
				changed = true;
			}
			b = blob_len(subj + start);
			if (b > 0 && subj[start + b] != '\0') {
				start += b;
				changed = true;
			}
		} while (changed);
		/* (6) "[fwd:" ... "]": take it off and start again */
		if (end - start >= 6 && strncmp(subj + start, "[FWD:", 5) == 0 &&
		    subj[end - 1] == ']') {
			start += 5;
			end--;
			subj[end] = '\0';
			reply = true;
			continue;
		}
		break;
	}
	if (is_reply_r != NULL)
		*is_reply_r = reply;
	memmove(subj, subj + start, end - start + 1);
	return subj;
}
