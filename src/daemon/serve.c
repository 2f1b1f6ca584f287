#include "daemon/serve.h"
#include "daemon/settings.h"
#include "lib/log.h"

#include <stdio.h>
#include <stdlib.h>

extern char **environ;

int
serve_main(int argc, char **argv)
{
	char *err = NULL;
	struct settings *s = settings_load(NULL, environ, &err);

	if (s == NULL)
		fatal("%s", err);
	settings_log_ignored(s);
	settings_free(&s);
	return 0;
}
