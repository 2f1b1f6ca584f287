#include "lib/str.h"
#include "lib/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

int
str_copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size) {
		memcpy(dst, src, size - 1);
		dst[size - 1] = '\0';
		return -1;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

char *
str_lower(char *s)
{
	for (char *p = s; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return s;
}

char *
str_trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' ||
	    end[-1] == '\r' || end[-1] == '\n'))
		*--end = '\0';
	return s;
}

unsigned int
str_hash(const char *s)
{
	unsigned int h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

bool
str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool
str_has_prefix_ci(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

bool
str_has_suffix(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

char **
str_split(const char *s, const char *seps, size_t *count_r)
{
	char **arr = NULL;
	size_t n = 0, cap = 0;
	const char *p = s;

	for (;;) {
		size_t len = strcspn(p, seps);
		char *field = xstrndup(p, len);
		char *t = str_trim(field);

		if (*t != '\0') {
			if (n + 2 > cap) {
				cap = cap == 0 ? 8 : cap * 2;
				arr = xreallocarray(arr, cap, sizeof(*arr));
			}
			arr[n++] = t == field ? field : (memmove(field, t,
			    strlen(t) + 1), field);
		} else {
			free(field);
		}
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	if (arr == NULL)
		arr = xcalloc(1, sizeof(*arr));
	arr[n] = NULL;
	if (count_r != NULL)
		*count_r = n;
	return arr;
}

void
str_array_free(char **array)
{
	if (array == NULL)
		return;
	for (char **p = array; *p != NULL; p++)
		free(*p);
	free(array);
}

size_t
str_array_len(char *const *array)
{
	size_t n = 0;

	while (array != NULL && array[n] != NULL)
		n++;
	return n;
}

int
str_to_ullong(const char *s, unsigned long long *v_r)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*v_r = v;
	return 0;
}

bool
str_is_utf8(const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		size_t n;
		unsigned int cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1; cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2; cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3; cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

bool
str_mem_equal_ct(const void *a, const void *b, size_t len)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char d = 0;

	for (size_t i = 0; i < len; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

void
str_wipe(void *p, size_t len)
{
	volatile unsigned char *v = p;

	while (len-- > 0)
		*v++ = 0;
}
