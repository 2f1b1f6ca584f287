#include "filter/rspamd.h"
#include "lib/test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void
test_rspamd_parse(void)
{
	static const struct {
		const char *json;
		int ret;
		enum rspamd_action action;
		double score;
	} cases[] = {
		{ "{\"is_skipped\":false,\"score\":12.5,\"required_score\":15,"
		  "\"action\":\"add header\",\"symbols\":{\"BAYES_SPAM\":{\"name\":"
		  "\"BAYES_SPAM\",\"score\":5.1,\"options\":[\"99%\",\"a\\\"b\"]}},"
		  "\"messages\":{},\"urls\":[],\"emails\":[],\"message-id\":\"x@y\"}",
		  0, RSPAMD_ADD_HEADER, 12.5 },
		{ " { \"action\" : \"reject\" , \"score\" : 20 } ", 0, RSPAMD_REJECT, 20 },
		{ "{\"action\":\"no action\",\"score\":-1.5e0}", 0, RSPAMD_NO_ACTION, -1.5 },
		{ "{\"action\":\"greylist\"}", 0, RSPAMD_GREYLIST, 0 },
		{ "{\"action\":\"soft reject\"}", 0, RSPAMD_SOFT_REJECT, 0 },
		{ "{\"action\":\"explode\"}", -1, 0, 0 },
		{ "{\"score\":3}", -1, 0, 0 },
		{ "[\"action\",\"reject\"]", -1, 0, 0 },
		{ "{\"action\":\"reject\"", -1, 0, 0 },
		{ "{\"action\":\"reject\",}", -1, 0, 0 },
		{ "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],\"action\":\"reject\"}",
		  -1, 0, 0 },
		{ "{\"x\":\"\\q\",\"action\":\"reject\"}", -1, 0, 0 },
		{ "", -1, 0, 0 },
	};
	struct rspamd_result r;
	const char *err;
	const char *rw = "{\"action\":\"rewrite subject\",\"subject\":"
	    "\"***SPAM*** caf\\u00e9 \\ud83d\\ude00\\r\\nBcc: x\"}";

	test_begin("rspamd: the JSON reply");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ret = rspamd_parse_reply(cases[i].json, strlen(cases[i].json),
		    &r, &err);

		if (ret != cases[i].ret)
			printf("     case %zu: got %d\n", i, ret);
		test_assert(ret == cases[i].ret);
		if (ret == 0 && cases[i].ret == 0) {
			test_assert(r.action == cases[i].action);
			test_assert(r.score == cases[i].score);
		}
	}
	test_assert(rspamd_parse_reply(rw, strlen(rw), &r, &err) == 0);
	test_assert(r.action == RSPAMD_REWRITE_SUBJECT);
	test_assert_str(r.subject, "***SPAM*** caf\xc3\xa9 \xf0\x9f\x98\x80  Bcc: x");
	test_end();
}
TEST(test_rspamd_parse)

struct fake_rspamd {
	int listen_fd;
	const char *reply;
	char request[8192];
	size_t request_len;
};

static void *
fake_rspamd_run(void *arg)
{
	struct fake_rspamd *f = arg;
	int fd = accept(f->listen_fd, NULL, NULL);
	const char *hdr_end;
	size_t want = 0;

	if (fd < 0)
		return NULL;
	/* read the head, then Content-Length bytes of body */
	for (;;) {
		ssize_t n = read(fd, f->request + f->request_len,
		    sizeof(f->request) - 1 - f->request_len);

		if (n <= 0)
			break;
		f->request_len += (size_t)n;
		f->request[f->request_len] = '\0';
		hdr_end = strstr(f->request, "\r\n\r\n");
		if (hdr_end != NULL) {
			const char *cl = strstr(f->request, "Content-Length: ");

			want = (size_t)(hdr_end + 4 - f->request) +
			    (cl != NULL ? strtoul(cl + 16, NULL, 10) : 0);
			if (f->request_len >= want)
				break;
		}
	}
	if (write(fd, f->reply, strlen(f->reply)) < 0)
		perror("write");
	close(fd);
	return NULL;
}

static int
check_with(const char *reply, struct fake_rspamd *f, struct rspamd_result *r,
    char **err)
{
	static const char *const rcpts[] = { "a@ours.example", "b@ours.example" };
	struct rspamd_request req = { "192.0.2.1", "mx.sender.example",
	    "mx.sender.example", "joe@sender.example", rcpts, 2, NULL, "Q123",
	    "Subject: hi\r\n\r\nbody\r\n", 21 };
	struct rspamd_settings set = { 0 };
	struct sockaddr_un sun;
	char path[200];
	pthread_t th;
	int ret;

	snprintf(path, sizeof(path), "%s/rspamd.sock", test_tmpdir());
	memset(f, 0, sizeof(*f));
	f->reply = reply;
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return -2;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	unlink(path);
	if (bind(f->listen_fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(f->listen_fd, 1) < 0)
		return -2;
	pthread_create(&th, NULL, fake_rspamd_run, f);
	set.address = path;
	set.timeout_ms = 5000;
	ret = rspamd_check(&set, &req, r, err);
	pthread_join(th, NULL);
	close(f->listen_fd);
	return ret;
}

static void
test_rspamd_check(void)
{
	struct fake_rspamd f;
	struct rspamd_result r;
	struct rspamd_settings set = { 0 };
	struct rspamd_request req = { 0 };
	char *err = NULL;

	test_begin("rspamd: /checkv2 over HTTP, envelope in headers");
	test_assert(check_with("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	    "\r\n{\"action\":\"reject\",\"score\":16.2,\"required_score\":15}",
	    &f, &r, &err) == 0);
	test_assert(r.action == RSPAMD_REJECT && r.score > 16 && r.required_score == 15);
	test_assert(strstr(f.request, "POST /checkv2 HTTP/1.0\r\n") == f.request);
	test_assert(strstr(f.request, "\r\nIP: 192.0.2.1\r\n") != NULL);
	test_assert(strstr(f.request, "\r\nFrom: joe@sender.example\r\n") != NULL);
	test_assert(strstr(f.request, "\r\nRcpt: a@ours.example\r\nRcpt: b@ours.example\r\n") != NULL);
	test_assert(strstr(f.request, "\r\nQueue-Id: Q123\r\n") != NULL);
	test_assert(strstr(f.request, "\r\nContent-Length: 21\r\n") != NULL);
	test_assert(f.request_len > 21 &&
	    strcmp(f.request + f.request_len - 21, "Subject: hi\r\n\r\nbody\r\n") == 0);

	test_assert(check_with("HTTP/1.1 500 Internal\r\n\r\n{}", &f, &r, &err) == -1);
	test_assert(strstr(err, "500") != NULL);
	free(err);
	err = NULL;
	test_assert(check_with("garbage", &f, &r, &err) == -1);
	free(err);
	err = NULL;
	test_assert(check_with("HTTP/1.0 200 OK\r\n\r\nnot json", &f, &r, &err) == -1);
	free(err);
	err = NULL;

	set.address = "/nonexistent/rspamd.sock";
	req.message = "x";
	req.message_len = 1;
	test_assert(rspamd_check(&set, &req, &r, &err) == -1);
	free(err);
	err = NULL;
	set.max_size = 1;
	req.message_len = 2;
	test_assert(rspamd_check(&set, &req, &r, &err) == 0 && r.skipped);
	test_end();
}
TEST(test_rspamd_check)
