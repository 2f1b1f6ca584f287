/*
 * Reading secrets and answers from the operator. Passwords are never
 * echoed, never logged, and wiped once hashed.
 */
#include "cli/check.h"
#include "cli/cli_int.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define PASSWORD_MAX 1024

static struct termios saved_tio;
static volatile sig_atomic_t echo_off;

/* Ctrl-C at the prompt must not leave the terminal without echo. */
static void
restore_and_die(int sig)
{
	if (echo_off)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
	signal(sig, SIG_DFL);
	raise(sig);
}

bool
cli_interactive(void)
{
	return isatty(STDIN_FILENO) == 1;
}

/*
 * Reads one line from fd into a fixed buffer, byte by byte (no stdio
 * buffer keeps a copy of the secret). 1 = line, 0 = EOF before any byte,
 * -1 = too long or read error.
 */
static int
read_line_fd(int fd, char *buf, size_t size)
{
	size_t n = 0;

	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			if (n == 0)
				return 0;
			break;
		}
		if (c == '\n')
			break;
		if (n + 1 >= size) {
			/* Swallow the rest of the line, then refuse it. */
			while (read(fd, &c, 1) == 1 && c != '\n')
				;
			str_wipe(buf, size);
			return -1;
		}
		buf[n++] = c;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return 1;
}

static int
ask_noecho(const char *prompt, char *buf, size_t size)
{
	struct termios tio;
	struct sigaction sa, old_int, old_term;
	int r;

	if (tcgetattr(STDIN_FILENO, &saved_tio) < 0)
		return -1;
	tio = saved_tio;
	tio.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	tio.c_lflag |= ICANON;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = restore_and_die;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	fputs(prompt, stderr);
	fflush(stderr);
	echo_off = 1;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &tio) < 0) {
		echo_off = 0;
		r = -1;
	} else {
		r = read_line_fd(STDIN_FILENO, buf, size);
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
		echo_off = 0;
	}
	fputc('\n', stderr);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	return r;
}

char *
cli_password_get(struct cli *cli, char *arg, bool from_stdin)
{
	char buf[PASSWORD_MAX], again[PASSWORD_MAX];
	char *pw;

	if (arg != NULL) {
		if (from_stdin) {
			cli_error(cli, "give the password either as an argument "
			    "or with --password-stdin, not both");
			return NULL;
		}
		if (!check_password(arg)) {
			cli_error(cli, "the password must not be empty nor "
			    "hold line breaks");
			return NULL;
		}
		return xstrdup(arg);
	}
	if (from_stdin) {
		int r = read_line_fd(STDIN_FILENO, buf, sizeof(buf));

		if (r <= 0 || !check_password(buf)) {
			str_wipe(buf, sizeof(buf));
			cli_error(cli, r < 0 ? "the password on standard input "
			    "is longer than %d bytes" : "no password on standard "
			    "input (--password-stdin reads one line)",
			    PASSWORD_MAX - 1);
			return NULL;
		}
		pw = xstrdup(buf);
		str_wipe(buf, sizeof(buf));
		return pw;
	}
	if (!cli_interactive()) {
		cli_error(cli, "no password given: pass it as an argument, "
		    "pipe it with --password-stdin, or run on a terminal");
		return NULL;
	}
	if (ask_noecho("Enter Password: ", buf, sizeof(buf)) <= 0 ||
	    buf[0] == '\0') {
		str_wipe(buf, sizeof(buf));
		cli_error(cli, "Password must not be empty");
		return NULL;
	}
	if (ask_noecho("Confirm Password: ", again, sizeof(again)) <= 0 ||
	    strcmp(buf, again) != 0) {
		str_wipe(buf, sizeof(buf));
		str_wipe(again, sizeof(again));
		cli_error(cli, "Passwords do not match!");
		return NULL;
	}
	pw = xstrdup(buf);
	str_wipe(buf, sizeof(buf));
	str_wipe(again, sizeof(again));
	return pw;
}

void
cli_password_free(char **pw)
{
	if (*pw == NULL)
		return;
	str_wipe(*pw, strlen(*pw));
	free(*pw);
	*pw = NULL;
}

char *
cli_ask(const char *prompt)
{
	char buf[256];

	if (!cli_interactive())
		return NULL;
	fputs(prompt, stderr);
	fflush(stderr);
	if (read_line_fd(STDIN_FILENO, buf, sizeof(buf)) <= 0)
		return NULL;
	return xstrdup(buf);
}
