"""Restoring snapshots into a folder."""
