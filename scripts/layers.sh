#!/bin/sh
# The rooms of src/ and which way their includes may point: a file may
# include the public headers (include/), its own folder's headers, and
# those of folders on a lower floor; never one on its own floor (another
# room) or above. Floors, from the ground up (src/*/README.md says why):
#   0 base      utilities that know nothing of sandboxes
#   1 sandbox   the engine: spec, profile, namespaces, cgroups, seccomp, run
#   2 audit     the log, keys, alerts        2 check  static analysis
#   3 service   the transport-free request core
#   4 serve     HTTP and MCP                 4 agent  the agent loop
#   5 cli       main and one cmd-*.c per subcommand
#   gen         build-time generators (may include any library header)
set -eu
floor() {
        case "$1" in
        base) echo 0 ;; sandbox) echo 1 ;; audit | check) echo 2 ;;
        service) echo 3 ;; serve | agent) echo 4 ;; cli) echo 5 ;;
        gen) echo 9 ;; *) echo "" ;;
        esac
}
bad=0
for f in src/*/*.c src/*/*.h; do
        [ -e "$f" ] || continue
        dir=$(basename "$(dirname "$f")")
        me=$(floor "$dir")
        if [ -z "$me" ]; then
                echo "layers: $f: src/$dir is no known room (add it to scripts/layers.sh)" >&2
                bad=1
                continue
        fi
        for inc in $(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f"); do
                [ -e "include/$inc" ] && continue
                [ -e "src/$dir/$inc" ] && continue
                owner=""
                for d in src/*/; do
                        if [ -e "$d$inc" ]; then
                                owner=$(basename "$d")
                                break
                        fi
                done
                if [ -z "$owner" ]; then
                        echo "layers: $f includes \"$inc\", which no room has" >&2
                        bad=1
                        continue
                fi
                them=$(floor "$owner")
                if [ "$them" -ge "$me" ]; then
                        echo "layers: $f (src/$dir, floor $me) includes $owner/$inc (floor $them): includes point down only" >&2
                        bad=1
                fi
        done
done
[ "$bad" = 0 ] && echo "layers: ok"
exit "$bad"
