#!/usr/bin/env bash
# The browser the dashboard's tests (tests/dashboard.rs) drive headless: Debian's `chromium`
# package, installed once with apt-get when /usr/bin/chromium is missing (as root, or through
# sudo). Nothing is downloaded at test time.
# Usage: eval "$(./scripts/setup-chromium.sh)"   prints `export EDGETUNE_CHROMIUM=...`
set -euo pipefail
browser="${EDGETUNE_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$browser" ]; then
  echo "installing Debian's chromium for the dashboard's browser tests" >&2
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  "${as_root[@]}" apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q chromium >&2
  browser=/usr/bin/chromium
fi
echo "export EDGETUNE_CHROMIUM=$browser"
