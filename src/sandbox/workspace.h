/* SPDX-License-Identifier: MIT */
#pragma once
/*
 * The files API of a session's workspace, for the supervisor: put, get,
 * delete and list paths below a workspace directory that the code in the
 * sandbox also writes, and so may have filled with traps (symbolic links
 * to host files or to another session's workspace, fifos, mount points).
 *
 * Lifecycle: the caller holds ws_fd, an O_DIRECTORY fd of the workspace
 * (the tmpfs the sandbox sees as /workspace) for the session's life and
 * passes it to every call; nothing here keeps state between calls.
 *
 * Every path is checked by al_ws_path_check, then resolved relative to
 * ws_fd with openat2(2) and RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV: no component may be a symbolic
 * link (the last one included) or cross a mount. A kernel without openat2
 * (ENOSYS, before Linux 5.6, or EPERM from a seccomp filter that refuses
 * what it does not know, told apart by an O_PATH open of ".") gets the same
 * rules from a walk of one component at a time (O_NOFOLLOW opens, a
 * symbolic link refused, a change of st_dev refused as a mount crossing);
 * never a plain path open.
 *
 * Hard links: link(2) does not cross mounts, and the sandbox's workspace
 * is a tmpfs of its own, so the code cannot link a host file into it. On
 * a workspace that shares a filesystem with other files (a plain
 * directory, as in the unit tests) a hard link made from outside would be
 * read by al_ws_get like any file; al_ws_put never writes through one (it
 * replaces the name with rename(2)).
 *
 * Errors: every function returns 0 (al_ws_list: the number of entries
 * left out, >= 0) or one of these -errno values, with words in *err;
 * al_ws_error_code turns them into the stable code and HTTP status the
 * HTTP layer answers:
 *   -EINVAL        400 bad_path            path refused by the checker
 *   -ELOOP         400 bad_path            a component is a symbolic link
 *                                          (the message names it)
 *   -EXDEV         400 bad_path            a component is a mount point
 *   -EACCES/-EPERM 403 permission_denied   the code took away the
 *                                          modes the supervisor needs
 *   -ENOENT        404 file_not_found
 *   -EISDIR        409 is_a_directory      get/put of a directory
 *   -ENOTDIR       409 not_a_directory     a parent is not a directory;
 *                                          list of a file
 *   -ENODEV        409 not_a_regular_file  get of a fifo, socket, device
 *   -ENOTEMPTY     409 directory_not_empty delete of a non-empty dir
 *   -EFBIG         413 file_too_large      over max_bytes
 *   -ENOSPC        507 workspace_full      the tmpfs (or its inodes) is
 *                                          full; no partial file is left
 *   anything else  500 internal_error
 * 409 rather than 400 for what is in the way: the request is well-formed,
 * the workspace's present state conflicts with it.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* A whole path: PATH_MAX, what the kernel takes in one call. */
#define AL_WS_PATH_MAX 4096
/* One component: NAME_MAX, what tmpfs and every Linux fs take. */
#define AL_WS_NAME_MAX 255
/* Entries in one listing: a tmpfs holds up to 256 inodes per MiB (the
 * sandbox's nr_inodes), so a 1 GiB workspace could hold 262144 files,
 * ~25 MiB of JSON; a listing stops at this many and says how many it
 * left out. */
#define AL_WS_LIST_MAX 10000

/* A path the files API accepts, given with its length so that a NUL
 * decoded from a URL (%00) is caught rather than cutting the path short:
 * relative (no leading '/'), 1 to AL_WS_PATH_MAX bytes, components of 1 to
 * AL_WS_NAME_MAX bytes, none "." or ".." or empty (no "//", no trailing
 * '/'), valid UTF-8, no NUL, no control character (C0 or DEL). With
 * allow_root, "" and "." name the workspace itself (a listing). Returns 0
 * or -EINVAL with the reason in *err. */
int al_ws_path_check(const char *path, size_t len, bool allow_root,
                     al_error *err);

/* Write data[0..len) to path: missing parent directories are created
 * (0755, owned by uid:gid), the file (0644, owned by uid:gid) is written
 * under a temporary name in its directory and renamed over path, so a
 * reader never sees half a file and a full disk leaves nothing behind.
 * A directory or symbolic link at path is refused (-EISDIR, -ELOOP); any
 * other file there is replaced. len over max_bytes: -EFBIG, nothing
 * written. uid or gid (uid_t)-1 keeps the owner the caller writes with. */
int al_ws_put(int ws_fd, const char *path, const void *data, size_t len,
              uid_t uid, gid_t gid, uint64_t max_bytes, al_error *err);

/* Read the regular file at path: -ENODEV for a fifo, socket or device
 * (never opened: checked through an O_PATH fd first), -EISDIR for a
 * directory, -EFBIG when it holds more than max_bytes (at most max_bytes
 * + 1 bytes are read, so a file that grows while read is caught too).
 * *ret_data (NUL-terminated for convenience, to be freed) and *ret_len
 * are set on success only. */
int al_ws_get(int ws_fd, const char *path, uint64_t max_bytes, char **ret_data,
              size_t *ret_len, al_error *err);

/* Remove the file, symbolic link (the link, never its target) or empty
 * directory at path; -ENOTEMPTY for a directory that holds entries. */
int al_ws_delete(int ws_fd, const char *path, al_error *err);

/* The entries of directory dir ("" or "." for the workspace itself),
 * sorted by name, as a JSON array of
 *   {"name": "a.csv", "type": "file"|"dir"|"symlink"|"other",
 *    "size": bytes (regular files; 0 for the others),
 *    "mtime": "2026-11-23T10:33:01.153Z"}
 * Names that are not valid UTF-8 (the code can make them) and entries
 * past AL_WS_LIST_MAX are left out; the return value counts them. */
int al_ws_list(int ws_fd, const char *dir, json_t **ret, al_error *err);

/* The stable error code and HTTP status for a -errno of the functions
 * above (the table in the comment at the top). */
const char *al_ws_error_code(int r, int *ret_http_status);

/* For tests: act as if the kernel lacked openat2, to exercise the walk. */
extern bool al_ws_test_no_openat2;
