"""Several clients back up into one repository at once: no global lock, nothing lost."""

import multiprocessing
import os
import threading

from .helpers import PASSWORD, assert_same_tree, open_repo, restored, small_tree, write


def _child(repo_path: str, src: str, cache: str, results) -> None:
    os.environ["XDG_CACHE_HOME"] = cache
    try:
        from amber.repository import Repository

        repo = Repository.open(repo_path, PASSWORD)
        results.put(("ok", repo.backup([src]).snapshot_id))
    except BaseException as e:  # reported to the parent
        results.put(("error", f"{type(e).__name__}: {e}"))


def _sources(tmp_path, n):
    out = []
    for i in range(n):
        src = small_tree(tmp_path / f"src{i}", seed=i)
        # shared content across clients, so they race to store the same blobs
        write(os.path.join(src, "shared.bin"), b"shared between every client " * 40_000)
        write(os.path.join(src, f"own-{i}.bin"), os.urandom(300_000))
        out.append(src)
    return out


def _verify(repo_path, tmp_path, sources, snapshot_ids):
    repo = open_repo(repo_path)
    report = repo.check(read_data=True)
    assert report.errors == []
    assert sorted(s.id for s in repo.snapshots()) == sorted(snapshot_ids)
    for i, (src, sid) in enumerate(zip(sources, snapshot_ids)):
        target = tmp_path / f"restore{i}"
        repo.restore(repo.find_snapshot(sid), str(target), verify=True)
        assert_same_tree(src, restored(target, src))


def test_concurrent_backups_from_threads(repo, repo_path, tmp_path):
    n = 4
    sources = _sources(tmp_path, n)
    barrier = threading.Barrier(n)
    results: dict[int, str] = {}
    errors: list[str] = []

    def client(i):
        try:
            r = open_repo(repo_path)
            barrier.wait(timeout=60)
            results[i] = r.backup([sources[i]]).snapshot_id
        except Exception as e:
            errors.append(f"client {i}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == []
    _verify(repo_path, tmp_path, sources, [results[i] for i in range(n)])


def test_concurrent_backups_from_processes(repo, repo_path, tmp_path):
    n = 3
    sources = _sources(tmp_path, n)
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_child, args=(str(repo_path), sources[i], str(tmp_path / f"cache{i}"), results))
        for i in range(n)
    ]
    for p in procs:
        p.start()
    reports = [results.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [r for r in reports if r[0] != "ok"] == []
    ids = {r[1] for r in reports}
    assert len(ids) == n
    repo = open_repo(repo_path)
    by_path = {s.paths[0]: s.id for s in repo.snapshots()}
    _verify(repo_path, tmp_path, sources, [by_path[src] for src in sources])


def test_concurrent_backups_of_the_same_tree(repo, repo_path, tmp_path):
    src = small_tree(tmp_path / "src")
    write(os.path.join(src, "big.bin"), os.urandom(1 << 20))
    n = 3
    barrier = threading.Barrier(n)
    ids, errors = [], []

    def client():
        try:
            r = open_repo(repo_path)
            barrier.wait(timeout=60)
            ids.append(r.backup([src], use_cache=False).snapshot_id)
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=client) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == []
    _verify(repo_path, tmp_path, [src] * n, ids)
