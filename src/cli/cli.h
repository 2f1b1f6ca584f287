/* cli: the operator's commands (tegami email|alias|quota|config|dns|...). */
#ifndef TEGAMI_CLI_H
#define TEGAMI_CLI_H

/*
 * Runs one command; argv[0] is the program name. as_setup: invoked as
 * `setup` (docker-mailserver's syntax). Exit codes as docker-mailserver:
 * 0 success, 1 bad arguments or failure, 2 unknown command.
 */
int cli_main(int argc, char **argv, int as_setup);

#endif
