#!/bin/sh
# Builds sipline._speedups with AddressSanitizer and UndefinedBehaviorSanitizer into a copy
# of src/ and runs the C/Python agreement tests and the parser's tests against it (every
# object its own malloc, so a read past a bytes buffer is caught). Needs gcc.
set -eu
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r src "$tmp/src"
rm -f "$tmp"/src/sipline/_speedups*.so
include=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
suffix=$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
gcc -shared -fPIC -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -Wall -Wextra \
    -Wno-unused-parameter -I"$include" src/sipline/_speedups*.c -o "$tmp/src/sipline/_speedups$suffix"
PYTHONMALLOC=malloc ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1 \
    LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
    PYTHONPATH="$tmp/src" "$PY" -m pytest -q -p no:cacheprovider \
    tests/core/test_speedups.py tests/core/test_framing.py tests/core/test_message.py "$@"
