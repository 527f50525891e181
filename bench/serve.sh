#!/usr/bin/env bash
# amber through `amber serve` (HTTPS on 127.0.0.1, a private CA made here with openssl) beside
# amber on a local disk: same corpus, same run, both repositories on one fresh journaled ext4.
#
#   bash bench/serve.sh                     # corpus from bench/run.sh (/tmp/bench/corpus)
#   CORPUS=/some/tree BACKENDS="local serve" bash bench/serve.sh
#
# Steps per backend: init, first backup, unchanged backup, full restore, check --read-data; wall
# and CPU time of the client (/usr/bin/time) and, for serve, the server's CPU time over the step
# (/proc/PID/stat). Client and server share the same two cores, so serve's figures bound a server
# on its own machine from below.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(dirname "$HERE")
WORK=${WORK:-/tmp/bench}
CORPUS=${CORPUS:-$WORK/corpus}
AMBER=${AMBER_BIN:-$TOP/.venv/bin/amber}
PY=$(dirname "$AMBER")/python
RESULTS=${RESULTS:-$HERE/results}
RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS/serve-$RUN_ID.md
D=$WORK/serve
mkdir -p "$RESULTS" "$D"
[ -d "$CORPUS" ] || { echo "no corpus at $CORPUS (run bench/run.sh or bench/make_corpus.sh)" >&2; exit 1; }
BACKENDS=${BACKENDS:-local serve}
SERVER=
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
  [ -d "$D/mnt/serve" ] && chattr -R -i "$D/mnt/serve" 2>/dev/null || true
  mountpoint -q "$D/mnt" && umount "$D/mnt"; rm -f "$D/img"
}
trap cleanup EXIT
export AMBER_PASSWORD=bench-password-not-secret

truncate -s 8G "$D/img" && mkfs.ext4 -q -F "$D/img" && mkdir -p "$D/mnt" && mount -o loop "$D/img" "$D/mnt"
M=$D/mnt

if [[ " $BACKENDS " == *" serve "* ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=bench CA" \
    -keyout "$D/ca.key" -out "$D/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$D/server.key" -out "$D/server.csr" 2>/dev/null
  openssl x509 -req -in "$D/server.csr" -CA "$D/ca.pem" -CAkey "$D/ca.key" -CAcreateserial -days 30 \
    -extfile <(printf "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth") -out "$D/server.pem" 2>/dev/null
  PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$AMBER" serve --root "$M/serve" --listen "127.0.0.1:$PORT" --tls-cert "$D/server.pem" --tls-key "$D/server.key" \
    2> "$D/serve.log" &
  SERVER=$!
  for _ in $(seq 100); do curl -s --cacert "$D/ca.pem" "https://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
  TOKEN=$("$AMBER" serve token add --root "$M/serve" --repo bench --role admin --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["token"])')
fi

echo "| backend | step | wall s | client CPU s | server CPU s | MB/s |" > "$OUT"
echo "|---|---|---|---|---|---|" >> "$OUT"
BYTES=$(du -sb --apparent-size "$CORPUS" | cut -f1)
server_cpu() {  # seconds of CPU the server has used so far
  [ -n "$SERVER" ] || { echo 0; return; }
  awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$SERVER/stat"
}
step() {  # backend step command...
  local b=$1 s=$2; shift 2
  tar cf - -C "$(dirname "$CORPUS")" "$(basename "$CORPUS")" | cat > /dev/null; sync
  local t0 t1 c0 c1; c0=$(server_cpu); t0=$(date +%s.%N)
  /usr/bin/time -f "%U %S" -o "$D/time" "$@" > "$D/$b-$s.log" 2>&1
  t1=$(date +%s.%N); c1=$(server_cpu)
  local wall cpu scpu; wall=$(echo "$t1 - $t0" | bc -l); cpu=$(awk '{print $1 + $2}' "$D/time")
  scpu=$(echo "$c1 - $c0" | bc -l); [ "$b" = serve ] || scpu=0
  printf '| %s | %s | %.2f | %.1f | %.1f | %.0f |\n' "$b" "$s" "$wall" "$cpu" "$scpu" \
    "$(echo "$BYTES / $wall / 1000000" | bc -l)" | tee -a "$OUT"
}
for b in $BACKENDS; do
  case $b in
    local) export AMBER_REPOSITORY=$M/repo ;;
    serve) export AMBER_REPOSITORY=rest:https://127.0.0.1:$PORT/bench AMBER_CACERT=$D/ca.pem AMBER_TOKEN=$TOKEN ;;
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
