/* SPDX-License-Identifier: MIT */
/*
 * Descriptors passed over the sandbox's unix socket (SCM_RIGHTS), both
 * ways: init hands the supervisor the workspace, its namespaces and the
 * proxy's socket; the supervisor hands init the cgroup's "tasks" files.
 * No allocation: init calls these after clone().
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "sandbox-internal.h"

int sbx_send_fds(int sock, const int *fds, size_t n) {
        char dummy = 'W';
        struct iovec iov = {.iov_base = &dummy, .iov_len = 1};
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * SBX_FDS_MAX)];
        } u;
        if (n == 0 || n > SBX_FDS_MAX)
                return -EINVAL;
        memset(&u, 0, sizeof(u));
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = u.buf,
                            .msg_controllen = CMSG_SPACE(sizeof(int) * n)};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
        return sendmsg(sock, &mh, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

int sbx_recv_fds(int sock, int *fds, size_t max, int flags) {
        char dummy;
        struct iovec iov = {.iov_base = &dummy, .iov_len = 1};
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * SBX_FDS_MAX)];
        } u;
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = u.buf,
                            .msg_controllen = sizeof(u.buf)};
        if (max == 0 || max > SBX_FDS_MAX)
                return -EINVAL;
        if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | flags) != 1)
                return -errno;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                return -EBADMSG;
        size_t got = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int tmp[SBX_FDS_MAX];
        memcpy(tmp, CMSG_DATA(cm),
               sizeof(int) * (got < SBX_FDS_MAX ? got : SBX_FDS_MAX));
        if (got == 0 || got > max || (mh.msg_flags & MSG_CTRUNC)) {
                for (size_t i = 0; i < got && i < SBX_FDS_MAX; i++)
                        close(tmp[i]);
                return -EBADMSG;
        }
        memcpy(fds, tmp, sizeof(int) * got);
        return (int)got;
}
