#include "queue/fromaddr.h"
#include "lib/xalloc.h"

#include <string.h>
#include <strings.h>

/* The first address in value[0..n): inside <...>, else the first word. */
static char *
pick(const char *v, size_t n)
{
	const char *end = v + n, *lt, *gt = NULL, *s, *e;
	char *a;

	lt = memchr(v, '<', n);
	if (lt != NULL)
		gt = memchr(lt, '>', (size_t)(end - lt));
	if (lt != NULL && gt != NULL) {
		s = lt + 1;
		e = gt;
	} else {
		s = v;
		while (s < end && (*s == ' ' || *s == '\t' || *s == '\r' ||
		    *s == '\n'))
			s++;
		e = s;
		while (e < end && *e != ' ' && *e != '\t' && *e != '\r' &&
		    *e != '\n' && *e != '(' && *e != ',')
			e++;
	}
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if (e == s || (size_t)(e - s) > FROMADDR_MAX)
		return NULL;
	if (memchr(s, '@', (size_t)(e - s)) == NULL || e[-1] == '@' ||
	    *s == '@')
		return NULL;
	for (const char *p = s; p < e; p++)
		if ((unsigned char)*p < 0x21 || *p == 0x7f)
			return NULL;
	a = xstrndup(s, (size_t)(e - s));
	return a;
}

char *
queue_header_from(const char *msg, size_t len)
{
	const char *p = msg, *end = msg + len;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *next = eol != NULL ? eol + 1 : end;
		size_t n = (size_t)((eol != NULL ? eol : end) - p);

		if (n == 0 || (n == 1 && p[0] == '\r'))
			return NULL;	/* end of the header */
		if (n >= 5 && strncasecmp(p, "from:", 5) == 0) {
			const char *fe = next;

			/* folded continuation lines */
			while (fe < end && (*fe == ' ' || *fe == '\t')) {
				const char *nl = memchr(fe, '\n',
				    (size_t)(end - fe));

				fe = nl != NULL ? nl + 1 : end;
			}
			return pick(p + 5, (size_t)(fe - p - 5));
		}
		p = next;
	}
	return NULL;
}
