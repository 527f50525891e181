"""The repository's parts: blobs and packs, sealed records, trees, snapshots, events, key files."""
