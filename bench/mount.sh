#!/usr/bin/env bash
# `amber mount` against `amber restore` of the same snapshot, back to back, on one fresh ext4 image:
# per repetition, a fresh mount (nothing in the kernel's cache) times `ls -l` of the snapshot's root,
# of the backed-up folder and of its deepest folder (first look, so the trees are read), a walk of
# every entry (`find`), then `cat` of every file in one stream (find | xargs cat), its byte count
# checked against the corpus, and again on a fresh mount with two readers at once (xargs -P 2:
# restore, too, works on both cores); then a full `amber restore`. Page cache dropped before each step.
#
#   bash bench/mount.sh                      # corpus of bench/run.sh, 2 repetitions
#   CORPUS=/some/tree REPS=3 bash bench/mount.sh
set -euo pipefail
NAME=mount
IMAGE_SIZE=${IMAGE_SIZE:-8G}
REPS=${REPS:-2}
. "$(dirname "${BASH_SOURCE[0]}")/fresh.sh"
export AMBER_PASSWORD=bench-mount XDG_CACHE_HOME=$M/cache AMBER_REPOSITORY=$M/repo
FS=$D/fuse
mkdir -p "$FS"
unmount() { mountpoint -q "$FS" && { fusermount3 -u "$FS" 2>/dev/null || umount -l "$FS"; }; true; }
trap 'unmount; cleanup' EXIT

timed() {  # timed NAME REP CMD...: wall seconds of a shell command line
  local name=$1 rep=$2; shift 2
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  /usr/bin/time -f "%e" -o "$D/t" bash -c "$*" > "$D/out" 2>&1 || { cat "$D/out"; exit 1; }
  printf '%s\t%s\t%s\t%s\n' "$name" "$rep" "$(cat "$D/t")" "$(tail -1 "$D/out")" >> "$TSV"
}

"$AMBER" init > /dev/null
"$AMBER" backup "$CORPUS" > /dev/null
BYTES=$(find "$CORPUS" -type f -print0 | xargs -0 cat | wc -c)
FILES=$(find "$CORPUS" -type f | wc -l)
DEEP=$(cd "$CORPUS" && find . -type d | awk -F/ '{ print NF "\t" $0 }' | sort -n | tail -1 | cut -f2-)
for rep in $(seq 1 "$REPS"); do
  "$AMBER" mount "$FS" > "$D/mount.log" 2>&1 & pid=$!
  for _ in $(seq 100); do mountpoint -q "$FS" && break; sleep 0.1; done
  mountpoint -q "$FS" || { cat "$D/mount.log"; exit 1; }
  S=$FS/snapshots/latest
  timed "ls -l snapshot root" "$rep" "ls -l $S/ | wc -l"
  timed "ls -l backed-up folder" "$rep" "ls -l $S$CORPUS/ | wc -l"
  timed "ls -l deepest folder" "$rep" "ls -l '$S$CORPUS/$DEEP/' | wc -l"
  kill -INT "$pid"; wait "$pid"  # a fresh mount: nothing read so far stays cached
  "$AMBER" mount "$FS" > "$D/mount.log" 2>&1 & pid=$!
  for _ in $(seq 100); do mountpoint -q "$FS" && break; sleep 0.1; done
  timed "find (every entry)" "$rep" "find $S$CORPUS | wc -l"
  timed "cat every file" "$rep" "find $S$CORPUS -type f -print0 | xargs -0 cat | wc -c"
  [ "$(tail -1 "$D/out")" = "$BYTES" ] || { echo "read $(tail -1 "$D/out") bytes through the mount, not $BYTES" >&2; exit 1; }
  kill -INT "$pid"; wait "$pid"
  "$AMBER" mount "$FS" > "$D/mount.log" 2>&1 & pid=$!  # again fresh: two readers at once
  for _ in $(seq 100); do mountpoint -q "$FS" && break; sleep 0.1; done
  timed "cat every file, two readers" "$rep" "find $S$CORPUS -type f -print0 | xargs -0 -P 2 -n 256 cat | wc -c"
  [ "$(tail -1 "$D/out")" = "$BYTES" ] || { echo "read $(tail -1 "$D/out") bytes through the mount, not $BYTES" >&2; exit 1; }
  kill -INT "$pid"; wait "$pid"
  timed "restore" "$rep" "'$AMBER' restore latest --target '$M/restore' > /dev/null && echo ok"
  rm -rf "$M/restore"
done

"$PY" - "$TSV" "$CORPUS" "$OUT" "$RUN_ID" "$BYTES" "$FILES" "$DEEP" "$(uptime)" <<'PYEOF'
import statistics, sys, collections
tsv, corpus, out, run_id, nbytes, files, deep, load = sys.argv[1:]
rows = collections.defaultdict(list)
for line in open(tsv):
    name, rep, wall, _last = line.rstrip("\n").split("\t")
    rows[name].append(float(wall))
med = lambda xs: statistics.median(xs)
mb = int(nbytes) / 1e6
lines = [f"# amber mount against amber restore ({run_id})", "",
         f"Corpus: `{corpus}`, {files} files, {mb:.0f} MB; deepest folder `{deep}`. {len(rows['restore'])} "
         "repetitions, mount and restore back to back in each; page cache dropped before each step; "
         "each listing on a fresh mount's first look. Load when done: " + load.strip(), "",
         "| step | wall s (each rep) | median | MB/s |", "|---|---|---|---|"]
for name, walls in rows.items():
    rate = f"{mb / med(walls):.0f}" if name.startswith("cat every file") or name == "restore" else ""
    lines.append(f"| {name} | {' / '.join(f'{w:.2f}' for w in walls)} | {med(walls):.2f} | {rate} |")
ratio = med(rows["restore"]) / med(rows["cat every file"])
two = med(rows["restore"]) / med(rows["cat every file, two readers"])
lines += ["", f"Reading through the mount runs at {ratio:.0%} of restore's throughput with one reader and "
          f"{two:.0%} with two (median walls)."]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
echo "written: $OUT"
