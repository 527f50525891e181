from .blobstore import BlobStore, IndexEntry

__all__ = ["BlobStore", "IndexEntry"]
