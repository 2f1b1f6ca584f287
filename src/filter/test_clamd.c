#include "filter/clamd.h"
#include "lib/test.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A pretend clamd: one connection, then it tells what it saw. */
struct fake_clamd {
	int listen_fd;
	const char *mode;	/* "scan", "error", "close", "plain" */
	char received[4096];
	size_t received_len;
	unsigned int chunks;
	bool command_ok;
};

static int
read_exact(int fd, void *p, size_t n)
{
	char *c = p;

	while (n > 0) {
		ssize_t r = read(fd, c, n);

		if (r <= 0)
			return -1;
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

static void *
fake_clamd_run(void *arg)
{
	struct fake_clamd *f = arg;
	int fd = accept(f->listen_fd, NULL, NULL);
	char cmd[10];
	const char *reply;

	if (fd < 0)
		return NULL;
	if (strcmp(f->mode, "close") == 0) {
		close(fd);
		return NULL;
	}
	f->command_ok = read_exact(fd, cmd, 10) == 0 &&
	    memcmp(cmd, "zINSTREAM", 10) == 0;
	for (;;) {
		uint32_t be, n;

		if (read_exact(fd, &be, 4) < 0)
			break;
		n = ntohl(be);
		if (n == 0)
			break;
		if (n > sizeof(f->received) - f->received_len ||
		    read_exact(fd, f->received + f->received_len, n) < 0)
			break;
		f->received_len += n;
		f->chunks++;
	}
	if (strcmp(f->mode, "error") == 0)
		reply = "INSTREAM size limit exceeded. ERROR";
	else if (memmem(f->received, f->received_len, "EICAR", 5) != NULL)
		reply = "stream: Eicar-Test-Signature FOUND";
	else
		reply = "stream: OK";
	if (write(fd, reply, strlen(reply) + (strcmp(f->mode, "plain") == 0 ? 0 : 1)) < 0)
		perror("write");
	close(fd);
	return NULL;
}

static enum clamd_verdict
scan_with(const char *mode, const char *data, size_t chunk, char *virus,
    size_t vsize, struct fake_clamd *f, char **err)
{
	struct sockaddr_un sun;
	struct clamd_settings set = { 0 };
	pthread_t th;
	enum clamd_verdict v;
	char path[200];

	snprintf(path, sizeof(path), "%s/clamd.sock", test_tmpdir());
	memset(f, 0, sizeof(*f));
	f->mode = mode;
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return (enum clamd_verdict)-1;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	unlink(path);
	if (bind(f->listen_fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(f->listen_fd, 1) < 0)
		return (enum clamd_verdict)-1;
	pthread_create(&th, NULL, fake_clamd_run, f);
	set.address = path;
	set.chunk_size = chunk;
	set.timeout_ms = 5000;
	v = clamd_scan(&set, data, strlen(data), virus, vsize, err);
	pthread_join(th, NULL);
	close(f->listen_fd);
	return v;
}

static void
test_clamd(void)
{
	static const char eicar[] =
	    "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
	struct fake_clamd f;
	char virus[64], msg[512], *err = NULL;
	struct clamd_settings set = { 0 };

	test_begin("clamd: INSTREAM in chunks, clean, infected, errors, size limit");
	test_assert(scan_with("scan", "Subject: hi\r\n\r\nhello\r\n", 7, virus,
	    sizeof(virus), &f, &err) == CLAMD_CLEAN);
	test_assert(f.command_ok && f.chunks == 4 && f.received_len == 22);

	snprintf(msg, sizeof(msg), "Subject: x\r\n\r\n%s\r\n", eicar);
	test_assert(scan_with("scan", msg, 0, virus, sizeof(virus), &f, &err) ==
	    CLAMD_INFECTED);
	test_assert_str(virus, "Eicar-Test-Signature");
	test_assert(f.chunks == 1 && f.received_len == strlen(msg));
	test_assert(scan_with("plain", msg, 16, virus, 6, &f, &err) ==
	    CLAMD_INFECTED);
	test_assert_str(virus, "Eicar");

	test_assert(scan_with("error", "abc", 0, virus, sizeof(virus), &f, &err) ==
	    CLAMD_ERROR);
	test_assert(err != NULL && strstr(err, "ERROR") != NULL);
	free(err);
	err = NULL;
	test_assert(scan_with("close", "abc", 0, virus, sizeof(virus), &f, &err) ==
	    CLAMD_ERROR);
	free(err);
	err = NULL;

	set.address = "/nonexistent/clamd.sock";
	test_assert(clamd_scan(&set, "abc", 3, virus, sizeof(virus), &err) ==
	    CLAMD_ERROR);
	test_assert(strstr(err, "/nonexistent/clamd.sock") != NULL);
	free(err);
	err = NULL;
	set.address = "no-port";
	test_assert(clamd_scan(&set, "abc", 3, virus, sizeof(virus), &err) ==
	    CLAMD_ERROR);
	free(err);
	err = NULL;
	set.max_size = 2;
	test_assert(clamd_scan(&set, "abc", 3, virus, sizeof(virus), &err) ==
	    CLAMD_SKIPPED);
	test_end();
}
TEST(test_clamd)
