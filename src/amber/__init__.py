"""amber: immutable, deduplicated, encrypted backups."""
__version__ = "0.1.0"
