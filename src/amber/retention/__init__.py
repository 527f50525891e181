"""Retention locks, legal holds, keep policies, forget and prune."""
