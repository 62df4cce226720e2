#!/usr/bin/env bash
# Launch the real studio under a virtual X server, generate, scrub, branch, paint a mask, and save
# screenshots to docs/screenshots/. Needs: apt-get install -y xvfb imagemagick (and the xcb libraries
# Qt wants: libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
DISPLAY_NUM="${DISPLAY_NUM:-99}"
Xvfb ":$DISPLAY_NUM" -screen 0 1680x1050x24 -nolisten tcp >/dev/null 2>&1 &
XVFB_PID=$!
trap 'kill "$XVFB_PID" 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -e "/tmp/.X11-unix/X$DISPLAY_NUM" ] && break; sleep 0.1; done
DISPLAY=":$DISPLAY_NUM" QT_QPA_PLATFORM=xcb OMP_WAIT_POLICY=PASSIVE "$PYTHON" scripts/screenshots.py "$@"
