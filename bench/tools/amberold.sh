# Adapter for a second, older amber build, to compare two versions in one run (set AMBEROLD_BIN to its executable).
# Contract: see tools/restic.sh.
AMBEROLD_BIN=${AMBEROLD_BIN:-amber}

amberold_version() { "$AMBEROLD_BIN" --version 2>&1 || echo "amber (no --version)"; }

amberold_env() {
  export AMBER_REPOSITORY="$REPO"
  export AMBER_PASSWORD="$BENCH_PASSWORD"
  export XDG_CACHE_HOME="$STATE/cache" XDG_STATE_HOME="$STATE/state" XDG_DATA_HOME="$STATE/data"
}

amberold_init() { "$AMBEROLD_BIN" init; }

amberold_backup() { "$AMBEROLD_BIN" backup --tag "$1" "$CORPUS"; }

# files land at DEST/$CORPUS, as with restic
amberold_restore() { "$AMBEROLD_BIN" restore latest --target "$1"; }

amberold_check() { "$AMBEROLD_BIN" check --read-data; }
