#!/usr/bin/env bash
# A write-only (backup) key against a full key, same corpus, same run, on one fresh ext4 image:
# per repetition, one repository backed up with its full key and one with a write-only key
# (`key add --role backup`), alternating; a first backup, an unchanged one, then a restore of
# each with the full key (data written by a write-only client must restore as fast).
#
#   bash bench/write_only.sh                 # corpus of bench/run.sh, 3 repetitions
#   CORPUS=/some/tree REPS=5 bash bench/write_only.sh
#   OLD_SRC=/path/to/older/amber/src bash bench/write_only.sh   # adds a column: that amber (format 1)
set -euo pipefail
NAME=write-only
IMAGE_SIZE=${IMAGE_SIZE:-8G}
. "$(dirname "${BASH_SOURCE[0]}")/fresh.sh"
export AMBER_PASSWORD=bench-full-key XDG_CACHE_HOME=$M/cache

step() {  # step NAME ROLE REP CMD...: wall and CPU seconds of one amber command
  local name=$1 role=$2 rep=$3; shift 3
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  /usr/bin/time -f "%e %U %S %M" -o "$D/t" "$@" > "$D/out" 2>&1 || { cat "$D/out"; exit 1; }
  read -r wall user sys rss < "$D/t"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$role" "$rep" "$wall" "$(echo "$user + $sys" | bc)" "$rss" >> "$TSV"
}

ROLES="full backup"; [ -n "${OLD_SRC:-}" ] && ROLES="old full backup"
for rep in $(seq 1 "$REPS"); do
  for role in $ROLES; do
    R=$M/repo-$role-$rep
    if [ "$role" = old ]; then export PYTHONPATH=$OLD_SRC; "$PY" -m compileall -q "$OLD_SRC/amber" >/dev/null 2>&1 || true
    else unset PYTHONPATH; fi
    AMBER_REPOSITORY=$R "$AMBER" init > /dev/null
    pw=$AMBER_PASSWORD
    if [ "$role" = backup ]; then
      AMBER_REPOSITORY=$R AMBER_NEW_PASSWORD=bench-backup-key "$AMBER" key add --role backup > /dev/null
      pw=bench-backup-key
    fi
    rm -rf "$M/cache"
    AMBER_PASSWORD=$pw step first "$role" "$rep" "$AMBER" -r "$R" backup "$CORPUS"
    AMBER_PASSWORD=$pw step unchanged "$role" "$rep" "$AMBER" -r "$R" backup "$CORPUS"
    step restore "$role" "$rep" "$AMBER" -r "$R" restore latest --target "$M/restore-$role-$rep"
    rm -rf "$M/restore-$role-$rep"
    du -sb "$R" | awk -v r="$role" -v n="$rep" '{print "size\t" r "\t" n "\t" $1 "\t0\t0"}' >> "$TSV"
  done
done

"$PY" - "$TSV" "$CORPUS" "$OUT" "$RUN_ID" <<'PYEOF'
import statistics, sys, collections
tsv, corpus, out, run_id = sys.argv[1:]
rows = collections.defaultdict(list)
for line in open(tsv):
    name, role, rep, wall, cpu, rss = line.rstrip("\n").split("\t")
    rows[(name, role)].append((float(wall), float(cpu), int(rss)))
med = lambda xs: statistics.median(xs)
lines = [f"# A write-only key against a full key ({run_id})", "",
         f"Corpus: `{corpus}`; {len(rows[('first', 'full')])} repetitions, medians; one fresh ext4 image; "
         "page cache dropped before each step. Restores use the full key.", "",
         "Columns: `old` = the amber given by OLD_SRC (format 1, content under the data key), `full` = this amber "
         "(format 2) with its full key, `write-only` = this amber with a write-only key; each cell wall s / CPU s / peak RSS MB.", "",
         "| step | old | full | write-only | write-only / full (wall) | full / old (wall) |",
         "|---|---|---|---|---|---|"]
cell = lambda r: f"{med([x[0] for x in r]):.2f} / {med([x[1] for x in r]):.2f} / {med([x[2] for x in r]) / 1024:.0f}" if r else "–"
for name in ("first", "unchanged", "restore"):
    o, f, b = rows.get((name, "old"), []), rows[(name, "full")], rows[(name, "backup")]
    ow = med([x[0] for x in o]) if o else None
    fw, bw = med([x[0] for x in f]), med([x[0] for x in b])
    lines.append(f"| {name} | {cell(o)} | {cell(f)} | {cell(b)} | {bw / fw:.3f} | {f'{fw / ow:.3f}' if ow else '–'} |")
sizes = ", ".join(f"{role} {med([x[0] for x in rows[('size', role)]]) / 1e6:.1f} MB" for role in ("old", "full", "backup") if rows.get(("size", role)))
lines += ["", f"Repository size after the two backups: {sizes}."]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
echo "written: $OUT"
