#!/usr/bin/env bash
# The cost of reading as a function of the message's shape, with the release binary and
# the full config (benches/full.toml):
#   - 10,000 vs 100,000 tiny parts (1 MB): time per run, and the ratio (the reading
#     stops at 20,000 parts, structure::MAX_PARTS, so the larger one costs little more);
#   - a 39 MB text part on one line: peak memory (target: at most 100 MB).
# Usage: benches/reading_cost.sh [RUNS]   (needs /usr/bin/time and bc)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
cargo build --release --quiet --bin workmail-flow
bin=target/release/workmail-flow
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 - "$work" <<'PY'
import sys
work = sys.argv[1]
head = ("From: a@partner.example\nTo: b@corp.example\nSubject: parts\nMIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=b\n\n")
for n in (10_000, 100_000):
    parts = ["--b\nContent-Type: text/plain\n\nhello\n"] + ["--b\n\nx\n"] * (n - 1)
    with open(f"{work}/parts{n}.eml", "w") as f:
        f.write(head + "".join(parts) + "--b--\n")
line = ("0123456789 abcdefghijklmnopqrstuvwxyz " * 1_100_000)[:39_000_000]
with open(f"{work}/line39m.eml", "w") as f:
    f.write("From: a@partner.example\nTo: b@corp.example\nSubject: one long line\n"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n" + line + "\n")
PY

seconds() {  # median wall time of $runs runs of replay over one file
    local f="$1" times=()
    for _ in $(seq "$runs"); do
        local t0 t1
        t0=$(date +%s.%N)
        "$bin" replay --config benches/full.toml --out "$work/out" "$f" > /dev/null
        t1=$(date +%s.%N)
        times+=("$(echo "$t1 - $t0" | bc)")
    done
    printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p"
}

t10=$(seconds "$work/parts10000.eml")
t100=$(seconds "$work/parts100000.eml")
printf '10,000 parts:  %.3f s (median of %s)\n' "$t10" "$runs"
printf '100,000 parts: %.3f s (median of %s)\n' "$t100" "$runs"
printf 'ratio 100k/10k: %.1f (the reading stops at 20,000 parts)\n' "$(echo "$t100 / $t10" | bc -l)"

rss=$(/usr/bin/time -f '%M' "$bin" replay --config benches/full.toml --out "$work/out" "$work/line39m.eml" 2>&1 >/dev/null | tail -1)
printf '39 MB single-line text part: peak RSS %.1f MB (target 100 MB)\n' "$(echo "$rss / 1000" | bc -l)"
"$bin" replay --config benches/full.toml --out "$work/out" "$work/line39m.eml" | head -1 | cut -c1-300
