#!/bin/sh
# Build a Python tractor actor into a component with componentize-py.
#
#   guests/python/build.sh APP_DIR WORLD OUT.wasm
#
# APP_DIR holds `app.py` (a module `app` defining `class WitWorld`; set
# APP_MODULE to use another name) and the app's world in `world.wit` (or a
# `wit/` folder). That world includes `tractor:actor/imports@0.1.0` (or, for
# an asyncio actor with `async func` exports, `@0.2.0`), which is
# resolved from the repository's own wit/ folder, so there is no copy of
# tractor.wit to keep in step. WORLD is fully qualified (`pkg:name/world`)
# because the repository's WIT defines worlds of its own.
#
# Needs componentize-py and ./pylib (pure-Python cbor2): run install.sh once.
set -eu
if [ $# -ne 3 ]; then
    echo "usage: $0 APP_DIR WORLD OUT.wasm" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
repo_wit=$(cd "$here/../../wit" && pwd)
app=$(cd "$1" && pwd)
world=$2
out=$3
if [ -d "$app/wit" ]; then app_wit="$app/wit"; else app_wit="$app/world.wit"; fi
if [ ! -d "$here/pylib/cbor2" ]; then
    echo "$here/pylib has no cbor2: run $here/install.sh first" >&2
    exit 1
fi
mkdir -p "$(dirname "$out")"
# pip may put the console script where PATH does not look (--user, pyenv
# without a rehash); the module itself is enough.
if command -v componentize-py >/dev/null 2>&1; then
    set -- componentize-py
elif python3 -c 'import componentize_py' 2>/dev/null; then
    set -- python3 -c 'import sys; from componentize_py import script; sys.argv[0] = "componentize-py"; sys.exit(script())'
else
    echo "componentize-py is not installed: run $here/install.sh first" >&2
    exit 1
fi
# Search order: the app, then tractor.py, then pylib. Only modules the app
# imports end up in the component.
exec "$@" --quiet -d "$repo_wit" -d "$repo_wit/v0.2" -d "$app_wit" -w "$world" \
    componentize "${APP_MODULE:-app}" -p "$app" -p "$here" -p "$here/pylib" -o "$out"
