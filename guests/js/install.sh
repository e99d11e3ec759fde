#!/bin/sh
# Install what guests/js/build.mjs needs (ComponentizeJS, esbuild, cbor-x at
# the versions in package-lock.json); does nothing when node_modules matches
# the lock file already.
set -eu
cd "$(dirname "$0")"
# npm writes node_modules/.package-lock.json on every install: when it is
# newer than the lock file, the tree is the one the lock file describes.
if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ] \
    && [ -d node_modules/@bytecodealliance/componentize-js ] && [ -d node_modules/esbuild ]; then
    echo "guests/js/node_modules: already installed"
    exit 0
fi
npm ci --no-audit --no-fund
