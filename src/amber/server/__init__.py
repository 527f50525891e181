"""`amber serve`: one process that owns the storage, the clock and a signing key of its own.

Clients reach repositories as `rest:https://HOST:PORT/NAME`; the server decides
what each token may do, judges every lock and hold by its own clock, keeps the
lock and hold records in its own state (never in the repository's folders), and
appends every change to a journal signed with its Ed25519 key. See docs/SERVER.md.

The package uses storage (to keep objects) and never the client engine: it cannot
read what it stores, and needs no password.
"""
