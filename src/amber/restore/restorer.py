"""The restorer: plan by pack, read each pack region once, write files in parallel.

Safety against a hostile repository: every name was checked when its tree
was decoded (no '/', '.', '..' or NUL, sorted and unique), destinations are
built only from those names under the target, folders met on the way are
checked with lstat (a symlink there is replaced, never followed), files are
created without a name (O_TMPFILE, in their folder) and linked into place
only when every blob has been written and verified — where the file system
cannot do that, under a temporary name (O_CREAT | O_EXCL | O_NOFOLLOW) then
renamed — so a failed or interrupted restore never leaves a partial file under
a final name (an unnamed file vanishes with its descriptor; temporaries are
removed after a failure). Symlinks are
created last, after every file has been written, so no write can pass through
a link the restore made; hard links only ever link to a file this run wrote.
Every entry reaches its final name by a rename, which replaces whatever was
there without following it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import marshal
import os
import stat as st_
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple, Protocol

from ..errors import AmberError, IntegrityError, NotFound, RestoreFailed, StorageError
from ..format import layout
from ..repo.blobs import ENVELOPE_KINDS, BlobStore
from ..repo.processes import PipePool
from ..repo.snapshots import Snapshot
from .fsmeta import apply_flags, flags_on_path
from .jobs import FileJob, RestoreStats
from .placement import DIR_FLAGS, Placement, raise_if_fatal
from .workers import start as start_workers

MAX_SPAN = 4 << 20  # one read of a pack region: also the unit of work the restore's threads share
PLAN_FILES = 8192  # files planned, then written, at a time: memory follows this, not the snapshot
PROCESS_AFTER_FILES = 1000  # one-blob files planned before worker processes repay starting them


class Restorable(Protocol):
    """What a restore reads: trees, and blobs by pack."""

    blobs: BlobStore

    def load_index(self, force: bool = False) -> None: ...

    def load_tree(self, tree_id: str) -> list[dict]: ...


LITERAL_AFTER = 8  # more exact include paths than this are looked up in sets


class Literal(NamedTuple):
    """Includes that are exact paths (no glob), looked up in sets: a drill's sample names
    thousands of files, and matching each node against each of them would be quadratic."""

    paths: frozenset[str]
    parents: frozenset[str]

    @classmethod
    def of(cls, paths) -> "Literal":
        paths = frozenset(paths)
        parents = {""}
        for p in paths:
            parts = p.split("/")
            parents.update("/".join(parts[:i]) for i in range(2, len(parts)))
        return cls(paths, frozenset(parents))


def _selected(path: str, includes) -> str:
    """'all' if path is included whole, 'part' if it leads to an include, '' if neither."""
    if not includes:
        return "all"
    if isinstance(includes, Literal):
        return "all" if path in includes.paths else "part" if path in includes.parents else ""
    verdict = ""
    for inc in includes:
        if path == inc or path.startswith(inc + "/") or fnmatch.fnmatchcase(path, inc):
            return "all"
        if inc.startswith(path + "/") or path == "":
            verdict = "part"
    return verdict


class Restorer(Placement):
    def __init__(
        self,
        repo: Restorable,
        target: str,
        *,
        stats: RestoreStats | None = None,
        workers: int | None = None,
        owner: bool = True,
        special: bool = True,
        processes: bool | None = None,
    ) -> None:
        """`owner`: as root, give entries the uid/gid the snapshot names; `special`: make
        device nodes and FIFOs and keep setuid/setgid bits (off: skipped and stripped);
        `processes`: write files of one blob in worker processes (workers.py) once the
        plan has listed enough of them (None: where there is more than one core)."""
        super().__init__(os.path.abspath(target), stats or RestoreStats(), owner=owner, special=special)
        self.repo = repo
        self.store = repo.blobs
        self.workers = workers or max(2, min(4, os.cpu_count() or 2))
        self.files: list[FileJob] = []
        # every folder's path and node, its metadata applied last: the node marshalled (a
        # quarter of a dict's size), as these are kept for the whole restore
        self.dirs: list[tuple[str, bytes]] = []
        self.links: list[tuple[str, dict]] = []
        self.hardlinks: list[tuple[FileJob, str]] = []
        self.rebuilt_packs: set[bytes] = set()  # packs rebuilt from their parity during this restore
        self.specials: list[tuple[str, dict]] = []
        self.flagged: list[FileJob] = []  # files with inode flags, set once everything else is
        self.skipped = 0  # special files left out (special=False)
        self._inodes: dict[tuple, FileJob] = {}
        self.matched = False  # whether an include named something that exists
        self._writing: list[FileJob] = []  # the round being written
        self._one_blob = 0  # files of one blob planned so far
        self.processes = processes if processes is not None else (os.cpu_count() or 1) > 1
        self.procs: PipePool | None = None

    # -- planning --------------------------------------------------------------

    def plan(self, tree_id: str, includes=(), rel: str = "", dest: str | None = None) -> Iterator[None]:
        """Make the folders of a tree (depth first, each before what it holds) and list
        what to write into them. Iterative: no depth of folders meets Python's recursion limit.

        Yields whenever PLAN_FILES files are listed in `files` (and once at the end):
        the caller writes them and empties the list, so a restore holds the nodes of
        a few thousand files at a time, never the whole snapshot's."""
        stack = [(iter(self.repo.load_tree(tree_id)), includes, rel, dest or self.target)]
        while stack:
            if len(self.files) >= PLAN_FILES:
                yield
            nodes, includes, rel, dest = stack[-1]
            node = next(nodes, None)
            if node is None:
                stack.pop()
                continue
            path = f"{rel}/{node['name']}"
            verdict = _selected(path, includes)
            if not verdict:
                continue
            if verdict == "all" and includes:
                self.matched = True
            out = os.path.join(dest, node["name"])
            kind = node["type"]
            if kind == "dir":
                _safe_mkdir(out)
                self.stats.dirs += 1
                self.dirs.append((out, marshal.dumps(node)))
                try:
                    below = self.repo.load_tree(node["subtree"])
                except IntegrityError as e:  # reported; the rest of the snapshot is still restored
                    self.stats.errors.append(f"{out}: {e}")
                    continue
                stack.append((iter(below), () if verdict == "all" else includes, path, out))
            elif verdict != "all":
                continue
            elif kind == "file":
                self._plan_file(out, node)
            elif kind == "symlink":
                self.links.append((out, node))
            elif self.special:
                self.specials.append((out, node))
            else:
                self.skipped += 1
        yield

    def _plan_file(self, out: str, node: dict) -> None:
        content = node.get("content") or []
        job = FileJob(out, node, len(content))
        if node.get("links", 1) > 1 and "inode" in node:
            key = (node.get("device"), node["inode"])
            first = self._inodes.get(key)
            if first is not None:
                self.hardlinks.append((first, out))
                return
            self._inodes[key] = job
        self.stats.files += 1
        self.stats.bytes_total += node.get("size", 0)
        self.files.append(job)
        if "flags" in node:
            self.flagged.append(job)
        if len(content) == 1:
            self._one_blob += 1
            if self._one_blob >= PROCESS_AFTER_FILES and self.procs is None and self.processes:
                self._start_processes()  # now, so they start up while the plan goes on

    # -- writing ---------------------------------------------------------------

    def run(self, rounds: Iterator[None], verify: bool = False) -> None:
        """Write what `plan` lists, round by round (`verify`: read each file back after
        its round), then the hard links, special files and symlinks, and last the
        folders' metadata.

        A round is written on a thread of its own while the next is planned (planning
        is the calling thread's work: reading and decoding trees, looking up blobs),
        so at most two rounds' files are held at once."""
        self._unnamed = self._can_link_unnamed()
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="amber-restore-round") as rounder:
                writing = None
                for _ in rounds:
                    files, self.files = self.files, []
                    if writing is not None:
                        writing.result()
                    writing = rounder.submit(self._write_round, files, verify)
                if writing is not None:
                    writing.result()
            self._finish_tree()
        finally:
            if self.procs is not None:
                self.procs.shutdown()
            self._cleanup()

    def _write_round(self, files: list[FileJob], verify: bool) -> None:
        self._writing = files
        self._write_files(files)
        if verify:
            self.stats.errors.extend(self.verify(files))
        self._writing = []

    def _write_files(self, files: list[FileJob]) -> None:
        """Write the files listed, pack by pack."""
        by_pack: dict[bytes, list] = {}
        for job in files:
            content = job.node.get("content") or []
            if not content:
                self.write_whole(job, b"")
                continue
            pos = 0
            planned = []
            for h in content:
                try:
                    bid = bytes.fromhex(h)
                    e = self.store.lookup(bid)
                except (ValueError, IntegrityError) as err:
                    self._fail(job, f"{err}")
                    break
                planned.append((e.pack, (e.offset, bid, e, job, pos)))
                pos += e.raw_length
            else:
                if pos != job.node.get("size", 0):
                    self._fail(job, f"its blobs hold {pos} bytes, the snapshot says {job.node.get('size', 0)}")
                    continue
                for pack, item in planned:
                    by_pack.setdefault(pack, []).append(item)
        # with worker processes, twice as many threads: each process has a region waiting
        threads = self.workers * (2 if self.procs is not None else 1)
        with ThreadPoolExecutor(threads, thread_name_prefix="amber-restore") as pool:
            regions = [(p, group) for p, items in by_pack.items() for group in _regions(items)]
            for fut in [pool.submit(self._restore_region, p, group) for p, group in regions]:
                fut.result()
        self._cleanup(last=False)  # the temporaries of files some of whose blobs failed

    def _start_processes(self) -> None:
        """Start the worker processes (once the plan has listed enough files of one blob)."""
        if self.procs is not None or not self.processes:
            return
        keys = self.store.keys
        try:
            self.procs = start_workers(
                (keys.data, keys.ids, keys.content_private, self.store.only_sealed),
                self.target,
                owner=self.owner,
                special=self.special,
                workers=self.workers,
            )
        except (OSError, ValueError):
            self.processes = False  # no processes here (a sandbox, a frozen binary): threads do it

    def _finish_tree(self) -> None:
        for first, out in self.hardlinks:
            self._make_hardlink(first, out)
        for out, node in self.specials:
            self._make_special(out, node)
        for out, node in self.links:
            self._make_symlink(out, node)
        for job in self.flagged:  # after the hard links: immutable or append-only files cannot be linked
            if job.written is not None and not job.failed:
                flags_on_path(job.path, job.node, job.written, self.warn)
        for out, kept in reversed(self.dirs):  # deepest first: an immutable folder is complete
            node = marshal.loads(kept)
            try:
                fd = os.open(out, DIR_FLAGS)  # the folder itself, never a link put in its place
            except OSError:
                continue
            try:
                self._apply_meta(node, fd, out)
                if "flags" in node:
                    apply_flags(fd, node["flags"], out, self.warn)
            finally:
                os.close(fd)

    def _cleanup(self, last: bool = True) -> None:
        """Close what is still open and remove every temporary not renamed into place."""
        for job in (*self.files, *self._writing):
            with job.lock:
                fd, job.fd = job.fd, None
            if fd is not None:
                os.close(fd)
        self.remove_temporaries(last=last)

    def _restore_region(self, pack_id: bytes, group: list) -> None:
        """Read one region of a pack (`_regions`) and write the blobs it holds."""
        start = group[0][0]
        end = max(it[2].offset + it[2].length for it in group)
        try:
            region = self.store.storage.get(layout.pack(pack_id), start, end - start)
        except (NotFound, AmberError) as err:
            for it in group:
                if isinstance(err, NotFound):  # a pack the index names is gone: damage
                    missing = f"blob {it[1].hex()[:16]}: pack {pack_id.hex()[:16]} is missing"
                    self.store.note_damage(it[1], pack_id, missing)
                self._fail(it[3], f"pack {pack_id.hex()[:16]}: {err}")
            return
        if self.procs is not None:
            group = self._write_in_process(pack_id, start, region, group)
        view = memoryview(region)
        last_id, data = None, None
        for offset, bid, e, job, pos in group:
            if job.failed:
                continue
            if bid != last_id:
                try:
                    data = self.store.open_blob(bid, e, view[offset - start : offset - start + e.length])
                except IntegrityError as err:
                    last_id = bid
                    self.store.note_damage(bid, pack_id, str(err))  # recorded when the restore ends
                    data = self._rebuilt(bid, e, str(err))
                    if data is None:
                        self._fail(job, str(err))
                        continue
                last_id = bid
            elif data is None:
                self._fail(job, f"blob {bid.hex()[:16]} is damaged")
                continue
            self._write_blob(job, data, pos)

    def _write_in_process(self, pack_id: bytes, start: int, region: bytes, group: list) -> list:
        """Have a worker process write the region's files of one blob; returns the rest."""
        mine, rest = [], []
        for it in group:
            offset, bid, e, job, _pos = it
            if len(job.node.get("content") or ()) == 1 and not job.failed:
                kind = ENVELOPE_KINDS[e.type]
                mine.append((job, (offset - start, e.length, bid, kind, e.comp, e.raw_length, job.path, job.node)))
            else:
                rest.append(it)
        if not mine:
            return rest
        assert self.procs is not None
        batch = (bytes(region), pack_id.hex(), [item for _job, item in mine], self.store.pack_writers.get(pack_id))
        results, errors, written, fatal, damaged, warnings = self.procs.submit(batch).result()
        retry: set[bytes] = set()
        for bid, why in damaged:
            self.store.note_damage(bid, pack_id, why)
            if self._rebuilt(bid, self.store.lookup(bid), why) is not None:
                retry.add(bid)  # its pack rebuilt from parity: the threads write these files
        for (job, item), (failed, where) in zip(mine, results, strict=True):
            job.failed, job.written = failed, where
            if failed and item[2] in retry:
                job.failed = False
                errors = [m for m in errors if not m.startswith(f"{job.path}: ")]
                rest.append(next(it for it in group if it[3] is job))
        rest.sort(key=lambda it: it[0])
        with self._mu:
            self.stats.errors.extend(errors)
            self.stats.warnings.extend(warnings)
            self.stats.bytes_written += written
            self.stats.files_done += sum(1 for failed, _where in results if not failed)
            self.stats.current = mine[-1][0].path
        if fatal is not None:
            raise StorageError(fatal)
        return rest

    def _rebuilt(self, bid: bytes, e, why: str) -> bytes | None:
        """The blob from its pack rebuilt from parity (BlobStore.from_parity), said once per pack."""
        data = self.store.from_parity(bid, e)
        if data is not None:
            with self._mu:
                if e.pack not in self.rebuilt_packs:
                    self.rebuilt_packs.add(e.pack)
                    self.stats.warnings.append(
                        f"pack {e.pack.hex()[:16]} is damaged ({why}); rebuilt from its parity in memory "
                        "(the next backup or `check --read-data` stores its blobs again)"
                    )
        return data

    def _write_blob(self, job: FileJob, data: bytes, pos: int) -> None:
        if job.remaining == 1 and pos == 0 and job.fd is None:
            self.write_whole(job, data)
            return
        try:
            with job.lock:
                if job.failed:
                    return
                if job.fd is None:
                    job.fd = self._create(job)
                os.pwrite(job.fd, data, pos)
                job.remaining -= 1
                done = job.remaining == 0
                if done:
                    fd, job.fd = job.fd, None
            with self._mu:
                self.stats.bytes_written += len(data)
            if done:
                self._finish(job, fd)
        except OSError as e:
            self._fail(job, f"{e.strerror or e}")
            raise_if_fatal(e)

    def verify(self, files: list[FileJob]) -> list[str]:
        bad = []

        def one(job: FileJob):
            if job.failed:
                return None
            h = hashlib.sha256()
            try:
                with open(job.path, "rb", buffering=0) as f:
                    while True:
                        b = f.read(8 << 20)
                        if not b:
                            break
                        h.update(b)
            except OSError as e:
                return f"{job.path}: cannot read back: {e.strerror}"
            if h.hexdigest() != job.node.get("sha256"):
                return f"{job.path}: SHA-256 differs from the snapshot"
            return None

        with ThreadPoolExecutor(self.workers) as pool:
            for res in pool.map(one, files):
                if res:
                    bad.append(res)
                else:
                    self.stats.verified += 1
        return bad


def _regions(items: list) -> list[list]:
    """A pack's planned blobs, in order, cut into regions of at most MAX_SPAN bytes (a
    larger blob alone): each region is read once, and regions are written in parallel."""
    items.sort(key=lambda t: t[0])
    out: list[list] = []
    i = 0
    while i < len(items):
        start = items[i][0]
        j = i
        while j + 1 < len(items) and items[j + 1][2].offset + items[j + 1][2].length - start <= MAX_SPAN:
            j += 1
        out.append(items[i : j + 1])
        i = j + 1
    return out


def _safe_mkdir(path: str) -> None:
    try:
        os.mkdir(path, 0o700)
        return
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not st_.S_ISDIR(st.st_mode):  # a file or a symlink: never write through it
        os.unlink(path)
        os.mkdir(path, 0o700)


def restore(
    repo: Restorable,
    snap: Snapshot,
    target: str,
    *,
    include=(),
    verify: bool = False,
    stats=None,
    workers=None,
    no_owner: bool = False,
    no_special: bool = False,
    processes: bool | None = None,
) -> RestoreStats:
    """Restore a snapshot (or the `include` paths) under `target`.

    As root, entries get the uid and gid the snapshot names unless `no_owner`;
    `no_special` skips device nodes and FIFOs and strips setuid/setgid bits
    (for snapshots that are not trusted)."""
    repo.load_index()
    includes: list[str] | Literal = [
        ("/" + i.strip("/")) if not i.startswith("/") else i.rstrip("/") or "/" for i in include
    ]
    if "/" in includes:
        includes = []
    elif len(includes) > LITERAL_AFTER and not any(set(i) & set("*?[") for i in includes):
        includes = Literal.of(includes)
    os.makedirs(target, exist_ok=True)
    r = Restorer(
        repo, target, stats=stats, workers=workers, owner=not no_owner, special=not no_special, processes=processes
    )
    r.run(r.plan(snap.tree, includes), verify)
    if includes and not r.matched:
        raise NotFound(f"nothing in snapshot {snap.short_id} matches {', '.join(include)}")
    if r.stats.errors:
        raise RestoreFailed(r.stats.errors, r.stats, verify)
    return r.stats
