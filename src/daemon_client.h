/* SPDX-License-Identifier: MIT */
/*
 * daemon_client.h — the library's side of usbtimesyncd: one connection per
 * process, requests and replies, mapping the daemon's model pages read-only.
 *
 * Every call is made under the registry lock, which also serialises the
 * connection.  The protocol (text, one SOCK_SEQPACKET message per request
 * and per reply) is described in daemon/protocol.h.
 */
#ifndef USBTS_DAEMON_CLIENT_H
#define USBTS_DAEMON_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "usbtimesync/winusb.h"

/* Environment: another run directory (default /run/usbtimesync), and a way
 * to keep a process off the daemon (tests set it, so that an installed
 * daemon never changes a result). */
#define USBTS_ENV_RUN_DIR "USBTS_RUN_DIR"
#define USBTS_ENV_NO_DAEMON "USBTS_NO_DAEMON"
#define USBTS_DEFAULT_RUN_DIR "/run/usbtimesync"
#define USBTS_SOCKET_NAME "socket"

struct usbts_page;

/* USBTS_NO_DAEMON set to anything but "" or "0". */
bool usbts_daemon_disabled(void);
const char *usbts_daemon_run_dir(void);

/* A live connection (making one if there is none, the daemon closed the old
 * one, or this is a forked child).  *epoch numbers connections: a device
 * registered on another one must register again.  ERROR_FILE_NOT_FOUND: no
 * daemon runs; ERROR_ACCESS_DENIED: the run directory or socket is not to be
 * trusted (msg says why). */
DWORD usbts_daemon_connect(uint32_t *epoch, char *msg, size_t msglen);

/* The current connection is gone (peer closed, or inherited over fork). */
bool usbts_daemon_dead(void);

/* One request (with a descriptor to pass, or -1) and its reply.  A reply
 * "OK rest" gives ERROR_SUCCESS and rest in reply; "ERR code text" gives
 * code and text in msg.  A lost connection: ERROR_GEN_FAILURE. */
DWORD usbts_daemon_request(const char *req, int fd, char *reply, size_t replylen, char *msg, size_t msglen);

/* Maps the page file `name` of the run directory read-only, once per file:
 * the same file gives the same mapping, which is never unmapped. */
DWORD usbts_daemon_map_page(const char *name, const struct usbts_page **out, char *msg, size_t msglen);

/* Is this directory / file owned by someone this process may trust, and
 * writable by no one else?  Root trusts only root; another user trusts root
 * and itself.  msg says why not. */
bool usbts_daemon_trusted(const char *what, const char *path, uid_t owner, mode_t mode, char *msg, size_t msglen);

/* fork child: forgets the inherited connection without a word to the daemon
 * (it belongs to the parent). */
void usbts_daemon_fork_child(void);

#endif
