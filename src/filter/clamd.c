/* clamd INSTREAM client. */
#include "filter/clamd.h"

#include "lib/str.h"
#include "lib/xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
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

static void
set_timeouts(int fd, unsigned int ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* A connected socket to address, or -1 with *error_r. */
static int
clamd_connect(const char *address, unsigned int timeout_ms, char **error_r)
{
	const char *path = NULL;
	int fd;

	if (str_has_prefix(address, "unix:"))
		path = address + 5;
	else if (address[0] == '/')
		path = address;

	if (path != NULL) {
		struct sockaddr_un sun;

		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if (str_copy(sun.sun_path, sizeof(sun.sun_path), path) < 0) {
			*error_r = xasprintf("clamd socket path too long: %s", path);
			return -1;
		}
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			*error_r = xasprintf("socket: %m");
			return -1;
		}
		set_timeouts(fd, timeout_ms);
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
			*error_r = xasprintf("cannot connect to clamd at %s: %m", path);
			close(fd);
			return -1;
		}
		return fd;
	}

	{
		char host[256];
		const char *colon = strrchr(address, ':');
		struct addrinfo hints, *res = NULL, *ai;
		size_t hlen;
		int rc;

		if (colon == NULL || colon == address || colon[1] == '\0') {
			*error_r = xasprintf("bad clamd address %s (want a socket "
			    "path or host:port)", address);
			return -1;
		}
		hlen = (size_t)(colon - address);
		if (address[0] == '[' && hlen >= 2 && address[hlen - 1] == ']') {
			address++;
			hlen -= 2;
		}
		if (hlen >= sizeof(host)) {
			*error_r = xstrdup("clamd host name too long");
			return -1;
		}
		memcpy(host, address, hlen);
		host[hlen] = '\0';
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		rc = getaddrinfo(host, colon + 1, &hints, &res);
		if (rc != 0) {
			*error_r = xasprintf("clamd address %s: %s", host,
			    gai_strerror(rc));
			return -1;
		}
		fd = -1;
		for (ai = res; ai != NULL; ai = ai->ai_next) {
			fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
			    ai->ai_protocol);
			if (fd < 0)
				continue;
			set_timeouts(fd, timeout_ms);
			if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
				break;
			close(fd);
			fd = -1;
		}
		freeaddrinfo(res);
		if (fd < 0)
			*error_r = xasprintf("cannot connect to clamd at %s: %m", host);
		return fd;
	}
}

static int
send_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
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
	const char *msg;
	int fd;

	if (virus_size > 0)
		virus[0] = '\0';
	if (len > max)
		return CLAMD_SKIPPED;
	if (set->address == NULL || set->address[0] == '\0') {
		*error_r = xstrdup("no clamd address configured");
		return CLAMD_ERROR;
	}
	fd = clamd_connect(set->address, timeout, error_r);
	if (fd < 0)
		return CLAMD_ERROR;
	if (send_all(fd, "zINSTREAM", 10) < 0)
		goto send_failed;
	while (off < len) {
		size_t n = len - off < chunk ? len - off : chunk;
		uint32_t be = htonl((uint32_t)n);

		if (send_all(fd, &be, 4) < 0 ||
		    send_all(fd, (const char *)data + off, n) < 0)
			goto send_failed;
		off += n;
	}
	if (send_all(fd, "\0\0\0\0", 4) < 0)
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

send_failed:
	*error_r = xasprintf("sending to clamd: %m");
	close(fd);
	return CLAMD_ERROR;
}
