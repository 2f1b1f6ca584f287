/*
 * tegami: one binary. `tegami serve` runs the server; every other word is an
 * operator command. Invoked as `setup` (a symlink), it takes
 * docker-mailserver's `setup` syntax.
 */
#include "cli/cli.h"
#include "daemon/serve.h"
#include "daemon/worker.h"
#include "lib/log.h"

#include <libgen.h>
#include <stdio.h>
#include <string.h>

int
main(int argc, char **argv)
{
	char *name = basename(argv[0]);

	if (strncmp(name, "setup", 5) == 0) {
		log_set_role("cli");
		return cli_main(argc, argv, 1);
	}
	if (argc >= 2 && strcmp(argv[1], "serve") == 0) {
		log_set_role("master");
		return serve_main(argc - 1, argv + 1);
	}
	if (argc >= 2 && strcmp(argv[1], "worker") == 0)
		return worker_main(argc - 1, argv + 1);
	log_set_role("cli");
	return cli_main(argc, argv, 0);
}
