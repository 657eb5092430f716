#!/usr/bin/env bash
# Times the full config (benches/full.toml) over the shared corpus, done four ways, against
# simply reading the same files, and prints a table of ratios:
#
#   read            cat of every file into /dev/null (the floor)
#   workmail-flow   `workmail-flow replay`, one process over every file (release build)
#   wf per message  `workmail-flow replay -`, one process per message, as a mail
#                   server's content filter would run it
#   altermime       Debian's altermime, one process per message on a copy of it, with its
#                   disclaimer (text + HTML), header, subject-prefix and remove options
#   python email    benches/python_rewrite.py (the approach of AWS's sample functions),
#                   one Python process over every file
#
# Then, unless --no-damage, it counts what each tool's output broke (benches/damage.py).
#
# Usage: benches/compare.sh [--runs N] [--no-damage] [--no-build]
# Needs: hyperfine, altermime (apt-get install -y hyperfine altermime), python3;
# beautifulsoup4 (pip) makes python_rewrite.py follow AWS's sample exactly.
# Env: WORKMAIL_FLOW_CORPUS (default ../shared/corpus beside the repository).
set -euo pipefail

runs=5
damage=1
build=1
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --no-damage) damage=0; shift ;;
        --no-build) build=0; shift ;;
        *) echo "usage: $0 [--runs N] [--no-damage] [--no-build]" >&2; exit 2 ;;
    esac
done

repo="$(cd "$(dirname "$0")/.." && pwd)"
corpus="${WORKMAIL_FLOW_CORPUS:-$repo/../shared/corpus}"
target="${CARGO_TARGET_DIR:-$repo/target}"
wf="$target/release/workmail-flow"
for tool in hyperfine altermime python3; do
    command -v "$tool" >/dev/null || { echo "$tool not found (see the header of $0)" >&2; exit 2; }
done
[ -f "$corpus/INDEX.tsv" ] || { echo "no corpus at $corpus (set WORKMAIL_FLOW_CORPUS)" >&2; exit 2; }
if [ "$build" = 1 ]; then
    (cd "$repo" && cargo build --release --quiet --bin workmail-flow)
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# One flat folder with unique names (replay refuses two inputs with one file name), in
# INDEX.tsv order; copies, so every tool reads the same bytes from the same disk.
mkdir -p "$work/in" "$work/out/wf" "$work/out/wf1" "$work/out/altermime" "$work/out/python"
n=0
while IFS=$'\t' read -r rel _; do
    [ -n "$rel" ] || continue
    n=$((n + 1))
    cp "$corpus/$rel" "$work/in/$(printf '%04d' "$n")_$(echo "$rel" | tr '/' '_')"
done < <(tail -n +2 "$corpus/INDEX.tsv")
bytes=$(cat "$work"/in/* | wc -c)

# altermime's inputs: the same disclaimer texts as benches/full.toml (the sender
# placeholder filled in, as altermime has none), the stamp and the subject tag.
printf 'Confidential: this message from alice@partner.example is meant for its addressees only.\nIf you received it in error, please delete it and tell the sender.\n' > "$work/disclaimer.txt"
printf '<div class="disclaimer"><p>Confidential: this message from alice@partner.example is meant for its addressees only.<br>\nIf you received it in error, please delete it and tell the sender.</p></div>\n' > "$work/disclaimer.html"
cat > "$work/altermime.sh" <<EOF
#!/usr/bin/env bash
# One altermime process per message on a copy, as a content filter runs it.
for f in "$work"/in/*; do
    o="$work/out/altermime/\${f##*/}"
    cp "\$f" "\$o"
    altermime --input="\$o" --disclaimer="$work/disclaimer.txt" \\
        --disclaimer-html="$work/disclaimer.html" --htmltoo \\
        --xheader="X-WorkMail-Flow: processed" \\
        --alter-header="Subject" --alter-with="[EXTERNAL]" --alter-mode=prefix \\
        --remove='\\.(exe|scr|js|vbs|bat|cmd|com|pif|jar|msi)\$' >/dev/null 2>&1 || true
done
EOF
cat > "$work/wf1.sh" <<EOF
#!/usr/bin/env bash
# One workmail-flow process per message, reading stdin and writing stdout.
for f in "$work"/in/*; do
    "$wf" replay --config "$repo/benches/full.toml" - < "\$f" > "$work/out/wf1/\${f##*/}" 2>/dev/null
done
EOF
chmod +x "$work/altermime.sh" "$work/wf1.sh"

echo "corpus: $n messages, $bytes bytes ($corpus)"
echo "machine: $(nproc) cores; $runs runs each after 1 warm-up; page cache warm"
hyperfine --style basic --warmup 1 --runs "$runs" --export-json "$work/times.json" \
    -n read "cat $work/in/* > /dev/null" \
    -n workmail-flow "$wf replay --config $repo/benches/full.toml --out $work/out/wf $work/in/* > /dev/null" \
    -n "wf per message" "$work/wf1.sh" \
    -n altermime "$work/altermime.sh" \
    -n "python email" "python3 $repo/benches/python_rewrite.py $work/out/python $work/in/* 2>/dev/null" \
    >&2

python3 - "$work/times.json" "$n" "$bytes" <<'EOF'
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
n, size = int(sys.argv[2]), int(sys.argv[3])
wf = res["workmail-flow"]["mean"]
rd = res["read"]["mean"]
print()
print("| how | mean (s) | ± σ (s) | per message (ms) | MB/s | × workmail-flow | × read |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name in ["read", "workmail-flow", "wf per message", "altermime", "python email"]:
    r = res[name]
    m = r["mean"]
    print("| %s | %.3f | %.3f | %.2f | %.0f | %.1f | %.1f |" % (
        name, m, r["stddev"] or 0.0, m / n * 1000, size / m / 1e6, m / wf, m / rd))
print()
print("altermime / workmail-flow: %.1fx (target ≥ 10x)" % (res["altermime"]["mean"] / wf))
print("python email / workmail-flow: %.1fx (target ≥ 20x)" % (res["python email"]["mean"] / wf))
print("workmail-flow / read: %.1fx (aim ≤ 10x)" % (wf / rd))
EOF

if [ "$damage" = 1 ]; then
    echo
    python3 "$repo/benches/python_rewrite.py" "$work/out/python" "$work"/in/*
    python3 "$repo/benches/damage.py" --check "$wf" "$work/in" \
        "workmail-flow=$work/out/wf" "altermime=$work/out/altermime" "python email=$work/out/python"
fi
