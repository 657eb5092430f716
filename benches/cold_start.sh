#!/usr/bin/env bash
# Cold start and size of the `rewrite` Lambda binary (release build):
# - time from process start to its first poll of the Lambda Runtime API (a fake API on
#   127.0.0.1, see benches/cold_start.py), with the bundled config and with
#   benches/full.toml;
# - the binary's size as built and stripped (a Lambda package would ship it stripped).
#
# Usage: benches/cold_start.sh [RUNS] [--no-build]
set -euo pipefail
runs="${1:-30}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
bin="$target/release/rewrite"
if [ "${2:-}" != "--no-build" ]; then
    (cd "$repo" && cargo build --release --quiet --bin rewrite)
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
strip -o "$work/rewrite.stripped" "$bin"
size() { stat -c %s "$1"; }
printf 'binary size: %d bytes (%.1f MiB) as built, %d bytes (%.1f MiB) stripped\n' \
    "$(size "$bin")" "$(echo "$(size "$bin") / 1048576" | bc -l)" \
    "$(size "$work/rewrite.stripped")" "$(echo "$(size "$work/rewrite.stripped") / 1048576" | bc -l)"
echo "bundled config (flow.toml):"
python3 "$repo/benches/cold_start.py" "$work/rewrite.stripped" "$runs"
echo "full config (benches/full.toml):"
python3 "$repo/benches/cold_start.py" "$work/rewrite.stripped" "$runs" "$repo/benches/full.toml"
