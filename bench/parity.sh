#!/usr/bin/env bash
# What Reed–Solomon parity costs (init --parity PERCENT): the same corpus backed up into fresh
# repositories with each parity setting, alternating, on one fresh ext4 image; first backup,
# restore and check --read-data times, and the repository's size.
#
#   bash bench/parity.sh                          # corpus of bench/run.sh; parity 0 2 5; 3 repetitions
#   CORPUS=/some/tree PARITIES="0 2 10" REPS=5 bash bench/parity.sh
set -euo pipefail
NAME=parity
PARITIES=${PARITIES:-0 2 5}
IMAGE_SIZE=${IMAGE_SIZE:-12G}
. "$(dirname "${BASH_SOURCE[0]}")/fresh.sh"
export AMBER_PASSWORD=bench-password XDG_CACHE_HOME=$M/cache

step() {  # step NAME PARITY REP CMD...
  local name=$1 par=$2 rep=$3; shift 3
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  /usr/bin/time -f "%e %U %S" -o "$D/t" "$@" > "$D/out" 2>&1 || { cat "$D/out"; exit 1; }
  read -r wall user sys < "$D/t"
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$par" "$rep" "$wall" "$(echo "$user + $sys" | bc)" >> "$TSV"
}

for rep in $(seq 1 "$REPS"); do
  for par in $PARITIES; do
    R=$M/repo-$par-$rep
    AMBER_REPOSITORY=$R "$AMBER" init --parity "$par" > /dev/null
    rm -rf "$M/cache"
    step backup "$par" "$rep" "$AMBER" -r "$R" backup "$CORPUS"
    step restore "$par" "$rep" "$AMBER" -r "$R" restore latest --target "$M/restore"
    rm -rf "$M/restore"
    step check "$par" "$rep" "$AMBER" -r "$R" check --read-data
    printf 'size\t%s\t%s\t%s\t%s\n' "$par" "$rep" "$(du -sb "$R/data" | cut -f1)" "$(du -sb "$R/parity" 2>/dev/null | cut -f1 || echo 0)" >> "$TSV"
  done
done

"$PY" - "$TSV" "$CORPUS" "$OUT" "$RUN_ID" "$PARITIES" <<'PYEOF'
import statistics, sys, collections
tsv, corpus, out, run_id, parities = sys.argv[1:]
parities = parities.split()
rows = collections.defaultdict(list)
for line in open(tsv):
    name, par, rep, a, b = line.rstrip("\n").split("\t")
    rows[(name, par)].append((float(a), float(b or 0)))
med = statistics.median
base = parities[0]
lines = [f"# Reed–Solomon parity: what it costs ({run_id})", "",
         f"Corpus: `{corpus}`; {len(rows[('backup', base)])} repetitions, medians; one fresh ext4 image; page cache "
         f"dropped before each step. Each cell: wall s / CPU s, and the ratio to parity {base}.", "",
         "| parity | first backup | restore | check --read-data | packs MB | parity MB | parity / packs |",
         "|---|---|---|---|---|---|---|"]
for par in parities:
    cells = []
    for name in ("backup", "restore", "check"):
        w, c = med([x[0] for x in rows[(name, par)]]), med([x[1] for x in rows[(name, par)]])
        bw = med([x[0] for x in rows[(name, base)]])
        cells.append(f"{w:.2f} / {c:.2f} ({w / bw:.3f})")
    packs, parity = med([x[0] for x in rows[("size", par)]]), med([x[1] for x in rows[("size", par)]])
    lines.append(f"| {par} % | " + " | ".join(cells) + f" | {packs / 1e6:.1f} | {parity / 1e6:.2f} | {parity / packs * 100:.2f} % |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
echo "written: $OUT"
