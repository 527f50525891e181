"""Backing up: the walk, the files cache, reading and sealing files on threads and worker processes."""
