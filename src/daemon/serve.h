/* serve: `tegami serve`, the master process and its workers. */
#ifndef TEGAMI_SERVE_H
#define TEGAMI_SERVE_H

int serve_main(int argc, char **argv);

#endif
