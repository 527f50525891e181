#!/bin/sh
# Fuzz every target of fuzz/targets.py with atheris (coverage-guided, libFuzzer).
#
#   fuzz/run.sh                 every target, FUZZ_SECONDS (default 20) each
#   fuzz/run.sh tree_decode     only the targets named
#
# Environment: FUZZ_SECONDS (per target), FUZZ_VENV (default fuzz/.venv), ATHERIS
# (the pip requirement, default "atheris>=3.0"), FUZZ_JOBS (parallel workers per target,
# default 1). atheris is installed into the fuzz venv only, never as a test dependency.
# Corpora grow under fuzz/corpus/<target>/ (seeded by make_seeds.py); a crashing input is
# saved as fuzz/crashes/<target>-crash-<hash>; replay it with
#   fuzz/.venv/bin/python fuzz/targets.py TARGET FILE
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
venv=${FUZZ_VENV:-$here/.venv}
seconds=${FUZZ_SECONDS:-20}
jobs=${FUZZ_JOBS:-1}
parallel=""
[ "$jobs" -gt 1 ] && parallel="-jobs=$jobs -workers=$jobs"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import atheris, amber" 2>/dev/null; then
    "$venv/bin/pip" install -q "${ATHERIS:-atheris>=3.0}"
    "$venv/bin/pip" install -q -e "$root"
fi

mkdir -p "$here/corpus" "$here/crashes"
"$venv/bin/python" "$here/make_seeds.py" "$here/corpus" >/dev/null

if [ "$#" -gt 0 ]; then
    targets="$*"
else
    targets=$("$venv/bin/python" -c "import sys; sys.path.insert(0, '$here'); import targets; print(' '.join(targets.TARGETS))")
fi

failed=""
for t in $targets; do
    echo "== $t ($seconds s)"
    max_len=4096
    [ "$t" = evidence_verify ] && max_len=65536
    if ! "$venv/bin/python" "$here/fuzz.py" "$t" -max_total_time="$seconds" -max_len="$max_len" \
        $parallel -print_final_stats=1 \
        -artifact_prefix="$here/crashes/$t-" "$here/corpus/$t"; then
        failed="$failed $t"
    fi
done

if [ -n "$failed" ]; then
    echo "findings in:$failed (inputs under $here/crashes/)"
    exit 1
fi
echo "no findings"
