#!/bin/sh
# make serve: a key, then airlock serve on 127.0.0.1:8080 (AIRLOCK_LISTEN
# to change) with its state (SQLite audit log and keys) in
# $AIRLOCK_STATE, default ./.airlock-serve. Prints how to call it, then
# serves in the foreground until Ctrl-C.
set -eu
bin=${1:-build/airlock}
state=${AIRLOCK_STATE:-$(pwd)/.airlock-serve}
listen=${AIRLOCK_LISTEN:-127.0.0.1:8080}
mkdir -p "$state"
chmod 700 "$state"
keyfile="$state/demo.key"
# one key per state directory, kept (0600) so that a restart reuses it
if [ ! -s "$keyfile" ] || ! "$bin" keys list --state "$state" --json |
        grep -q "\"id\":\"$(cut -c5-16 "$keyfile")\""; then
        "$bin" keys revoke demo --state "$state" >/dev/null 2>&1 || true
        (umask 077 && "$bin" keys create --name demo \
                --scopes execute,audit:read --state "$state" 2>/dev/null |
                tail -n 1 >"$keyfile")
fi
key=$(cat "$keyfile")
port=${listen##*:}
cat <<MSG
airlock serve: http://$listen  (state: $state)
API key (also in $keyfile):
  $key

Try it:
  curl -s localhost:$port/v1/execute -H "Authorization: Bearer $key" \\
       -d '{"language":"python","code":"print(2+2)"}'
  curl -s localhost:$port/execute -H "X-API-Key: $key" \\
       -d '{"language":"python","code":"print(6*7)","timeout":5}'
  curl -s localhost:$port/v1/languages
More keys: $bin keys create --name NAME --state $state
Stop with Ctrl-C (in-flight runs finish first).

MSG
exec "$bin" serve --listen "$listen" --state "$state"
