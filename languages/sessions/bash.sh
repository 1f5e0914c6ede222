# airlock session driver for bash.
#
# Runs inside the sandbox as `/usr/bin/bash -c <this file>`, cwd /workspace;
# reads cells on fd 3 and answers on fd 4 (protocol:
# languages/sessions/README.md).  Each cell is `eval`ed in this one shell,
# so variables, functions, aliases, cwd and background jobs stay between
# cells; the reply carries the cell's $? as "exit_code" (status "error"
# when it is not 0).  `exit` in a cell, or a failing command under a
# cell's `set -e`, ends the session, as it ends a script.  The driver's
# own names start with __airlock_ and it calls builtins through `builtin`.

# A request header is `X <seq> <nbytes>\n`: two 20-digit numbers fit.
__airlock_header_max=64
__airlock_count=0
__airlock_intr=0

__airlock_die() {
        builtin printf 'airlock session driver: %s\n' "$1" >&2
        builtin exit 2
}

__airlock_send() {
        # the reply is ASCII: its length in bytes is its length in characters
        builtin printf '%d\n%s' "${#1}" "$1" >&4 || __airlock_die "writing a reply failed"
}

# a Ctrl-C for the session between cells is dropped; during a cell it kills
# the foreground command (the same process group) and is reported
trap '__airlock_intr=1' INT

__airlock_send '{"type":"ready","protocol":1,"language":"bash","version":"'"${BASH_VERSION%%[^0-9.]*}"'"}'

while :; do
        # LC_ALL=C: read counts bytes, not characters.  read takes a pipe a
        # byte at a time, so it never reads past the header or the body.
        # A header with no newline within the cap fails the pattern below.
        if ! LC_ALL=C IFS= builtin read -r -n "$__airlock_header_max" __airlock_hdr <&3; then
                # end of input: the supervisor closed the channel
                [[ -z $__airlock_hdr ]] && builtin exit 0
                __airlock_die "protocol: end of input inside a request header"
        fi
        if [[ ! $__airlock_hdr =~ ^X\ ([0-9]{1,20})\ ([0-9]{1,20})$ ]]; then
                __airlock_die "protocol: bad request header"
        fi
        __airlock_seq=${BASH_REMATCH[1]}
        __airlock_n=$((10#${BASH_REMATCH[2]}))
        __airlock_code=
        if ((__airlock_n > 0)); then
                # (a NUL byte in a cell is dropped: a shell variable cannot hold one)
                if ! LC_ALL=C IFS= builtin read -r -N "$__airlock_n" __airlock_code <&3; then
                        __airlock_die "protocol: end of input inside a request body"
                fi
        fi
        __airlock_count=$((__airlock_count + 1))
        __airlock_intr=0
        # fds 3 and 4 are closed for the cell: its commands cannot read the
        # next request nor inherit the reply channel
        builtin eval "$__airlock_code" 3<&- 4<&-
        __airlock_rc=$?
        if ((__airlock_intr)); then
                __airlock_send '{"type":"result","seq":'"$__airlock_seq"',"status":"error","execution_count":'"$__airlock_count"',"results":[],"exit_code":'"$__airlock_rc"',"error":{"name":"KeyboardInterrupt","value":"interrupted","traceback":[]}}'
        elif ((__airlock_rc != 0)); then
                __airlock_send '{"type":"result","seq":'"$__airlock_seq"',"status":"error","execution_count":'"$__airlock_count"',"results":[],"exit_code":'"$__airlock_rc"',"error":{"name":"ExitStatus","value":"exit status '"$__airlock_rc"'","traceback":[]}}'
        else
                __airlock_send '{"type":"result","seq":'"$__airlock_seq"',"status":"ok","execution_count":'"$__airlock_count"',"results":[],"exit_code":0}'
        fi
done
