#!/bin/sh
# Fetch the tree-sitter grammars listed in grammars/grammars.lock from the
# npm registry, verify each tarball's SHA-256, and unpack the generated
# parser sources (parser.c, scanner.c, tree_sitter/parser.h) into DEST.
#   scripts/grammars.sh DEST
# A tarball already in $AIRLOCK_GRAMMAR_CACHE (default: DEST/cache) with the
# right sum is used without a download, so a build can run offline once
# the cache is filled. A wrong sum is an error, never a warning.
set -eu

dest=${1:?usage: scripts/grammars.sh DEST}
here=$(cd "$(dirname "$0")/.." && pwd)
lock="$here/grammars/grammars.lock"
registry=${AIRLOCK_NPM_REGISTRY:-https://registry.npmjs.org}
cache=${AIRLOCK_GRAMMAR_CACHE:-$dest/cache}
mkdir -p "$dest" "$cache"

sum_ok() { # file sha256
        [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

grep -v '^[[:space:]]*#' "$lock" | while read -r name version sum; do
        [ -n "$name" ] || continue
        tgz="$cache/tree-sitter-$name-$version.tgz"
        if ! sum_ok "$tgz" "$sum"; then
                url="$registry/tree-sitter-$name/-/tree-sitter-$name-$version.tgz"
                echo "grammars: fetching $url" >&2
                rm -f "$tgz.part"
                curl -sSfL --retry 3 --max-time 120 -o "$tgz.part" "$url"
                got=$(sha256sum "$tgz.part" | cut -d' ' -f1)
                if [ "$got" != "$sum" ]; then
                        rm -f "$tgz.part"
                        echo "grammars: tree-sitter-$name $version: SHA-256 $got, want $sum; refusing it" >&2
                        exit 1
                fi
                mv "$tgz.part" "$tgz"
        fi
        out="$dest/$name"
        rm -rf "$out.tmp"
        mkdir -p "$out.tmp"
        tar -xzf "$tgz" -C "$out.tmp" package/src/parser.c \
                package/src/tree_sitter
        # scanner.c is optional in a grammar
        tar -xzf "$tgz" -C "$out.tmp" package/src/scanner.c 2>/dev/null || true
        abi=$(sed -n 's/^#define LANGUAGE_VERSION \([0-9]*\).*/\1/p' "$out.tmp/package/src/parser.c")
        if [ "$abi" != 13 ] && [ "$abi" != 14 ]; then
                echo "grammars: tree-sitter-$name $version has language ABI $abi; Debian's tree-sitter 0.20 loads 13..14" >&2
                exit 1
        fi
        rm -rf "$out"
        mv "$out.tmp/package/src" "$out"
        rm -rf "$out.tmp"
done
