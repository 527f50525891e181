#!/usr/bin/env bash
# One command: build the ~1.3 GB corpus and time amber beside restic and BorgBackup.
#
#   bash bench/run.sh                    # 3 repetitions of restic, borg and amber
#   REPS=1 TOOLS="restic amber" bash bench/run.sh
#
# Needs root (apt-get, loop mounts for a fresh journaled ext4 per tool and
# repetition). amber is taken from this checkout's .venv (python3 quickstart.py
# creates it). Results land in bench/results/peers-<run>.{csv,md}.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(dirname "$HERE")
WORK=${WORK:-/tmp/bench}
export WORK TOOLS=${TOOLS:-"restic borg amber"} REPS=${REPS:-3}
export AMBER_BIN=${AMBER_BIN:-$TOP/.venv/bin/amber}

need_apt=()
for c in restic zstd b3sum bc; do command -v "$c" >/dev/null || need_apt+=("$c"); done
[ -x /usr/bin/time ] || need_apt+=(time)
case " $TOOLS " in *" borg "*)
  need_apt+=(libacl1-dev libssl-dev liblz4-dev libzstd-dev libxxhash-dev pkg-config) ;;
esac
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
case " $TOOLS " in *" borg "*)
  if [ ! -x "$WORK/venv/bin/borg" ]; then
    python3 -m venv "$WORK/venv"
    "$WORK/venv/bin/pip" install -q borgbackup
  fi
  export PATH="$WORK/venv/bin:$PATH" ;;
esac
[ -x "$AMBER_BIN" ] || python3 "$TOP/quickstart.py" --install-only
# An installed amber runs compiled modules; where PYTHONDONTWRITEBYTECODE is set a source
# checkout would compile them again in every command. Compile them once, as a wheel does.
AMBER_PY=$(dirname "$AMBER_BIN")/python; [ -x "$AMBER_PY" ] || AMBER_PY=python3
for d in "$TOP/src" ${PYTHONPATH:+${PYTHONPATH//:/ }}; do
  [ -d "$d/amber" ] && "$AMBER_PY" -m compileall -q "$d/amber" >/dev/null 2>&1 || true
done
if [ ! -f "$WORK/corpus.manifest" ] || [ ! -d "$WORK/corpus" ]; then
  bash "$HERE/make_corpus.sh" "$WORK/corpus"
fi
bash "$HERE/peers.sh"
