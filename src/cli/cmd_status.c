/* tegami status: asks the running server over its control socket. */
#include "cli/cli_int.h"
#include "lib/str.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#define STATUS_TIMEOUT_MS 5000

int
cmd_status(struct cli *cli, int argc, char **argv)
{
	const char *path = cli->set->control_path;
	struct sockaddr_un sun;
	char buf[4096];
	int fd;

	if (argc > 1) {
		fprintf(stderr, "%s: usage: %s status\n", cli->prog, cli->prog);
		return CLI_FAIL;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (str_copy(sun.sun_path, sizeof(sun.sun_path), path) < 0) {
		fprintf(stderr, "%s: error: control socket path too long: %s\n",
		    cli->prog, path);
		return CLI_FAIL;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "%s: the server is not running (no answer on %s: "
		    "%s); start it with `tegami serve`\n", cli->prog, path,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return CLI_FAIL;
	}
	if (write(fd, "status\n", 7) != 7) {
		fprintf(stderr, "%s: error: %s: %s\n", cli->prog, path,
		    strerror(errno));
		close(fd);
		return CLI_FAIL;
	}
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;

		if (poll(&pfd, 1, STATUS_TIMEOUT_MS) <= 0) {
			fprintf(stderr, "%s: error: the server did not answer\n",
			    cli->prog);
			close(fd);
			return CLI_FAIL;
		}
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		fwrite(buf, 1, (size_t)n, stdout);
	}
	close(fd);
	return CLI_OK;
}
