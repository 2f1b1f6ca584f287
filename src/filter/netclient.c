/* Blocking client sockets with timeouts, for the outside scanners. */
#include "filter/netclient.h"

#include "lib/str.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

static void
set_timeouts(int fd, unsigned int ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* A connected socket to address, or -1 with *error_r. */
int
netclient_connect(const char *address, unsigned int timeout_ms,
    const char *what, char **error_r)
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
			*error_r = xasprintf("%s socket path too long: %s", what, path);
			return -1;
		}
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			*error_r = xasprintf("socket: %m");
			return -1;
		}
		set_timeouts(fd, timeout_ms);
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
			*error_r = xasprintf("cannot connect to %s at %s: %m", what, path);
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
			*error_r = xasprintf("bad %s address %s (want a socket "
			    "path or host:port)", what, address);
			return -1;
		}
		hlen = (size_t)(colon - address);
		if (address[0] == '[' && hlen >= 2 && address[hlen - 1] == ']') {
			address++;
			hlen -= 2;
		}
		if (hlen >= sizeof(host)) {
			*error_r = xasprintf("%s host name too long", what);
			return -1;
		}
		memcpy(host, address, hlen);
		host[hlen] = '\0';
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		rc = getaddrinfo(host, colon + 1, &hints, &res);
		if (rc != 0) {
			*error_r = xasprintf("%s address %s: %s", what, host,
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
			*error_r = xasprintf("cannot connect to %s at %s: %m", what, host);
		return fd;
	}
}

int
netclient_send_all(int fd, const void *p, size_t n)
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

