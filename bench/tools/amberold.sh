# Adapter for a second, older amber build, to compare two versions in one run
# (set AMBEROLD_BIN to its executable). The steps are amber.sh's.
# Contract: see tools/restic.sh.
source "$(dirname "${BASH_SOURCE[0]}")/amber.sh"
AMBER_BIN=${AMBEROLD_BIN:-amber}

amberold_version() { amber_version; }
amberold_env() { amber_env; }
amberold_init() { amber_init; }
amberold_backup() { amber_backup "$@"; }
amberold_restore() { amber_restore "$@"; }
amberold_check() { amber_check; }
