"""Many clients putting the same keys at once: exactly one may win each."""

from __future__ import annotations

import threading

from ..errors import AlreadyExists


def race_puts(storage, n: int, keys: list[str], payload, retention=lambda i: None) -> dict[str, list[int]]:
    """n threads put every key at once (client i puts payload(i) with retention(i)); asserts no
    error and exactly one winner per key, and returns key -> [winner]."""
    barrier = threading.Barrier(n)
    won: dict[str, list[int]] = {}
    errors: list[str] = []
    mu = threading.Lock()

    def client(i: int) -> None:
        try:
            barrier.wait(timeout=30)
        except threading.BrokenBarrierError:
            errors.append(f"client {i}: barrier broken")
            return
        for key in keys:
            try:
                storage.put(key, payload(i), retention=retention(i))
            except AlreadyExists:
                continue
            except Exception as e:
                with mu:
                    errors.append(f"client {i} {key}: {type(e).__name__}: {e}")
                continue
            with mu:
                won.setdefault(key, []).append(i)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    for key in keys:
        assert len(won.get(key, [])) == 1, f"{key}: winners {won.get(key)}"
    return won
