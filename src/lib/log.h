/*
 * log: one line per event on stderr.
 *
 *   2026-11-27T18:50:01.123Z tegami smtp[1234]: info sid=0123abcd event=connect ip=192.0.2.1
 *
 * The prefix is fixed (time, program, role, pid, level); the rest is
 * key=value pairs chosen by the caller. Client-supplied text must go through
 * log_escape() before it is logged. Levels follow Postfix msg(3):
 * panic = our bug (abort, core), fatal = environment or configuration
 * (exit 1, one line naming the file, the key and the fix), error/warn =
 * recoverable, info, debug, trace.
 */
#ifndef TEGAMI_LOG_H
#define TEGAMI_LOG_H

#include <stddef.h>
#include <stdarg.h>

enum log_level {
	LOG_TRACE = 0,
	LOG_DEBUG,
	LOG_INFO,
	LOG_WARN,
	LOG_ERROR,
};

/* Role shown in the prefix ("master", "smtp", "imap", "queue", "cli"). */
void log_set_role(const char *role);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses trace|debug|info|warn|error; returns -1 if unknown. */
int log_level_parse(const char *s, enum log_level *level_r);
/* Redirect output (tests); NULL restores stderr. Not thread-safe to change. */
void log_set_fd(int fd);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

#define log_trace(...) do { if (log_get_level() <= LOG_TRACE) log_msg(LOG_TRACE, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_get_level() <= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Configuration or environment error: logs and exits 1. */
void fatal(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
/* Internal invariant broken (our bug): logs and aborts (core dump). */
void panic(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

/*
 * Copy at most max bytes of untrusted text into out (size outsize) so it can
 * be logged on one line: printable ASCII is kept, everything else becomes
 * \xHH, and a cut is marked with "...". Returns out.
 */
char *log_escape(char *out, size_t outsize, const void *in, size_t inlen);

#endif
