#!/bin/bash
# Per-command cost on a repository of 60 small snapshots: backup, snapshots, forget,
# prune, check. Compare two builds in the same run (each a src/ folder), alternating:
#   bench/tools/command_costs.sh /path/to/old/src old; bench/tools/command_costs.sh src now
set -e
SRC=$1; LABEL=$2
export PYTHONPATH=$(realpath "$SRC") AMBER_PASSWORD=pw XDG_STATE_HOME=${TMPDIR:-/tmp}/amber-costs/$LABEL/state XDG_CACHE_HOME=${TMPDIR:-/tmp}/amber-costs/$LABEL/cache
A=${AMBER_BIN:-$(dirname "$0")/../../.venv/bin/amber}
R=${TMPDIR:-/tmp}/amber-costs/$LABEL/repo
rm -rf ${TMPDIR:-/tmp}/amber-costs/$LABEL; mkdir -p ${TMPDIR:-/tmp}/amber-costs/$LABEL/src
python3 -c "
import os,random
r=random.Random(1)
for i in range(200):
    open(f'${TMPDIR:-/tmp}/amber-costs/$LABEL/src/f{i}','wb').write(r.randbytes(2000))"
$A -r $R init >/dev/null 2>&1 || $A -r $R init --kdf-n 1024 >/dev/null
for i in $(seq 1 60); do echo $i > ${TMPDIR:-/tmp}/amber-costs/$LABEL/src/changing; $A -r $R backup ${TMPDIR:-/tmp}/amber-costs/$LABEL/src >/dev/null; done
t() { local s=$(date +%s.%N); "$@" >/dev/null 2>&1; local e=$(date +%s.%N); python3 -c "print(f'{$e-$s:.2f}')"; }
echo "$LABEL backup(61st): $(t $A -r $R backup ${TMPDIR:-/tmp}/amber-costs/$LABEL/src)  snapshots: $(t $A -r $R snapshots)  forget-keep-last-50: $(t $A -r $R forget --keep-last 50)  prune: $(t $A -r $R prune)  check: $(t $A -r $R check)"
