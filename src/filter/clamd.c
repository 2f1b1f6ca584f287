/* clamd INSTREAM client. */
#include "filter/clamd.h"

#include "filter/netclient.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define REPLY_MAX 1024

const char *
clamd_verdict_name(enum clamd_verdict v)
{
	switch (v) {
	case CLAMD_CLEAN: return "clean";
	case CLAMD_INFECTED: return "infected";
	case CLAMD_SKIPPED: return "skipped";
	case CLAMD_ERROR: return "error";
	}
	return "error";
}

enum clamd_verdict
clamd_parse_reply(char *reply, size_t rlen, char *virus, size_t virus_size,
    char **error_r)
{
	const char *msg;

	reply[rlen] = '\0';
	while (rlen > 0 && (reply[rlen - 1] == '\n' || reply[rlen - 1] == '\0'))
		reply[--rlen] = '\0';
	rlen = strlen(reply);
	/* clamd's words end up in logs and replies: printable only */
	for (size_t i = 0; i < rlen; i++) {
		if ((unsigned char)reply[i] < 0x20 || (unsigned char)reply[i] >= 0x7f)
			reply[i] = '?';
	}
	msg = str_has_prefix(reply, "stream: ") ? reply + 8 : reply;

	if (strcmp(msg, "OK") == 0)
		return CLAMD_CLEAN;
	if (rlen > 6 && str_has_suffix(msg, " FOUND")) {
		size_t n = strlen(msg) - 6;

		if (virus_size > 0) {
			if (n >= virus_size)
				n = virus_size - 1;
			memcpy(virus, msg, n);
			virus[n] = '\0';
		}
		return CLAMD_INFECTED;
	}
	*error_r = xasprintf("clamd answered \"%.200s\"", reply);
	return CLAMD_ERROR;
}

enum clamd_verdict
clamd_scan(const struct clamd_settings *set, const void *data, size_t len,
    char *virus, size_t virus_size, char **error_r)
{
	unsigned int timeout = set->timeout_ms != 0 ? set->timeout_ms : 30000;
	size_t chunk = set->chunk_size != 0 ? set->chunk_size : 64 * 1024;
	size_t max = set->max_size != 0 ? set->max_size : 25 * 1024 * 1024;
	char reply[REPLY_MAX + 1];
	size_t rlen = 0, off = 0;
	int fd;

	if (virus_size > 0)
		virus[0] = '\0';
	if (len > max)
		return CLAMD_SKIPPED;
	if (set->address == NULL || set->address[0] == '\0') {
		*error_r = xstrdup("no clamd address configured");
		return CLAMD_ERROR;
	}
	fd = netclient_connect(set->address, timeout, "clamd", error_r);
	if (fd < 0)
		return CLAMD_ERROR;
	if (netclient_send_all(fd, "zINSTREAM", 10) < 0)
		goto send_failed;
	while (off < len) {
		size_t n = len - off < chunk ? len - off : chunk;
		uint32_t be = htonl((uint32_t)n);

		if (netclient_send_all(fd, &be, 4) < 0 ||
		    netclient_send_all(fd, (const char *)data + off, n) < 0)
			goto send_failed;
		off += n;
	}
	if (netclient_send_all(fd, "\0\0\0\0", 4) < 0)
		goto send_failed;

	/* the reply ends with NUL (z-prefixed command) or at EOF */
	while (rlen < REPLY_MAX) {
		ssize_t r = recv(fd, reply + rlen, REPLY_MAX - rlen, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*error_r = xasprintf("reading clamd's answer: %m");
			close(fd);
			return CLAMD_ERROR;
		}
		if (r == 0)
			break;
		rlen += (size_t)r;
		if (memchr(reply, '\0', rlen) != NULL)
			break;
	}
	close(fd);
	return clamd_parse_reply(reply, rlen, virus, virus_size, error_r);

send_failed:
	*error_r = xasprintf("sending to clamd: %m");
	close(fd);
	return CLAMD_ERROR;
}
