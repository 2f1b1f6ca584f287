#include "ipc/msg.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

int
ipc_pair(int fds_r[2])
{
	return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds_r);
}

int
ipc_send(int fd, uint32_t type, const void *data, size_t len)
{
	struct iovec iov[2];
	struct msghdr mh;
	ssize_t n;

	if (len > IPC_MAX_PAYLOAD) {
		errno = EMSGSIZE;
		return -1;
	}
	iov[0].iov_base = &type;
	iov[0].iov_len = sizeof(type);
	iov[1].iov_base = (void *)data;
	iov[1].iov_len = len;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = iov;
	mh.msg_iovlen = 2;
	do {
		n = sendmsg(fd, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -1 : 0;
}

int
ipc_recv(int fd, uint32_t *type_r, char **data_r, size_t *len_r)
{
	char *buf = xmalloc(IPC_MAX_PAYLOAD + sizeof(uint32_t) + 1);
	ssize_t n;

	do {
		n = recv(fd, buf, IPC_MAX_PAYLOAD + sizeof(uint32_t), 0);
	} while (n < 0 && errno == EINTR);
	if (n <= 0) {
		free(buf);
		return n == 0 ? 0 : -1;
	}
	if ((size_t)n < sizeof(uint32_t)) {
		free(buf);
		errno = EPROTO;
		return -1;
	}
	memcpy(type_r, buf, sizeof(uint32_t));
	*len_r = (size_t)n - sizeof(uint32_t);
	memmove(buf, buf + sizeof(uint32_t), *len_r);
	buf[*len_r] = '\0';
	*data_r = xrealloc(buf, *len_r + 1);
	return 1;
}
