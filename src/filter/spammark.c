/* Marking spam at delivery. */
#include "filter/spammark.h"

#include "lib/str.h"

#include <string.h>
#include <strings.h>

void
spammark_delivery(const struct spammark_settings *set,
    const struct spammark_verdict *v, struct spammark_delivery *d)
{
	d->folder = v->spam && set->move_to_junk ? "Junk" : NULL;
	d->seen = v->spam && set->mark_read;
}

static bool
field_is(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name), k = n;

	if (len < n || strncasecmp(line, name, n) != 0)
		return false;
	while (k < len && (line[k] == ' ' || line[k] == '\t'))
		k++;
	return k < len && line[k] == ':';
}

/* "Subject: <text>" with control bytes (a line end from a scanner's
 * reply) as spaces: one field, whatever the text held. */
static int
put_subject(struct buf *out, const char *text, const char *eol)
{
	int ret = buf_append_str(out, "Subject: ");

	for (const char *p = text; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		ret |= buf_append_c(out, c < 0x20 || c == 0x7f ? ' ' : (char)c);
	}
	return ret | buf_append_str(out, eol);
}

int
spammark_rewrite(const char *msg, size_t len,
    const struct spammark_settings *set, const struct spammark_verdict *v,
    struct buf *out)
{
	static const char *const ours[] = {
		"X-Spam", "X-Spam-Flag", "X-Spam-Score", "X-Spam-Status",
	};
	const char *nl = memchr(msg, '\n', len);
	const char *eol = nl != NULL && nl > msg && nl[-1] == '\r' ? "\r\n" : "\n";
	bool replace = v->spam && v->subject != NULL && v->subject[0] != '\0';
	bool prefix = !replace && v->spam && set->subject_prefix != NULL &&
	    set->subject_prefix[0] != '\0';
	bool have_subject = false;
	size_t pos = 0;
	int ret = 0;

	/* our fields first: they sit above what the sender wrote */
	ret |= buf_printf(out, "X-Spam: %s%s", v->spam ? "Yes" : "No", eol);
	if (v->score >= 0)
		ret |= buf_printf(out, "X-Spam-Score: %.2f%s%s%s", v->score,
		    v->reason != NULL ? " " : "", v->reason != NULL ? v->reason : "",
		    eol);
	while (pos < len) {
		size_t end = pos;
		bool drop = false;

		if (msg[pos] == '\n' || (msg[pos] == '\r' && pos + 1 < len &&
		    msg[pos + 1] == '\n'))
			break;	/* the empty line */
		do {
			const char *e = memchr(msg + end, '\n', len - end);

			end = e != NULL ? (size_t)(e - msg) + 1 : len;
		} while (end < len && (msg[end] == ' ' || msg[end] == '\t'));

		for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
			drop = drop || field_is(msg + pos, end - pos, ours[i]);
		if (drop) {
			pos = end;
			continue;
		}
		if (replace && field_is(msg + pos, end - pos, "Subject")) {
			/* the first Subject becomes ours; any other goes */
			if (!have_subject)
				ret |= put_subject(out, v->subject, eol);
			have_subject = true;
		} else if (prefix && !have_subject && field_is(msg + pos,
		    end - pos, "Subject")) {
			const char *colon = memchr(msg + pos, ':', end - pos);
			size_t k = (size_t)(colon - msg) + 1;

			have_subject = true;
			while (k < end && (msg[k] == ' ' || msg[k] == '\t'))
				k++;
			ret |= buf_append(out, msg + pos, (size_t)(colon - msg) + 1 - pos);
			ret |= buf_printf(out, " %s ", set->subject_prefix);
			ret |= buf_append(out, msg + k, end - k);
		} else {
			ret |= buf_append(out, msg + pos, end - pos);
		}
		pos = end;
	}
	if (prefix && !have_subject)
		ret |= buf_printf(out, "Subject: %s%s", set->subject_prefix, eol);
	if (replace && !have_subject)
		ret |= put_subject(out, v->subject, eol);
	if (pos < len)
		ret |= buf_append(out, msg + pos, len - pos);
	return ret < 0 ? -1 : 0;
}
