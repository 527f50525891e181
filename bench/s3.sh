#!/usr/bin/env bash
# amber on S3 beside amber on a local disk, same corpus, same run: moto's S3 server (AWS
# semantics, objects in memory) and Ceph RGW 16.2 (a single-node cluster: one monitor, one
# bluestore OSD on a sparse file, radosgw; started and stopped by tests/cephrgw.py, as in the
# tests), both on 127.0.0.1.
#
#   bash bench/s3.sh            # corpus from bench/run.sh (/tmp/bench/corpus)
#   BACKENDS="local rgw" bash bench/s3.sh
#
# Steps per backend: init, first backup, unchanged backup, full restore, check --read-data;
# wall and CPU time (amber's) via /usr/bin/time. The servers run on the same two cores, so
# these figures bound amber's S3 path from below: a real object store on another machine takes
# the server's work off this one. RGW ignores If-None-Match on versioned buckets, so there amber
# pays one more request per write and per object first read (docs/S3.md §4).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(dirname "$HERE")
WORK=${WORK:-/tmp/bench}
CORPUS=${CORPUS:-$WORK/corpus}
AMBER=${AMBER_BIN:-$TOP/.venv/bin/amber}
# An installed amber runs compiled modules; where PYTHONDONTWRITEBYTECODE is set a source
# checkout would compile them again in every command. Compile them once, as a wheel does.
AMBER_PY=$(dirname "$AMBER")/python; [ -x "$AMBER_PY" ] || AMBER_PY=python3
for d in "$TOP/src" ${PYTHONPATH:+${PYTHONPATH//:/ }}; do
  [ -d "$d/amber" ] && "$AMBER_PY" -m compileall -q "$d/amber" >/dev/null 2>&1 || true
done
PY=$(dirname "$AMBER")/python
RESULTS=${RESULTS:-$HERE/results}
RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS/s3-$RUN_ID.md
mkdir -p "$RESULTS" "$WORK/s3"
[ -d "$CORPUS" ] || { echo "no corpus at $CORPUS (run bench/run.sh or bench/make_corpus.sh)" >&2; exit 1; }

BACKENDS=${BACKENDS:-local s3 rgw}
MOTO=
RGW_DIR=$WORK/s3/rgw
cleanup() {
  [ -n "$MOTO" ] && kill "$MOTO" 2>/dev/null || true
  [ -f "$RGW_DIR/state.json" ] && "$PY" "$TOP/tests/cephrgw.py" stop "$RGW_DIR" || true
  mountpoint -q "$WORK/s3/mnt" && umount "$WORK/s3/mnt"; rm -f "$WORK/s3/img"
}
trap cleanup EXIT
export AWS_ACCESS_KEY_ID=amber-test AWS_SECRET_ACCESS_KEY=amber-test-secret AWS_DEFAULT_REGION=us-east-1
export AMBER_PASSWORD=bench-password-not-secret
MOTO_ENDPOINT= RGW_ENDPOINT=
if [[ " $BACKENDS " == *" s3 "* ]]; then
  PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$(dirname "$AMBER")/moto_server" -H 127.0.0.1 -p "$PORT" > "$WORK/s3/moto.log" 2>&1 &
  MOTO=$!
  for _ in $(seq 100); do curl -s "http://127.0.0.1:$PORT/moto-api/" >/dev/null && break; sleep 0.1; done
  MOTO_ENDPOINT=http://127.0.0.1:$PORT
fi
if [[ " $BACKENDS " == *" rgw "* ]]; then
  rm -rf "$RGW_DIR"
  RGW_ENDPOINT=$("$PY" "$TOP/tests/cephrgw.py" start "$RGW_DIR" | sed -n 's/^export AMBER_S3_ENDPOINT=//p')
fi
for e in $MOTO_ENDPOINT $RGW_ENDPOINT; do
  $PY -c "import boto3; boto3.client('s3', endpoint_url='$e').create_bucket(Bucket='amber-bench', ObjectLockEnabledForBucket=True)"
done

# local-disk repository and restore targets on a fresh journaled ext4 (see baseline.md)
truncate -s 8G "$WORK/s3/img" && mkfs.ext4 -q -F "$WORK/s3/img" && mkdir -p "$WORK/s3/mnt" && mount -o loop "$WORK/s3/img" "$WORK/s3/mnt"
M=$WORK/s3/mnt

echo "| backend | step | wall s | CPU s | MB/s |" > "$OUT"
echo "|---|---|---|---|---|" >> "$OUT"
BYTES=$(du -sb --apparent-size "$CORPUS" | cut -f1)
step() {  # backend step command...
  local b=$1 s=$2; shift 2
  tar cf - -C "$(dirname "$CORPUS")" "$(basename "$CORPUS")" | cat > /dev/null; sync
  local t0 t1; t0=$(date +%s.%N)
  /usr/bin/time -f "%U %S" -o "$WORK/s3/time" "$@" > "$WORK/s3/$b-$s.log" 2>&1
  t1=$(date +%s.%N)
  local wall cpu; wall=$(echo "$t1 - $t0" | bc -l); cpu=$(awk '{print $1 + $2}' "$WORK/s3/time")
  printf '| %s | %s | %.2f | %.1f | %.0f |\n' "$b" "$s" "$wall" "$cpu" "$(echo "$BYTES / $wall / 1000000" | bc -l)" | tee -a "$OUT"
}
for b in $BACKENDS; do
  case $b in
    local) export AMBER_REPOSITORY=$M/repo ;;
    s3) export AMBER_REPOSITORY=s3:amber-bench/repo AMBER_S3_ENDPOINT=$MOTO_ENDPOINT ;;
    rgw) export AMBER_REPOSITORY=s3:amber-bench/repo AMBER_S3_ENDPOINT=$RGW_ENDPOINT ;;
  esac
  export XDG_CACHE_HOME=$M/cache-$b XDG_STATE_HOME=$M/state-$b
  "$AMBER" init > /dev/null
  step $b "first backup" "$AMBER" backup "$CORPUS"
  step $b "unchanged backup" "$AMBER" backup "$CORPUS"
  step $b "full restore" "$AMBER" restore latest --target "$M/restore-$b"
  step $b "check --read-data" "$AMBER" check --read-data
  rm -rf "$M/restore-$b"
done
echo "results: $OUT"
