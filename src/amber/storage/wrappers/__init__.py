"""Storage decorators: each wraps another `Storage` and changes only what its name says."""

from .append_only import AppendOnlyStorage

__all__ = ["AppendOnlyStorage"]
