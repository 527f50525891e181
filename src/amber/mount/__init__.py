"""`amber mount`: the repository's snapshots as a read-only folder (FUSE).

views.py names the folders above the snapshots (restic's layout), content.py reads
file content lazily blob by blob through a bounded cache, fs.py answers the file
system's questions by path, and fuse.py hands it to libfuse (through mfusepy).
"""
