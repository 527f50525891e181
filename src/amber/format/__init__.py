"""Pure encodings of everything amber stores. No I/O here."""
