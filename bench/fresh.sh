# Sourced by the single-amber benchmarks (copy.sh, parity.sh, write_only.sh) after they set NAME
# (and optionally IMAGE_SIZE): the paths, the amber to run (its modules compiled once, as a wheel
# would), the results file, and one fresh ext4 image mounted at $M, removed on exit.
HERE=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
TOP=$(dirname "$HERE")
WORK=${WORK:-/tmp/bench}
CORPUS=${CORPUS:-$WORK/corpus}
AMBER=${AMBER_BIN:-$TOP/.venv/bin/amber}
REPS=${REPS:-3}
PY=$(dirname "$AMBER")/python; [ -x "$PY" ] || PY=python3
"$PY" -m compileall -q "$TOP/src/amber" >/dev/null 2>&1 || true
RESULTS=${RESULTS:-$HERE/results}
RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS/$NAME-$RUN_ID.md
D=$WORK/$NAME
mkdir -p "$RESULTS" "$D"
[ -d "$CORPUS" ] || { echo "no corpus at $CORPUS (run bench/run.sh or bench/make_corpus.sh)" >&2; exit 1; }
cleanup() { mountpoint -q "$D/mnt" && umount "$D/mnt"; rm -f "$D/img"; }
trap cleanup EXIT
truncate -s "${IMAGE_SIZE:-12G}" "$D/img" && mkfs.ext4 -q -F "$D/img" && mkdir -p "$D/mnt" && mount -o loop "$D/img" "$D/mnt"
M=$D/mnt
TSV=$D/times.tsv; : > "$TSV"
