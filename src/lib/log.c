#include "lib/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/time.h>

static const char *log_role = "tegami";
static enum log_level log_level = LOG_INFO;
static int log_fd = STDERR_FILENO;

static const char *const level_names[] = {
	[LOG_TRACE] = "trace", [LOG_DEBUG] = "debug", [LOG_INFO] = "info",
	[LOG_WARN] = "warn", [LOG_ERROR] = "error",
};

void
log_set_role(const char *role)
{
	log_role = role;
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level
log_get_level(void)
{
	return log_level;
}

void
log_set_fd(int fd)
{
	log_fd = fd < 0 ? STDERR_FILENO : fd;
}

int
log_level_parse(const char *s, enum log_level *level_r)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*level_r = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

static void __attribute__((format(printf, 2, 0)))
log_write(const char *level, const char *fmt, va_list ap)
{
	char line[4096];
	struct timeval tv;
	struct tm tm;
	size_t n;
	int r;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ tegami %s[%ld]: %s ",
	    (long)(tv.tv_usec / 1000), log_role, (long)getpid(), level);
	if (r > 0)
		n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (r > 0)
		n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
	/* One event, one line: never let a stray newline split it. */
	for (size_t i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	/* A single write(2) keeps lines from different processes whole. */
	while (write(log_fd, line, n) < 0 && errno == EINTR)
		;
}

void
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	if (level < log_level)
		return;
	log_write(level_names[level], fmt, ap);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_write("fatal", fmt, ap);
	va_end(ap);
	exit(1);
}

void
panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_write("panic", fmt, ap);
	va_end(ap);
	abort();
}

char *
log_escape(char *out, size_t outsize, const void *in, size_t inlen)
{
	const unsigned char *p = in;
	size_t o = 0;

	if (outsize == 0)
		return out;
	for (size_t i = 0; i < inlen; i++) {
		unsigned char c = p[i];
		size_t need = (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : 4;

		if (o + need + 4 > outsize) {
			if (o + 4 <= outsize) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (need == 1)
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, outsize - o, "\\x%02x", c);
	}
	out[o] = '\0';
	return out;
}
