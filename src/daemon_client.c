/* SPDX-License-Identifier: MIT */
/*
 * daemon_client.c — talking to usbtimesyncd: connecting, trust, requests,
 * read-only page mappings.
 */
#include "daemon_client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "page.h"

#define MAX_MAPPINGS 64

static int conn_fd = -1;
static uint32_t conn_epoch;

static struct mapping {
    dev_t dev;
    ino_t ino;
    const struct usbts_page *page;
} mappings[MAX_MAPPINGS];
static int nmappings;

bool usbts_daemon_disabled(void)
{
    const char *v = getenv(USBTS_ENV_NO_DAEMON);
    return v && *v && strcmp(v, "0") != 0;
}

const char *usbts_daemon_run_dir(void)
{
    const char *v = getenv(USBTS_ENV_RUN_DIR);
    return v && *v ? v : USBTS_DEFAULT_RUN_DIR;
}

bool usbts_daemon_trusted(const char *what, const char *path, uid_t owner, mode_t mode, char *msg, size_t msglen)
{
    uid_t me = geteuid();
    if (owner != 0 && (me == 0 || owner != me)) {
        snprintf(msg, msglen,
                 "%s %s is owned by uid %u: %s trusts only root's%s (see usbtimesyncd(8), TRUST); "
                 "set %s=1 to track without the daemon",
                 what, path, (unsigned)owner, me == 0 ? "a root client" : "a client", me == 0 ? "" : " or its own",
                 USBTS_ENV_NO_DAEMON);
        return false;
    }
    if (!S_ISSOCK(mode) && (mode & 022)) {
        snprintf(msg, msglen, "%s %s is writable by group or others (mode %03o): not to be trusted", what, path,
                 (unsigned)(mode & 0777));
        return false;
    }
    return true;
}

static void drop_connection(void)
{
    if (conn_fd >= 0)
        close(conn_fd);
    conn_fd = -1;
}

bool usbts_daemon_dead(void)
{
    if (conn_fd < 0)
        return true;
    /* Replies come only to requests: anything to read now is the end. */
    struct pollfd p = {.fd = conn_fd, .events = POLLIN};
    return poll(&p, 1, 0) != 0;
}

DWORD usbts_daemon_connect(uint32_t *epoch, char *msg, size_t msglen)
{
    if (conn_fd >= 0 && !usbts_daemon_dead()) {
        *epoch = conn_epoch;
        return ERROR_SUCCESS;
    }
    drop_connection();
    const char *dir = usbts_daemon_run_dir();
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(msg, msglen, "no daemon: %s does not exist", dir);
        return ERROR_FILE_NOT_FOUND;
    }
    if (!usbts_daemon_trusted("the run directory", dir, st.st_uid, st.st_mode, msg, msglen))
        return ERROR_ACCESS_DENIED;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int n = snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", dir, USBTS_SOCKET_NAME);
    if (n < 0 || (size_t)n >= sizeof sa.sun_path) {
        snprintf(msg, msglen, "the run directory %s is too long a path for a socket", dir);
        return ERROR_INVALID_PARAMETER;
    }
    if (lstat(sa.sun_path, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        snprintf(msg, msglen, "no daemon: %s is not a socket", sa.sun_path);
        return ERROR_FILE_NOT_FOUND;
    }
    if (!usbts_daemon_trusted("the daemon's socket", sa.sun_path, st.st_uid, st.st_mode, msg, msglen))
        return ERROR_ACCESS_DENIED;
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(msg, msglen, "cannot create a socket: %s", strerror(errno));
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        snprintf(msg, msglen, "no daemon answers at %s (%s)", sa.sun_path, strerror(errno));
        close(fd);
        return ERROR_FILE_NOT_FOUND;
    }
    conn_fd = fd;
    if (++conn_epoch == 0)
        conn_epoch = 1;
    *epoch = conn_epoch;
    return ERROR_SUCCESS;
}

DWORD usbts_daemon_request(const char *req, int fd, char *reply, size_t replylen, char *msg, size_t msglen)
{
    if (conn_fd < 0) {
        snprintf(msg, msglen, "not connected to the daemon usbtimesyncd");
        return ERROR_GEN_FAILURE;
    }
    struct iovec iov = {.iov_base = (void *)req, .iov_len = strlen(req)};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(&u, 0, sizeof u);
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof u.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    ssize_t n;
    do
        n = sendmsg(conn_fd, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    char buf[1024];
    if (n >= 0) {
        do
            n = recv(conn_fd, buf, sizeof buf - 1, 0);
        while (n < 0 && errno == EINTR);
    }
    if (n <= 0) {
        drop_connection();
        snprintf(msg, msglen, "the daemon usbtimesyncd closed the connection (stopped or restarted?)");
        return ERROR_GEN_FAILURE;
    }
    buf[n] = '\0';
    if (strncmp(buf, "OK", 2) == 0 && (buf[2] == '\0' || buf[2] == ' ')) {
        snprintf(reply, replylen, "%s", buf[2] ? buf + 3 : "");
        return ERROR_SUCCESS;
    }
    unsigned code = 0;
    int off = 0;
    if (sscanf(buf, "ERR %u %n", &code, &off) == 1 && code != 0 && off > 0) {
        snprintf(msg, msglen, "%s", buf + off);
        return code;
    }
    snprintf(msg, msglen, "the daemon usbtimesyncd sent a reply this library does not understand");
    return ERROR_GEN_FAILURE;
}

DWORD usbts_daemon_map_page(const char *name, const struct usbts_page **out, char *msg, size_t msglen)
{
    if (!*name || strchr(name, '/') || name[0] == '.') {
        snprintf(msg, msglen, "the daemon named an impossible page file");
        return ERROR_GEN_FAILURE;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/%s", usbts_daemon_run_dir(), name);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf(msg, msglen, "cannot open the model page %s: %s", path, strerror(errno));
        return ERROR_GEN_FAILURE;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(msg, msglen, "the model page %s is not a regular file", path);
        return ERROR_GEN_FAILURE;
    }
    if (!usbts_daemon_trusted("the model page", path, st.st_uid, st.st_mode, msg, msglen)) {
        close(fd);
        return ERROR_ACCESS_DENIED;
    }
    for (int i = 0; i < nmappings; i++) {
        if (mappings[i].dev == st.st_dev && mappings[i].ino == st.st_ino) {
            close(fd);
            *out = mappings[i].page;
            return ERROR_SUCCESS;
        }
    }
    /* The size before mapping: a page is never shrunk, so a mapping of this
     * size never faults. */
    if (st.st_size != USBTS_PAGE_FILE_SIZE) {
        close(fd);
        snprintf(msg, msglen, "the model page %s is %lld bytes, not %u: truncated or not a page", path,
                 (long long)st.st_size, USBTS_PAGE_FILE_SIZE);
        return ERROR_GEN_FAILURE;
    }
    if (nmappings == MAX_MAPPINGS) {
        close(fd);
        snprintf(msg, msglen, "this process has mapped %d model pages already (a page per controller instance)",
                 MAX_MAPPINGS);
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    void *p = mmap(NULL, USBTS_PAGE_FILE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        snprintf(msg, msglen, "cannot map the model page %s: %s", path, strerror(errno));
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    char why[300];
    if (!usbts_page_check(p, USBTS_PAGE_FILE_SIZE, why, sizeof why)) {
        munmap(p, USBTS_PAGE_FILE_SIZE); /* never published to a query: safe to unmap */
        snprintf(msg, msglen, "%s: %s", path, why);
        return ERROR_GEN_FAILURE;
    }
    mappings[nmappings++] = (struct mapping){st.st_dev, st.st_ino, p};
    *out = p;
    return ERROR_SUCCESS;
}

void usbts_daemon_fork_child(void)
{
    /* Closing our copy leaves the parent's connection as it is. */
    drop_connection();
}
