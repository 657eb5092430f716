#!/usr/bin/env bash
# Peak memory and time of the `rewrite` Lambda binary handling one 40 MB message with
# benches/full.toml, end to end on loopback: a one-event fake Runtime API
# (benches/fake_runtime.py), the Message Flow emulator (`workmail-flow emulate`) and
# moto's S3 server. Prints /usr/bin/time's "Maximum resident set size", CPU times and
# the function's own `total_ms` (fetch, stages, upload and put back).
#
#     benches/lambda_memory.sh          # gen_large.py: a 29 MB attachment and a small .exe
#     benches/lambda_memory.sh worst    # gen_worst.py: 500 attachments, 4 MB bodies (docs/deploy.md)
#
# Needs: moto 5.2.5 or later (older ones answer CompleteMultipartUpload in a shape the
# SDK refuses): .venv-ci/ as .ci/run installs it, else `moto_server` on PATH; and a
# release build (cargo build --release --bins).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bin="${CARGO_TARGET_DIR:-$repo/target}/release"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/messages"
case "${1:-large}" in
    large) python3 "$repo/benches/gen_large.py" "$work/messages/big.eml" ;;
    worst) python3 "$repo/benches/gen_worst.py" "$work/messages/big.eml" ;;
    *) echo "usage: $0 [large|worst]" >&2; exit 2 ;;
esac
ls -l "$work/messages/big.eml" | awk '{print "message bytes:", $5}'
sed 's/"messageId": "plain"/"messageId": "big"/' "$repo/samples/events/plain.json" > "$work/big.json"
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
export AWS_ENDPOINT_URL_S3=http://127.0.0.1:5077 WORKMAIL_FLOW_S3_PATH_STYLE=true
moto=moto_server
[ -x "$(dirname "$0")/../.venv-ci/bin/moto_server" ] && moto="$(dirname "$0")/../.venv-ci/bin/moto_server"
"$moto" -H 127.0.0.1 -p 5077 > "$work/moto.log" 2>&1 & pids+=($!)
sleep 3
python3 -c "import boto3; boto3.client('s3', endpoint_url='http://127.0.0.1:5077', region_name='us-east-1').create_bucket(Bucket='mail')"
"$bin/workmail-flow" emulate --messages "$work/messages" --port 8077 --s3-endpoint http://127.0.0.1:5077 > "$work/emu.log" 2>&1 & pids+=($!)
python3 "$repo/benches/fake_runtime.py" "$work/big.json" 9077 > "$work/runtime.log" 2>&1 & pids+=($!)
sleep 1
env AWS_LAMBDA_FUNCTION_NAME=f AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128 AWS_LAMBDA_FUNCTION_VERSION=1 \
    AWS_LAMBDA_RUNTIME_API=127.0.0.1:9077 AWS_ENDPOINT_URL_WORKMAILMESSAGEFLOW=http://127.0.0.1:8077 \
    WORKMAIL_FLOW_BUCKET=mail WORKMAIL_FLOW_CONFIG="$repo/benches/full.toml" \
    /usr/bin/time -v "$bin/rewrite" > "$work/rewrite.out" 2> "$work/rewrite.err" & timer=$!
for _ in $(seq 1 60); do grep -q POST "$work/runtime.log" && break; sleep 0.5; done
sleep 0.5
pkill -TERM -P "$timer" || true
wait "$timer" 2>/dev/null || true
grep POST "$work/runtime.log" || { echo "no response from the function" >&2; exit 1; }
[ -f "$work/messages/big.updated" ] && echo "the emulator accepted the rewritten message"
grep -E "Maximum resident set size|User time|System time" "$work/rewrite.err"
grep -o 'total_ms=[0-9]*' "$work/rewrite.out" || true
grep -oE 'stage=[^=]* changed=[a-z]+ .*duration_us=[0-9]+' "$work/rewrite.out" | sed -E 's/ decisions=.* duration_us=/ duration_us=/' || true
