/*
 * Public Suffix List. The rules are kept exactly as written ("com",
 * "*.ck", "!www.ck"), lower-cased, in one NUL-separated block with a
 * sorted array of offsets: about 160 kB for the whole list, and a lookup
 * is a handful of binary searches per label of the name.
 */
#include "msgauth/psl.h"

#include "lib/file.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PSL_NAME_MAX 253
#define PSL_LABELS_MAX 128

struct psl {
	char *block;
	uint32_t *index;	/* offsets into block, sorted by strcmp */
	size_t count;
};

static int
cmp_offsets(const void *a, const void *b, void *block)
{
	return strcmp((const char *)block + *(const uint32_t *)a,
	    (const char *)block + *(const uint32_t *)b);
}

int
psl_parse(const char *data, size_t len, struct psl **psl_r, char **error_r)
{
	struct psl *psl;
	size_t pos = 0, used = 0, cap = 1024, out = 0;

	*psl_r = NULL;
	if (len > UINT32_MAX / 2) {
		*error_r = xstrdup("public suffix list too large");
		return -1;
	}
	psl = xcalloc(1, sizeof(*psl));
	psl->block = xmalloc(len + 1);
	psl->index = xreallocarray(NULL, cap, sizeof(*psl->index));
	while (pos < len) {
		const char *line = data + pos, *nl = memchr(line, '\n', len - pos);
		size_t llen = nl != NULL ? (size_t)(nl - line) : len - pos;
		size_t rlen = 0;

		pos += llen + 1;
		/* a rule is the line up to the first white space */
		while (rlen < llen && !isspace((unsigned char)line[rlen]))
			rlen++;
		if (rlen == 0 || (rlen >= 2 && line[0] == '/' && line[1] == '/'))
			continue;
		if (used == cap) {
			cap *= 2;
			psl->index = xreallocarray(psl->index, cap,
			    sizeof(*psl->index));
		}
		psl->index[used++] = (uint32_t)out;
		for (size_t i = 0; i < rlen; i++)
			psl->block[out++] = (char)tolower((unsigned char)line[i]);
		psl->block[out++] = '\0';
	}
	if (used == 0) {
		psl_free(&psl);
		*error_r = xstrdup("no rules in the public suffix list");
		return -1;
	}
	/* glibc's qsort_r (we build with _GNU_SOURCE): no global state */
	qsort_r(psl->index, used, sizeof(*psl->index), cmp_offsets, psl->block);
	psl->count = used;
	*psl_r = psl;
	return 0;
}

int
psl_load(const char *path, struct psl **psl_r, char **error_r)
{
	char *data;
	size_t len;
	int ret;

	*psl_r = NULL;
	if (file_read_all(path, 16 * 1024 * 1024, &data, &len) < 0) {
		*error_r = xasprintf("cannot read the public suffix list %s "
		    "(install the publicsuffix package)", path);
		return -1;
	}
	ret = psl_parse(data, len, psl_r, error_r);
	free(data);
	return ret;
}

void
psl_free(struct psl **pslp)
{
	struct psl *psl = *pslp;

	if (psl == NULL)
		return;
	free(psl->block);
	free(psl->index);
	free(psl);
	*pslp = NULL;
}

size_t
psl_rule_count(const struct psl *psl)
{
	return psl->count;
}

static bool
has_rule(const struct psl *psl, const char *prefix, const char *rest)
{
	size_t lo = 0, hi = psl->count;
	size_t plen = strlen(prefix);

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *r = psl->block + psl->index[mid];
		int c = strncmp(r, prefix, plen);

		if (c == 0)
			c = strcmp(r + plen, rest);
		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

size_t
psl_suffix_labels(const struct psl *psl, const char *name)
{
	char lname[PSL_NAME_MAX + 1];
	size_t starts[PSL_LABELS_MAX], n = 0, len = strlen(name), best = 1;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > PSL_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		lname[i] = (char)tolower((unsigned char)name[i]);
	lname[len] = '\0';
	for (size_t i = 0; i < len; i++) {
		if (i == 0 || lname[i - 1] == '.') {
			if (lname[i] == '.' || n == PSL_LABELS_MAX)
				return 0;
			starts[n++] = i;
		}
	}
	if (lname[len - 1] == '.')
		return 0;

	/* an exception rule wins over everything: its suffix is the rule
	 * minus its leftmost label */
	for (size_t i = 0; i < n; i++) {
		if (has_rule(psl, "!", lname + starts[i]))
			return n - i - 1;
	}
	/* otherwise the longest matching rule, "*.rest" covering any label */
	for (size_t i = 0; i < n; i++) {
		if (has_rule(psl, "", lname + starts[i]) ||
		    (i + 1 < n && has_rule(psl, "*.", lname + starts[i + 1]))) {
			best = n - i;
			break;
		}
	}
	return best;
}

int
psl_org_domain(const struct psl *psl, const char *name, char *out,
    size_t outsize)
{
	size_t k = psl_suffix_labels(psl, name), len = strlen(name), labels = 0;
	size_t start = len;

	if (k == 0)
		return -1;
	if (len > 0 && name[len - 1] == '.')
		len--;
	/* walk left over k + 1 labels */
	start = len;
	while (start > 0) {
		if (name[start - 1] == '.') {
			if (++labels == k + 1)
				break;
		}
		start--;
	}
	if (start == 0)
		labels++;
	if (labels < k + 1)
		return -1;	/* the name is a public suffix itself */
	if (len - start >= outsize)
		return -1;
	for (size_t i = start; i < len; i++)
		out[i - start] = (char)tolower((unsigned char)name[i]);
	out[len - start] = '\0';
	return 0;
}
