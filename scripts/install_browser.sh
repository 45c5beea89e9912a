#!/usr/bin/env bash
# Install Debian's Chromium for the UI end-to-end tests (tests/test_ui_e2e.py) if it is not there yet.
# Idempotent: does nothing when /usr/bin/chromium exists. Playwright drives this browser; it never
# downloads one of its own (`playwright install` is not used).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install_browser.sh: need root (or sudo) to apt-get install chromium" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# wait for another apt/dpkg run (unattended upgrades, a second set-up) instead of failing at once on its lock
APT=(apt-get -o DPkg::Lock::Timeout=600)
$SUDO "${APT[@]}" update -q
$SUDO "${APT[@]}" install -y -q chromium
/usr/bin/chromium --version
