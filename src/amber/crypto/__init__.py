"""Envelopes and keys: AES-256-GCM sealing bound to an object's kind; master keys and key files."""
