#!/usr/bin/env bash
# Release artefacts for Lambda: target/lambda/<bin>/bootstrap and bootstrap.zip.
#
#   scripts/package.sh            # x86_64 (the architecture of this machine and of infra/envs/local)
#   scripts/package.sh --arm64    # aarch64 / Graviton; needs the aarch64-unknown-linux-gnu
#                                 # Rust target installed (this script never downloads one)
#
# cargo-lambda and zig (its cross linker) come from PyPI into the project venv .local/venv
# the first time (a marker file makes later runs instant). The build uses the workspace's
# release profile (thin LTO, stripped). Prints each artefact's size at the end.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LOCAL="$ROOT/.local"
VENV="$LOCAL/venv"
CARGO_LAMBDA_SPEC="cargo-lambda==1.9.2"
ZIG_SPEC="ziglang==0.15.1"
MARKER="$VENV/.installed-cargo-lambda-1.9.2-zig-0.15.1"
BINS=(place-order query process-order aggregate relay live notify aggregate-activity)

say() { echo "package: $*" >&2; }
die() { say "error: $*"; exit 1; }

arch_flag=()
target="x86_64-unknown-linux-gnu"
for arg in "$@"; do
  case "$arg" in
    --arm64) arch_flag=(--arm64); target="aarch64-unknown-linux-gnu" ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) die "usage: $0 [--arm64]" ;;
  esac
done

command -v cargo >/dev/null || die "cargo is required"
command -v python3 >/dev/null || die "python3 is required"

if command -v rustup >/dev/null; then
  if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    die "the Rust target $target is not installed on this machine; install it with
  rustup target add $target
(where the network allows), or build for this machine's architecture without --arm64"
  fi
elif [ "$target" != "$(rustc -vV | sed -n 's/^host: //p')" ]; then
  die "no rustup: cannot check that $target is installed; build without --arm64"
fi

if [ ! -f "$MARKER" ] || [ ! -x "$VENV/bin/cargo-lambda" ]; then
  mkdir -p "$LOCAL"
  say "installing $CARGO_LAMBDA_SPEC and $ZIG_SPEC into .local/venv (one-time)..."
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" >"$LOCAL/package-install.log" 2>&1 \
      || { tail -n 20 "$LOCAL/package-install.log" >&2; die "python3 -m venv failed (on Debian: apt-get install python3-venv)"; }
  fi
  if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        "$CARGO_LAMBDA_SPEC" "$ZIG_SPEC" >>"$LOCAL/package-install.log" 2>&1; then
    tail -n 30 "$LOCAL/package-install.log" >&2
    die "pip install failed (see .local/package-install.log)"
  fi
  touch "$MARKER"
fi
# cargo-lambda finds zig through the `ziglang` Python module of the venv's python.
export PATH="$VENV/bin:$PATH"

bin_args=()
for b in "${BINS[@]}"; do bin_args+=(-p "$b"); done
say "cargo lambda build --release --output-format zip ${arch_flag[*]} (${BINS[*]})"
cargo lambda build --release --output-format zip "${arch_flag[@]}" "${bin_args[@]}" >&2

say "artefacts in target/lambda:"
printf '%-16s %12s %12s\n' "function" "bootstrap" "zip"
for b in "${BINS[@]}"; do
  zip="target/lambda/$b/bootstrap.zip"
  [ -f "$zip" ] || die "$zip was not produced"
  # cargo-lambda zips the binary; unzip it next to the zip so its size can be shown too.
  python3 - "$zip" <<'PY'
import os, sys, zipfile
z = sys.argv[1]
with zipfile.ZipFile(z) as f:
    data = f.read("bootstrap")
out = os.path.join(os.path.dirname(z), "bootstrap")
if not os.path.exists(out) or os.path.getsize(out) != len(data):
    with open(out, "wb") as fh:
        fh.write(data)
    os.chmod(out, 0o755)
PY
  printf '%-16s %12s %12s\n' "$b" "$(stat -c %s "target/lambda/$b/bootstrap")" "$(stat -c %s "$zip")"
done
