# Shared set-up for scripts/run and scripts/test (sourced, not executed).
# Creates .venv, installs the package (and extras), installs ffmpeg when missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"

say() { printf '\033[1m[stinercut]\033[0m %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "need root (or sudo) for: $*"; fi
}

apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* by hand"
    say "installing $* with apt-get"
    if [ ! -f /tmp/.stinercut-apt-updated ]; then
        as_root apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
        touch /tmp/.stinercut-apt-updated
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q "$@" >/dev/null
}

find_python() {
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"; return
        fi
    done
    die "Python 3.11 or newer is required"
}

ensure_ffmpeg() {
    if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
        apt_install ffmpeg
    fi
}

# The test suite converts a real system font (DejaVuSans, ~700 KB) besides the
# fonts it builds itself; the font benchmark uses it too.
DEJAVU_SANS=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
ensure_test_font() {
    [ -f "$DEJAVU_SANS" ] || apt_install fonts-dejavu-core
}

# ensure_venv [test]: the venv with exactly the pinned versions of requirements/*.lock
# (runtime.lock, or test.lock for the suite), then this package itself without
# dependencies. Reinstalls only when the lock file or pyproject.toml changed.
ensure_venv() {
    local set="${1:-runtime}" lock stamp
    lock="$ROOT/requirements/$set.lock"
    [ -f "$lock" ] || die "$lock is missing: run scripts/lock"
    if [ ! -x "$VENV/bin/python" ]; then
        local py; py="$(find_python)"
        say "creating .venv with $($py --version)"
        "$py" -m venv "$VENV" || { apt_install python3-venv; "$py" -m venv "$VENV"; }
    fi
    stamp="$VENV/.installed-$(cat "$lock" pyproject.toml | sha256sum | cut -c1-16)-$set"
    if [ ! -f "$stamp" ]; then
        say "installing Python packages from requirements/$set.lock"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes \
            -r "$lock" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e "$ROOT" 2>&1 \
            | grep -v "is ignored: it is neither a file nor a directory" || true
        "$VENV/bin/python" -c 'import stinercut_svc' || die "package install failed"
        rm -f "$VENV"/.installed-*
        touch "$stamp"
    fi
}

# The browser test (tests/test_docs_browser.py) drives Debian's Chromium with
# Playwright (executable_path, no browser download). Where it cannot be
# installed the test reports itself skipped, except in CI (CI=true), where it fails.
CHROMIUM=/usr/bin/chromium
ensure_chromium() {
    [ -x "$CHROMIUM" ] && return 0
    if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null 2>&1; }; then
        ( apt_install chromium ) || say "WARNING: could not install chromium with apt-get"
    fi
    [ -x "$CHROMIUM" ] && return 0
    [ "${CI:-}" = "true" ] && die "chromium is required in CI ($CHROMIUM): apt-get install chromium"
    say "WARNING: $CHROMIUM is not available; the browser test will report itself skipped"
}
