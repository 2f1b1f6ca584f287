#include "cli/cli.h"

#include <stdio.h>

int
cli_main(int argc, char **argv, int as_setup)
{
	fprintf(stderr, "%s: unknown command '%s'; try '%s help'\n", argv[0],
	    argc > 1 ? argv[1] : "", argv[0]);
	return 2;
}
