#!/bin/sh
# Fail on calls the project bans (as curl's checksrc does): unbounded string
# functions and unchecked number parsing.
set -eu
bad=$(grep -nE '\b(sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|atoll|gets)\s*\(' \
        src/*/*.c src/*/*.h include/*.h 2>/dev/null | grep -vE '^\S+:\s*(/\*|\*)' || true)
if [ -n "$bad" ]; then
        echo "checksrc: banned calls found:" >&2
        echo "$bad" >&2
        exit 1
fi
sh "$(dirname "$0")/layers.sh"
echo "checksrc: ok"
