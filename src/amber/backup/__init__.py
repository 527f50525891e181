"""Backing up: the walk, file reading (threads and worker processes), the files cache."""
