#!/bin/sh
# Install what guests/python/build.sh needs; does nothing when it is there.
#
# * componentize-py 0.25.1 (embeds CPython 3.14), with pip into the current
#   Python environment;
# * cbor2 5.x as pure Python into ./pylib: componentize-py cannot link C
#   extensions, and cbor2 6 dropped its pure-Python fallback.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
CPY_VERSION=0.25.1
CBOR2_SPEC='cbor2<6'

have=$(python3 -m pip show componentize-py 2>/dev/null | sed -n 's/^Version: //p')
if [ "$have" = "$CPY_VERSION" ]; then
    echo "componentize-py $CPY_VERSION: already installed"
else
    python3 -m pip install --quiet "componentize-py==$CPY_VERSION"
fi

# A C-extension build would leave _cbor2*.so beside the package, which the
# component cannot load; its absence marks the pure-Python install.
if ls "$here"/pylib/cbor2-5.*.dist-info >/dev/null 2>&1 && ! ls "$here"/pylib/_cbor2* >/dev/null 2>&1; then
    echo "cbor2 (pure Python) in $here/pylib: already installed"
else
    rm -rf "$here/pylib"
    CBOR2_BUILD_C_EXTENSION=0 python3 -m pip install --quiet --target "$here/pylib" --no-binary cbor2 "$CBOR2_SPEC"
fi
