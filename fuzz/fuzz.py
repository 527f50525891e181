"""Run one fuzz target under atheris (coverage-guided, libFuzzer):

    python fuzz/fuzz.py TARGET [libFuzzer flags] [CORPUS_DIR...]

Targets are in targets.py. Anything but an AmberError escaping a decoder is a crash,
which libFuzzer saves as crash-<hash> for `python fuzz/targets.py TARGET FILE` to replay.
"""

from __future__ import annotations

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

with atheris.instrument_imports(include=["amber", "targets", "zipfile", "json"]):
    import targets


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in targets.TARGETS:
        sys.exit(f"usage: fuzz.py TARGET [libFuzzer flags]\ntargets: {' '.join(targets.TARGETS)}")
    fn = targets.TARGETS[sys.argv.pop(1)]

    def one(data: bytes) -> None:
        targets.only_amber_errors(fn, data)

    atheris.Setup(sys.argv, one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
