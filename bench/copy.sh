#!/usr/bin/env bash
# `amber copy` between two local repositories made with --copy-params-from, against a local
# restore of the same snapshot, same corpus, same run, one fresh ext4 image. Each repetition
# copies into a new destination and restores into a new folder.
#
#   bash bench/copy.sh                          # corpus of bench/run.sh, 3 repetitions
#   CORPUS=/some/tree REPS=5 bash bench/copy.sh
set -euo pipefail
NAME=copy
IMAGE_SIZE=${IMAGE_SIZE:-12G}
. "$(dirname "${BASH_SOURCE[0]}")/fresh.sh"
export AMBER_PASSWORD=bench-password AMBER_FROM_PASSWORD=bench-password XDG_CACHE_HOME=$M/cache
timed() {  # timed NAME REP CMD...
  local name=$1 rep=$2; shift 2
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  /usr/bin/time -f "%e %U %S %M" -o "$D/t" "$@" > "$D/out" 2>&1 || { cat "$D/out"; exit 1; }
  read -r wall user sys rss < "$D/t"
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$rep" "$wall" "$(echo "$user + $sys" | bc)" "$rss" >> "$TSV"
}
"$AMBER" -r "$M/src" init > /dev/null
"$AMBER" -r "$M/src" backup "$CORPUS" > /dev/null
STORED=$(du -sb "$M/src/data" | cut -f1)
for rep in $(seq 1 "$REPS"); do
  timed restore "$rep" "$AMBER" -r "$M/src" restore latest --target "$M/restore-$rep"
  rm -rf "$M/restore-$rep"
  "$AMBER" -r "$M/dst-$rep" init --copy-params-from "$M/src" > /dev/null
  timed copy "$rep" "$AMBER" -r "$M/dst-$rep" copy --from "$M/src"
  rm -rf "$M/dst-$rep"
done
"$PY" - "$TSV" "$CORPUS" "$OUT" "$RUN_ID" "$STORED" <<'PYEOF'
import statistics, sys, collections
tsv, corpus, out, run_id, stored = sys.argv[1:]
rows = collections.defaultdict(list)
for line in open(tsv):
    name, rep, wall, cpu, rss = line.rstrip("\n").split("\t")
    rows[name].append((float(wall), float(cpu), int(rss)))
med = statistics.median
r, c = med([x[0] for x in rows["restore"]]), med([x[0] for x in rows["copy"]])
lines = [f"# amber copy against a local restore ({run_id})", "",
         f"Corpus: `{corpus}` ({int(stored) / 1e6:.0f} MB stored); {len(rows['copy'])} repetitions, medians; one fresh "
         "ext4 image; page cache dropped before each step; each copy into a new repository made with "
         "`init --copy-params-from`.", "",
         "| step | wall s | CPU s | peak RSS MB |", "|---|---|---|---|"]
for name in ("restore", "copy"):
    lines.append(f"| {name} | {med([x[0] for x in rows[name]]):.2f} | {med([x[1] for x in rows[name]]):.2f} | "
                 f"{med([x[2] for x in rows[name]]) / 1024:.0f} |")
lines += ["", f"copy throughput / restore throughput: {r / c:.2f}"]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
echo "written: $OUT"
