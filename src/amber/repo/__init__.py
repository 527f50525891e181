"""The repository's objects: blobs in packs and their index, sealed chunks."""
