"""Restoring: plan by pack, write files in parallel, never through a planted link."""
