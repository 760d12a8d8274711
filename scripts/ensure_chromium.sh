#!/usr/bin/env bash
# Make sure Debian's headless-capable Chromium is at /usr/bin/chromium for the browser tests.
#
#   scripts/ensure_chromium.sh
#
# The browser test (tests/experiments/reports/test_browser.py) drives /usr/bin/chromium
# through Playwright's executable_path: Playwright's own browser download is never used,
# because a machine here reaches only package registries. When Chromium is missing this
# installs Debian's package with apt-get, which needs root; without root it says what to
# run and fails, so that the test's own "missing /usr/bin/chromium" failure is not the
# first thing a developer sees. Safe to run any number of times: it does nothing when
# Chromium is already there.
set -euo pipefail

readonly PROG=${0##*/}
readonly CHROMIUM=/usr/bin/chromium

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }

if [[ -x $CHROMIUM ]]; then
    exit 0
fi
if [[ $(id -u) != 0 ]]; then
    say "error: $CHROMIUM is missing and we are not root: run 'sudo apt-get install -y chromium'"
    exit 1
fi
command -v apt-get >/dev/null 2>&1 || { say "error: $CHROMIUM is missing and there is no apt-get"; exit 1; }

say "installing Debian's chromium with apt-get"
# Refresh the lists only when the package is unknown: an old list may name a version
# that the mirror no longer has, and a fresh machine may have no lists at all.
if ! apt-cache show chromium >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
fi
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2
fi
[[ -x $CHROMIUM ]] || { say "error: apt-get installed chromium but $CHROMIUM is not there"; exit 1; }
say "installed $($CHROMIUM --version 2>/dev/null || echo chromium)"
