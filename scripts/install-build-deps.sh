#!/bin/sh
# Installs what building sipline's optional C accelerator needs on Debian: gcc, the C
# library's headers and Python's headers (gcc libc6-dev python3-dev). Idempotent: does
# nothing when a compiler and Python.h are present. Never fatal: without them pip skips
# the extension and sipline runs as pure Python.
#   --no-prompt   use sudo only when it needs no password (make serve must not ask)
set -u
PYTHON=${PYTHON:-python3}
include=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null)
if command -v cc >/dev/null 2>&1 && [ -n "$include" ] && [ -f "$include/Python.h" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "sipline: no C compiler or Python headers; installing the pure-Python sipline" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if [ "${1:-}" = "--no-prompt" ]; then SUDO="sudo -n"; else SUDO="sudo"; fi
fi
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
        --no-install-recommends gcc libc6-dev python3-dev >/dev/null; }; then
    echo "sipline: could not install gcc libc6-dev python3-dev; installing the pure-Python sipline" >&2
fi
exit 0
