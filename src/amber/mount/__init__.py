"""`amber mount`: the repository's snapshots as a read-only folder (FUSE).

views.py names the folders above the snapshots (restic's layout), content.py reads
file content lazily blob by blob through a bounded cache, fs.py answers the file
system's questions by path, and fuse.py hands it to libfuse: libfuse 3's low-level
API through lowlevel.py (node ids, libfuse3.py's ctypes binding), which ahead.py uses
to put files into the kernel's page cache before they are read; libfuse 2 through
mfusepy.
"""
