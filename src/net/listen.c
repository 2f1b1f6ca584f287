#include "net/listen.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int
parse_one(const char *item, struct listen_addr *out, char **error_r)
{
	char host[48];
	const char *colon, *portp;
	unsigned long long port;

	memset(out, 0, sizeof(*out));
	if (item[0] == '[') {
		const char *end = strchr(item, ']');

		if (end == NULL || end[1] != ':' ||
		    (size_t)(end - item - 1) >= sizeof(host))
			goto bad;
		memcpy(host, item + 1, (size_t)(end - item - 1));
		host[end - item - 1] = '\0';
		portp = end + 2;
	} else {
		colon = strrchr(item, ':');
		if (colon == NULL || (size_t)(colon - item) >= sizeof(host))
			goto bad;
		memcpy(host, item, (size_t)(colon - item));
		host[colon - item] = '\0';
		portp = colon + 1;
	}
	if (str_to_ullong(portp, &port) < 0 || port == 0 || port > 65535)
		goto bad;
	if (item[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->ss;

		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			goto bad;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		out->len = sizeof(*s6);
		snprintf(out->text, sizeof(out->text), "[%s]:%llu", host, port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&out->ss;

		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			goto bad;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		out->len = sizeof(*s4);
		snprintf(out->text, sizeof(out->text), "%s:%llu", host, port);
	}
	return 0;
bad:
	*error_r = xasprintf("\"%s\" is not an address:port (write 0.0.0.0:25, "
	    "[::]:25, 127.0.0.1:2525 or *:25)", item);
	return -1;
}

int
listen_parse(const char *spec, struct listen_addr **addrs_r, size_t *count_r,
    char **error_r)
{
	size_t n;
	char **items = str_split(spec, ", ", &n);
	struct listen_addr *addrs = xcalloc(n * 2 + 1, sizeof(*addrs));
	size_t count = 0;

	for (size_t i = 0; i < n; i++) {
		if (str_has_prefix(items[i], "*:")) {
			char *a = xasprintf("0.0.0.0:%s", items[i] + 2);
			char *b = xasprintf("[::]:%s", items[i] + 2);
			int r = parse_one(a, &addrs[count], error_r);

			if (r == 0)
				r = parse_one(b, &addrs[count + 1], error_r);
			free(a);
			free(b);
			if (r < 0)
				goto fail;
			count += 2;
			continue;
		}
		if (parse_one(items[i], &addrs[count], error_r) < 0)
			goto fail;
		count++;
	}
	str_array_free(items);
	*addrs_r = addrs;
	*count_r = count;
	return 0;
fail:
	str_array_free(items);
	free(addrs);
	return -1;
}

int
listen_bind(const struct listen_addr *a, int backlog)
{
	int fd, one = 1, saved;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (a->ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0)
		goto fail;
	if (listen(fd, backlog) < 0)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

void
sockaddr_ip_text(const struct sockaddr *sa, char *out, size_t outsize)
{
	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		    out, (socklen_t)outsize);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], out,
			    (socklen_t)outsize);
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, out,
			    (socklen_t)outsize);
	} else {
		str_copy(out, outsize, "unknown");
	}
}

int
sockaddr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) &&
		    s6->sin6_addr.s6_addr[12] == 127;
	}
	return 0;
}
