/*
 * ipc/msg: typed messages between the master and its workers over a
 * SOCK_SEQPACKET socketpair: one send is one message, so there is no
 * framing to get wrong. A message is a 4-byte type and a payload of at
 * most IPC_MAX_PAYLOAD bytes.
 */
#ifndef TEGAMI_IPC_MSG_H
#define TEGAMI_IPC_MSG_H

#include <stddef.h>
#include <stdint.h>

#define IPC_MAX_PAYLOAD (192 * 1024)

enum ipc_type {
	IPC_TLS = 1,		/* master -> worker: certificate set (ipc_tls_*) */
	IPC_STATUS,		/* worker -> master: one status line (text) */
	IPC_STOP,		/* master -> worker: stop gracefully */
	IPC_MAILBOX_CHANGE,	/* imap worker -> master -> the other imap
				   workers: a session changed an account's
				   mailbox list (imap_notify_foreign_change) */
};

/* Creates the pair (close-on-exec). -1 with errno set. */
int ipc_pair(int fds_r[2]);
/* Sends one message; blocks only as long as the socket buffer is full. */
int ipc_send(int fd, uint32_t type, const void *data, size_t len);
/*
 * Receives one message into a malloc'd payload (NUL-terminated for
 * convenience). 1 = got one, 0 = peer closed, -1 = error (errno; EAGAIN
 * on a non-blocking socket with nothing to read).
 */
int ipc_recv(int fd, uint32_t *type_r, char **data_r, size_t *len_r);

#endif
