#!/usr/bin/env bash
# scale.sh — amber beside restic on trees of many small files: how memory and time grow.
#
#   bash bench/scale.sh                       # 100k 1M 10M files, amber and restic
#   bash bench/scale.sh 100k 300k             # the sizes given
#   TOOLS=amber bash bench/scale.sh 100k      # one tool (quick iterations)
#
# Per size: a fresh journaled ext4 image (sparse, 1 KiB blocks, inodes for the tree and
# one restore, loop-mounted at $WORK/scale-mnt) holds the tree (make_small_files.py:
# N files of 1-4 KiB, ~100 per folder, seeded), and each tool's repository and cache.
# Steps, each under /usr/bin/time -v: per tool init, backup1 (first), backup2
# (unchanged), check ($CHECK_ARGS for both tools, default none: structure only);
# then per tool restore (latest, into an empty folder; the files counted), after which
# the tool's repository and restore are removed. From $FREE_TREE_AT files (5M) the tree
# is removed before the restores, so 10M files with both tools need about 65 GB of free
# disk (3 KiB per file for the tree, then for a restore; 1.3 KiB per file per repository).
# Needs root (loop mounts). amber is $AMBER_BIN (default: this checkout's .venv,
# else /work/main/.venv); PYTHONPATH passes through.
# Results: results/scale-<run>.csv, and results/scale-<run>.md with per size and
# step wall, CPU, peak RSS and the growth law fitted over the sizes:
# peak RSS ≈ fixed MB + bytes per file.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(dirname "$HERE")
WORK=${WORK:-/tmp/bench}
TOOLS=${TOOLS:-"restic amber"}
RESULTS=${RESULTS:-$HERE/results}
CHECK_ARGS=${CHECK_ARGS:-}
FREE_TREE_AT=${FREE_TREE_AT:-5000000}   # from this many files the tree is removed before the restores
SEED=${SEED:-12}
MNT=$WORK/scale-mnt
IMG=$WORK/scale.img
SIZES=("$@"); [ ${#SIZES[@]} -gt 0 ] || SIZES=(100k 1M 10M)
if [ -z "${AMBER_BIN:-}" ]; then
  AMBER_BIN=$TOP/.venv/bin/amber; [ -x "$AMBER_BIN" ] || AMBER_BIN=/work/main/.venv/bin/amber
fi
export AMBER_BIN BENCH_PASSWORD=${BENCH_PASSWORD:-bench-password-not-secret}
# An installed amber runs compiled modules; where PYTHONDONTWRITEBYTECODE is set a source
# checkout would compile them again in every command. Compile them once, as a wheel does.
AMBER_PY=$(dirname "$AMBER_BIN")/python; [ -x "$AMBER_PY" ] || AMBER_PY=python3
for d in "$TOP/src" ${PYTHONPATH:+${PYTHONPATH//:/ }}; do
  [ -d "$d/amber" ] && "$AMBER_PY" -m compileall -q "$d/amber" >/dev/null 2>&1 || true
done
RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
LOGS=$WORK/logs/scale-$RUN_ID
CSV=$RESULTS/scale-$RUN_ID.csv
mkdir -p "$LOGS" "$RESULTS"
command -v restic >/dev/null || { apt-get update -qq && apt-get install -y -qq restic >/dev/null; }

say() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$LOGS/scale.log" >&2; }
count() { awk -v s="$1" 'BEGIN { n = s + 0; u = tolower(substr(s, length(s)));
  if (u == "k") n *= 1000; else if (u == "m") n *= 1000000; printf "%d", n }'; }

down() { mountpoint -q "$MNT" && umount "$MNT"; rm -f "$IMG"; }
up() {   # up FILES : a fresh ext4 big enough for the tree, the repositories and a restore
  local n=$1 mb
  # 1 KiB blocks (a 1-4 KiB file takes 3 KiB on average): tree + restore + two repositories,
  # and inodes for the tree and a restore; the image is sparse, blocks are used as written
  mb=$(( n * 12 / 1024 + 2048 ))
  down
  truncate -s "${mb}M" "$IMG" &&
    mkfs.ext4 -q -F -b 1024 -N $(( n * 21 / 10 + 100000 )) -E lazy_itable_init=0,lazy_journal_init=0,discard "$IMG" &&
    mkdir -p "$MNT" && mount -o loop,discard "$IMG" "$MNT"
}

# timed SIZE TOOL STEP CMD... : one step under /usr/bin/time -v, one CSV row
timed() {
  local n=$1 tool=$2 step=$3; shift 3
  local tf="$LOGS/$n-$tool-$step.time" log="$LOGS/$n-$tool-$step.log" t0 t1 rc
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$tf" "$@" > "$log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  [ "$rc" = 0 ] || say "WARNING: $tool $step exited $rc (see $log)"
  echo "$RUN_ID,$n,$tool,$step,$(echo "$t1 - $t0" | bc -l | xargs printf '%.3f'),$(awk -F': ' '
    /User time/ {u = $2} /System time/ {s = $2} /Maximum resident set size/ {r = $2}
    END {printf "%.2f,%.2f,%d", u, s, r}' "$tf"),$rc" >> "$CSV"
}
warm() { tar cf - -C "$MNT" tree | cat > /dev/null; sync; }

tool_env() {   # tool_env TOOL : the tool's repository and state under $MNT/TOOL; sets cmd
  local base=$MNT/$1
  case $1 in
    amber) export AMBER_REPOSITORY=$base/repo AMBER_PASSWORD=$BENCH_PASSWORD \
             XDG_CACHE_HOME=$base/state/cache XDG_STATE_HOME=$base/state/state XDG_DATA_HOME=$base/state/data
           cmd=("$AMBER_BIN") ;;
    restic) export RESTIC_REPOSITORY=$base/repo RESTIC_PASSWORD=$BENCH_PASSWORD RESTIC_CACHE_DIR=$base/state/cache
            cmd=(restic) ;;
  esac
}

backups() {   # backups FILES TOOL : init, first and unchanged backup, check; the repository stays
  local n=$1 tool=$2 b
  mkdir -p "$MNT/$tool/state"
  tool_env "$tool"
  say "$n $tool: init"
  if [ "$tool" = restic ]; then timed "$n" "$tool" init restic init --repository-version 2
  else timed "$n" "$tool" init "${cmd[@]}" init; fi
  for b in backup1 backup2; do
    say "$n $tool: $b"; warm; timed "$n" "$tool" "$b" "${cmd[@]}" backup "$MNT/tree"
  done
  say "$n $tool: check"; sync
  # shellcheck disable=SC2086
  timed "$n" "$tool" check "${cmd[@]}" check $CHECK_ARGS
}

restores() {   # restores FILES TOOL : restore latest into an empty folder, count, then drop it all
  local n=$1 tool=$2 got
  tool_env "$tool"
  say "$n $tool: restore"; sync
  timed "$n" "$tool" restore "${cmd[@]}" restore latest --target "$MNT/$tool/restore"
  got=$(find "$MNT/$tool/restore" -type f | wc -l)
  [ "$got" = "$n" ] || say "WARNING: $tool restored $got files, not $n"
  rm -rf "${MNT:?}/$tool"
}

echo "run_id,files,tool,step,wall_s,user_s,sys_s,maxrss_kb,rc" > "$CSV"
{
  echo "run_id=$RUN_ID sizes=[${SIZES[*]}] tools=[$TOOLS] seed=$SEED check_args=[$CHECK_ARGS]"
  echo "host: $(nproc) cpus, $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(uname -r), load: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "restic: $(restic version 2>&1 | head -n1); amber: $AMBER_BIN $("$AMBER_BIN" --version 2>&1 | head -n1)"
} | tee "$LOGS/header.txt" >&2
trap down EXIT
for s in "${SIZES[@]}"; do
  n=$(count "$s")
  up "$n" || { say "cannot make the scratch file system"; exit 1; }
  say "$n: building the tree"
  python3 "$HERE/make_small_files.py" "$MNT/tree" "$n" --seed "$SEED"
  for tool in $TOOLS; do ( backups "$n" "$tool" ); done
  if [ "$n" -ge "$FREE_TREE_AT" ]; then   # room for a restore: the tree is not needed any more
    say "$n: removing the tree before the restores"; rm -rf "$MNT/tree"; sync; fstrim "$MNT" 2>/dev/null || true
  fi
  for tool in $TOOLS; do ( restores "$n" "$tool" ); done
  down
done
python3 "$HERE/summarize_scale.py" "$CSV" --header "$LOGS/header.txt" | tee "$RESULTS/scale-$RUN_ID.md"
