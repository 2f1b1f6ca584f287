/*
 * Fuzz the IMAP URL parser (imap/url.c), which reads CATENATE and URLAUTH
 * URLs straight from the network, and check what it promises: the rump
 * ends inside the URL, and a URL with a token has an access identifier.
 */
#include "imap/url.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	struct imap_url u;
	const char *err;

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (imap_url_parse(s, &u, &err) == 0) {
		if (u.rump_len > strlen(s) || u.mailbox == NULL || u.uid == 0)
			abort();
		if (u.token != NULL && (u.access == NULL || u.mechanism == NULL))
			abort();
		imap_url_free(&u);
	} else if (err == NULL) {
		abort();
	}
	free(s);
	return 0;
}
