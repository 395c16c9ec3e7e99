#!/usr/bin/env bash
# The whole test suite. On a fresh Debian machine it first installs what is missing (Debian
# packages, Rust targets), then runs: lints, the host tests, the browser test of the panel, the
# aarch64 release build, the aarch64 test suite under qemu-aarch64, and the armv7 release
# build. Exits non-zero on any failure. The RTMP tests use Debian's ffmpeg as the client; the
# panel test drives Debian's Chromium with playwright-core (from npm, pinned in tests/browser).
set -euo pipefail
cd "$(dirname "$0")/.."

AARCH64=aarch64-unknown-linux-musl
ARMV7=armv7-unknown-linux-gnueabihf
LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT

step() { printf '\n==> %s\n' "$*"; }

# Test builds keep line tables only (enough for a panic's backtrace) and no incremental state:
# with full debug info a run needs ~13 GB of disk, more than a CI machine may have free.
export CARGO_INCREMENTAL=0 CARGO_PROFILE_DEV_DEBUG=line-tables-only

# Below this much free space, a stage's build is removed once the stage has passed.
KEEP_BUILDS_ABOVE_GB=${KEEP_BUILDS_ABOVE_GB:-20}

free_gb() { df -P -BG target . 2>/dev/null | awk 'NR == 2 {sub("G", "", $4); print $4}'; }

# Removes a finished stage's build directory when the disk is short of space.
finished_with() {
  local free
  free=$(free_gb)
  if ((free < KEEP_BUILDS_ABOVE_GB)); then
    echo "disk: ${free} GB free, below ${KEEP_BUILDS_ABOVE_GB} GB: removing $1 ($(du -sh "$1" | cut -f1))"
    rm -rf "$1"
  fi
}

# What must exist (a command or a file) and the Debian package that brings it.
REQUIREMENTS=(
  "aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu"
  "/usr/aarch64-linux-gnu/include/stdint.h libc6-dev-arm64-cross"
  "arm-linux-gnueabihf-gcc gcc-arm-linux-gnueabihf"
  "/usr/arm-linux-gnueabihf/include/stdint.h libc6-dev-armhf-cross"
  "qemu-aarch64 qemu-user"
  "qemu-arm qemu-user"
  "ffmpeg ffmpeg"
  "ffprobe ffmpeg"
  "chromium chromium"
  "node nodejs"
  "npm npm"
  "swtpm swtpm"
  "swtpm_setup swtpm-tools"
  "tpm2_pcrextend tpm2-tools"
  "/usr/lib/$(uname -m)-linux-gnu/libtss2-tcti-swtpm.so.0 libtss2-tcti-swtpm0"
)

install_missing() {
  local packages=() item thing package
  for item in "${REQUIREMENTS[@]}"; do
    read -r thing package <<<"$item"
    if [[ $thing == /* ]]; then [[ -e $thing ]] && continue; else command -v "$thing" >/dev/null && continue; fi
    packages+=("$package")
  done
  if ((${#packages[@]})); then
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    step "installing Debian packages: ${packages[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  fi
  if ! command -v cargo >/dev/null || ! command -v rustup >/dev/null; then
    echo "rustup and cargo are needed: see https://rustup.rs" >&2
    exit 1
  fi
  local installed target
  installed=$(rustup target list --installed)
  for target in "$AARCH64" "$ARMV7"; do
    grep -qx "$target" <<<"$installed" || { step "adding Rust target $target"; rustup target add "$target"; }
  done
  rustup component list --installed | grep -q '^clippy' || rustup component add clippy rustfmt
}

# Runs cargo test, keeping its output to count what passed.
run_tests() {
  local name=$1; shift
  cargo test --locked "$@" 2>&1 | tee "$LOGS/$name.log"
}

passed_in() { grep -ho '[0-9]* passed' "$LOGS/$1.log" | awk '{n += $1} END {print n + 0}'; }

size_of() { stat -c %s "target/$1/release/rampart"; }

install_missing
mkdir -p target
echo "disk: $(free_gb) GB free at the start"

step "lints: rustfmt and clippy"
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
# Issue 11's rule: no std::fs write, sync or remount outside the storage worker (src/storage/).
CLIPPY_CONF_DIR=.clippy/storage-rule cargo clippy --locked --lib --bins -- -D warnings
# ... and no module outside src/storage/ opts out of it.
if grep -rn 'disallowed_methods' src --include='*.rs' | grep -v '^src/storage/'; then
  echo "only src/storage/ may allow clippy::disallowed_methods" >&2
  exit 1
fi

step "host tests"
run_tests host

step "browser tests: the web panel in Debian's Chromium, driven by playwright-core"
cargo build --locked
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
node tests/browser/panel.mjs target/debug/rampart
node tests/browser/whep.mjs target/debug/rampart
node tests/browser/whip.mjs target/debug/rampart
finished_with target/debug

step "aarch64 release build ($AARCH64)"
cargo build --locked --release --target "$AARCH64"

step "aarch64 tests, executed by qemu-aarch64 (the runner in .cargo/config.toml)"
run_tests aarch64 --target "$AARCH64"
finished_with "target/$AARCH64/debug"

step "armv7 release build ($ARMV7)"
cargo build --locked --release --target "$ARMV7"

step "summary"
echo "aarch64 release binary: $(size_of "$AARCH64") bytes (target/$AARCH64/release/rampart)"
echo "armv7 release binary:   $(size_of "$ARMV7") bytes (target/$ARMV7/release/rampart)"
echo "host tests:    $(passed_in host) passed"
echo "aarch64 tests under qemu-aarch64: $(passed_in aarch64) passed"
echo "browser tests: the panel, WHEP and WHIP flows passed (screenshots in tests/browser/artifacts/)"
echo "disk: $(free_gb) GB free at the end, target/ holds $(du -sh target | cut -f1)"
echo "$(( $(passed_in host) + $(passed_in aarch64) )) passed, 0 failed"
