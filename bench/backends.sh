#!/usr/bin/env bash
# amber on each storage backend, same corpus, same run: a local disk, `amber serve` (HTTPS on
# 127.0.0.1 with a private CA made here by openssl), moto's S3 server (AWS semantics, objects in
# memory) and Ceph RGW 16.2 (a single-node cluster: one monitor, one bluestore OSD on a sparse
# file, radosgw; started and stopped by tests/cephrgw.py, as in the tests), all on 127.0.0.1.
#
#   bash bench/backends.sh                          # local serve s3 rgw, corpus of bench/run.sh
#   CORPUS=/some/tree BACKENDS="local serve s3" bash bench/backends.sh
#
# (bench/serve.sh and bench/s3.sh run it with their own default BACKENDS.)
#
# Steps per backend: init, first backup, unchanged backup, full restore, check --read-data; wall
# and CPU time of the client (/usr/bin/time) and, for serve and s3, the server's CPU time over
# the step (/proc/PID/stat). Servers and client share the same two cores, so these figures bound
# a server on its own machine from below. RGW ignores If-None-Match on versioned buckets, so
# there amber pays one more request per write and per object first read (docs/S3.md §4).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(dirname "$HERE")
WORK=${WORK:-/tmp/bench}
CORPUS=${CORPUS:-$WORK/corpus}
AMBER=${AMBER_BIN:-$TOP/.venv/bin/amber}
BACKENDS=${BACKENDS:-local serve s3 rgw}
NAME=${NAME:-backends}
# An installed amber runs compiled modules; where PYTHONDONTWRITEBYTECODE is set a source
# checkout would compile them again in every command. Compile them once, as a wheel does.
PY=$(dirname "$AMBER")/python; [ -x "$PY" ] || PY=python3
for d in "$TOP/src" ${PYTHONPATH:+${PYTHONPATH//:/ }}; do
  [ -d "$d/amber" ] && "$PY" -m compileall -q "$d/amber" >/dev/null 2>&1 || true
done
RESULTS=${RESULTS:-$HERE/results}
RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS/$NAME-$RUN_ID.md
D=$WORK/$NAME
mkdir -p "$RESULTS" "$D"
[ -d "$CORPUS" ] || { echo "no corpus at $CORPUS (run bench/run.sh or bench/make_corpus.sh)" >&2; exit 1; }
has() { [[ " $BACKENDS " == *" $1 "* ]]; }
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

SERVER= MOTO=
RGW_DIR=$D/rgw
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
  [ -n "$MOTO" ] && kill "$MOTO" 2>/dev/null || true
  [ -f "$RGW_DIR/state.json" ] && "$PY" "$TOP/tests/cephrgw.py" stop "$RGW_DIR" || true
  [ -d "$D/mnt/serve" ] && chattr -R -i "$D/mnt/serve" 2>/dev/null || true
  mountpoint -q "$D/mnt" && umount "$D/mnt"; rm -f "$D/img"
}
trap cleanup EXIT
export AMBER_PASSWORD=bench-password-not-secret
export AWS_ACCESS_KEY_ID=amber-test AWS_SECRET_ACCESS_KEY=amber-test-secret AWS_DEFAULT_REGION=us-east-1

# repositories, the server's root and restore targets on one fresh journaled ext4 (baseline.md)
truncate -s 8G "$D/img" && mkfs.ext4 -q -F "$D/img" && mkdir -p "$D/mnt" && mount -o loop "$D/img" "$D/mnt"
M=$D/mnt

if has serve; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=bench CA" \
    -keyout "$D/ca.key" -out "$D/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$D/server.key" -out "$D/server.csr" 2>/dev/null
  openssl x509 -req -in "$D/server.csr" -CA "$D/ca.pem" -CAkey "$D/ca.key" -CAcreateserial -days 30 \
    -extfile <(printf "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth") -out "$D/server.pem" 2>/dev/null
  SERVE_PORT=$(free_port)
  "$AMBER" serve --root "$M/serve" --listen "127.0.0.1:$SERVE_PORT" --tls-cert "$D/server.pem" \
    --tls-key "$D/server.key" 2> "$D/serve.log" &
  SERVER=$!
  for _ in $(seq 100); do curl -s --cacert "$D/ca.pem" "https://127.0.0.1:$SERVE_PORT/healthz" >/dev/null && break; sleep 0.1; done
  TOKEN=$("$AMBER" serve token add --root "$M/serve" --repo bench --role admin --json |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["token"])')
fi
MOTO_ENDPOINT= RGW_ENDPOINT=
if has s3; then
  MOTO_PORT=$(free_port)
  "$(dirname "$AMBER")/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" > "$D/moto.log" 2>&1 &
  MOTO=$!
  for _ in $(seq 100); do curl -s "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null && break; sleep 0.1; done
  MOTO_ENDPOINT=http://127.0.0.1:$MOTO_PORT
fi
if has rgw; then
  rm -rf "$RGW_DIR"
  RGW_ENDPOINT=$("$PY" "$TOP/tests/cephrgw.py" start "$RGW_DIR" | sed -n 's/^export AMBER_S3_ENDPOINT=//p')
fi
for e in $MOTO_ENDPOINT $RGW_ENDPOINT; do
  "$PY" -c "import boto3; boto3.client('s3', endpoint_url='$e').create_bucket(Bucket='amber-bench', ObjectLockEnabledForBucket=True)"
done

echo "| backend | step | wall s | client CPU s | server CPU s | MB/s |" > "$OUT"
echo "|---|---|---|---|---|---|" >> "$OUT"
BYTES=$(du -sb --apparent-size "$CORPUS" | cut -f1)
server_cpu() {  # seconds of CPU the process $1 has used so far (0 without one)
  [ -n "$1" ] || { echo 0; return; }
  awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}
step() {  # backend server-pid step command...
  local b=$1 pid=$2 s=$3; shift 3
  tar cf - -C "$(dirname "$CORPUS")" "$(basename "$CORPUS")" | cat > /dev/null; sync
  local t0 t1 c0 c1; c0=$(server_cpu "$pid"); t0=$(date +%s.%N)
  /usr/bin/time -f "%U %S" -o "$D/time" "$@" > "$D/$b-$s.log" 2>&1
  t1=$(date +%s.%N); c1=$(server_cpu "$pid")
  local wall cpu scpu; wall=$(echo "$t1 - $t0" | bc -l); cpu=$(awk '{print $1 + $2}' "$D/time")
  scpu=$(echo "$c1 - $c0" | bc -l)
  printf '| %s | %s | %.2f | %.1f | %s | %.0f |\n' "$b" "$s" "$wall" "$cpu" \
    "$([ -n "$pid" ] && printf %.1f "$scpu" || echo —)" "$(echo "$BYTES / $wall / 1000000" | bc -l)" | tee -a "$OUT"
}
for b in $BACKENDS; do
  pid=
  case $b in
    local) export AMBER_REPOSITORY=$M/repo ;;
    serve) export AMBER_REPOSITORY=rest:https://127.0.0.1:$SERVE_PORT/bench AMBER_CACERT=$D/ca.pem AMBER_TOKEN=$TOKEN
      pid=$SERVER ;;
    s3) export AMBER_REPOSITORY=s3:amber-bench/repo AMBER_S3_ENDPOINT=$MOTO_ENDPOINT; pid=$MOTO ;;
    rgw) export AMBER_REPOSITORY=s3:amber-bench/repo AMBER_S3_ENDPOINT=$RGW_ENDPOINT ;;
    *) echo "unknown backend $b (local, serve, s3, rgw)" >&2; exit 2 ;;
  esac
  export XDG_CACHE_HOME=$M/cache-$b XDG_STATE_HOME=$M/state-$b
  "$AMBER" init > /dev/null
  step $b "$pid" "first backup" "$AMBER" backup "$CORPUS"
  step $b "$pid" "unchanged backup" "$AMBER" backup "$CORPUS"
  step $b "$pid" "full restore" "$AMBER" restore latest --target "$M/restore-$b"
  step $b "$pid" "check --read-data" "$AMBER" check --read-data
  rm -rf "$M/restore-$b"
done
echo "results: $OUT"
