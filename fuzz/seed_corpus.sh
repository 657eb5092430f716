#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ for libFuzzer: corpus_mutations gets every message of the
# shared corpus up to 256 KiB (libFuzzer's -max_len below; larger ones only slow each run
# down), arbitrary_bytes gets the repository's sample messages and golden inputs. Nothing
# here is committed (fuzz/.gitignore).
# Env: WORKMAIL_FLOW_CORPUS (default ../shared/corpus beside the repository).
set -euo pipefail
fuzz="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$fuzz")"
corpus="${WORKMAIL_FLOW_CORPUS:-$repo/../shared/corpus}"
mkdir -p "$fuzz/corpus/corpus_mutations" "$fuzz/corpus/arbitrary_bytes"
n=0
while IFS=$'\t' read -r rel size _; do
    [ -n "$rel" ] && [ "$size" -le 262144 ] || continue
    n=$((n + 1))
    cp "$corpus/$rel" "$fuzz/corpus/corpus_mutations/$(echo "$rel" | tr '/' '_')"
done < <(tail -n +2 "$corpus/INDEX.tsv")
m=0
for f in "$repo"/samples/*.eml "$repo"/tests/golden/*/*/input.eml; do
    m=$((m + 1))
    cp "$f" "$fuzz/corpus/arbitrary_bytes/seed_$m.eml"
done
echo "seeded corpus_mutations with $n corpus messages, arbitrary_bytes with $m samples"
