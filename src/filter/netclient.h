/*
 * filter/netclient: the blocking client socket the outside scanners
 * (clamd, rspamd) talk over: a Unix socket path ("/run/x.sock",
 * "unix:/run/x.sock") or "host:port" / "[v6]:port", with a timeout on
 * connect and every later send and receive. For pool threads.
 */
#ifndef TEGAMI_FILTER_NETCLIENT_H
#define TEGAMI_FILTER_NETCLIENT_H

#include <stddef.h>

/* A connected socket, or -1 with a malloc'd *error_r naming `what`. */
int netclient_connect(const char *address, unsigned int timeout_ms,
    const char *what, char **error_r);
/* Sends all of p (no SIGPIPE); -1 with errno on failure or timeout. */
int netclient_send_all(int fd, const void *p, size_t n);

#endif
