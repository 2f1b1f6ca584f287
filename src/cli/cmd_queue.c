/*
 * tegami queue list|flush|delete|hold|release: the outbound queue.
 *
 * `list` reads the spool directly (it only reads, and an envelope is
 * replaced by rename, so a read sees the old or the new one). Everything
 * that changes an entry goes through the queue worker's control socket
 * (daemon/queued.c), the only writer of envelopes.
 */
#include "cli/cli_int.h"
#include "lib/file.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "queue/spool.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#define QUEUE_TIMEOUT_MS 10000

static void
print_time(time_t t, char *out, size_t outsize)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, outsize, "%Y-%m-%d %H:%M:%S", &tm);
}

int
cmd_queue_list(struct cli *cli, int argc, char **argv)
{
	struct spool *spool;
	char **ids = NULL, *err = NULL;
	size_t n = 0, shown = 0;
	unsigned long long bytes = 0;

	if (argc > 1)
		return cli_error(cli, "usage: %s queue list", cli->prog);
	spool = spool_open_existing(cli->set->state_dir, &err);
	if (spool == NULL && err == NULL) {
		printf("Mail queue is empty\n");
		return CLI_OK;
	}
	if (spool == NULL) {
		cli_error(cli, "%s", err);
		free(err);
		return CLI_FAIL;
	}
	if (spool_list(spool, &ids, &n, &err) < 0) {
		cli_error(cli, "%s", err);
		free(err);
		spool_close(&spool);
		return CLI_FAIL;
	}
	for (size_t i = 0; i < n; i++) {
		struct spool_envelope env;
		char when[32];
		int r = spool_read_envelope(spool, ids[i], &env, &err);

		if (r == 0)
			continue;	/* sent and removed meanwhile */
		if (r < 0) {
			printf("%s  (unreadable: %s)\n\n", ids[i], err);
			x_free(&err);
			continue;
		}
		if (shown == 0)
			/* postqueue -p's column heads, our widths */
			printf("%-*s  --Size-- ----Arrival Time------- "
			    "-Sender/Recipient-------\n", SPOOL_ID_LEN,
			    "-Queue ID-");
		print_time(env.created, when, sizeof(when));
		bytes += env.size;
		printf("%s%s %10llu %s UTC  <%s>\n", env.id,
		    env.hold ? "!" : " ", (unsigned long long)env.size, when,
		    env.from);
		for (size_t k = 0; k < env.rcpt_count; k++) {
			const struct spool_rcpt *rc = &env.rcpts[k];
			char next[32] = "";

			if (rc->state == SPOOL_RCPT_PENDING &&
			    rc->next_attempt > 0)
				print_time(rc->next_attempt, next,
				    sizeof(next));
			printf("    <%s> %s attempts=%u%s%s%s\n", rc->address,
			    spool_rcpt_state_name(rc->state), rc->attempts,
			    next[0] != '\0' ? " next=" : "", next,
			    next[0] != '\0' ? "Z" : "");
			if (rc->last_reply != NULL)
				printf("        (%s)\n", rc->last_reply);
		}
		printf("\n");
		shown++;
		spool_envelope_free(&env);
	}
	if (shown == 0)
		printf("Mail queue is empty\n");
	else
		printf("-- %llu Kbytes in %zu Request%s. (! = held)\n",
		    (bytes + 1023) / 1024, shown, shown == 1 ? "" : "s");
	str_array_free(ids);
	spool_close(&spool);
	return CLI_OK;
}

/* Sends one request line to the queue worker and prints its answer. */
static int
queue_request(struct cli *cli, const char *line)
{
	const char *p = config_str(cli->set->cfg, "TEGAMI_QUEUE_SOCKET");
	char *path = p != NULL && p[0] != '\0' ? xstrdup(p) :
	    xasprintf("%s/queue.sock", cli->set->tegami_state);
	struct sockaddr_un sun;
	char buf[1024];
	size_t got = 0;
	int fd, r = CLI_FAIL;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (str_copy(sun.sun_path, sizeof(sun.sun_path), path) < 0) {
		cli_error(cli, "queue socket path too long: %s", path);
		free(path);
		return CLI_FAIL;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		cli_error(cli, "the queue worker is not running (no answer on "
		    "%s: %s); start the server with `tegami serve`", path,
		    strerror(errno));
		goto out;
	}
	if (write_full(fd, line, strlen(line)) < 0 ||
	    write_full(fd, "\n", 1) < 0) {
		cli_error(cli, "%s: %s", path, strerror(errno));
		goto out;
	}
	while (got < sizeof(buf) - 1) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;

		if (poll(&pfd, 1, QUEUE_TIMEOUT_MS) <= 0) {
			cli_error(cli, "the queue worker did not answer");
			goto out;
		}
		n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(buf, '\n', got) != NULL)
			break;
	}
	buf[got] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (strncmp(buf, "OK", 2) == 0) {
		if (buf[2] != '\0')
			printf("%s\n", buf + 3);
		r = CLI_OK;
	} else {
		cli_error(cli, "%s", strncmp(buf, "ERR ", 4) == 0 ? buf + 4 :
		    buf[0] != '\0' ? buf : "no answer");
	}
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return r;
}

int
cmd_queue_flush(struct cli *cli, int argc, char **argv)
{
	if (argc > 1)
		return cli_error(cli, "usage: %s queue flush", cli->prog);
	return queue_request(cli, "flush");
}

/* delete/hold/release <ID>... */
int
cmd_queue_entry(struct cli *cli, int argc, char **argv)
{
	int r = CLI_OK;

	if (argc < 2)
		return cli_error(cli, "no queue id given; usage: %s queue %s "
		    "<ID>...", cli->prog, argv[0]);
	for (int i = 1; i < argc; i++) {
		char line[64];

		if (!spool_id_valid(argv[i])) {
			r = cli_error(cli, "'%s' is not a queue id (24 hex "
			    "digits, as `%s queue list` shows)", argv[i],
			    cli->prog);
			continue;
		}
		snprintf(line, sizeof(line), "%s %s", argv[0], argv[i]);
		if (queue_request(cli, line) != CLI_OK)
			r = CLI_FAIL;
	}
	return r;
}
