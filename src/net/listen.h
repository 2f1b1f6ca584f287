/*
 * listen: listener addresses ("0.0.0.0:25,[::]:25,127.0.0.1:2525") and
 * the sockets bound to them.
 */
#ifndef TEGAMI_LISTEN_H
#define TEGAMI_LISTEN_H

#include <stddef.h>
#include <sys/socket.h>

struct listen_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[96];		/* as written, normalized: "1.2.3.4:25", "[::1]:25" */
};

/*
 * Parses a comma-separated list of addr:port (IPv6 in brackets; "*:port"
 * means both 0.0.0.0 and [::]). An empty string yields zero addresses.
 * Returns -1 with a malloc'd message in *error_r.
 */
int listen_parse(const char *spec, struct listen_addr **addrs_r, size_t *count_r,
    char **error_r);

/*
 * Binds and listens (non-blocking, close-on-exec, SO_REUSEADDR; IPv6
 * sockets are IPV6_V6ONLY so [::]:25 and 0.0.0.0:25 can both be bound).
 * Returns the fd, or -1 with errno set.
 */
int listen_bind(const struct listen_addr *a, int backlog);

/* "192.0.2.1" / "2001:db8::1" for a peer address. */
void sockaddr_ip_text(const struct sockaddr *sa, char *out, size_t outsize);
/* Is it 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104? */
int sockaddr_is_loopback(const struct sockaddr *sa);

#endif
