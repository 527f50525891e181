"""Creating a repository and opening one with a password.

`init` fixes what a new repository is made with (format, chunker, pack size,
parity, retention settings) and pins its config in the audit log's first
event; `open` tries every key file the password unwraps until one opens that
event and the config it pins (trust.py decides which may). Both live apart from
the operations because they are the only code that runs before the parts exist.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Self

from .. import trust
from ..audit.log import AuditLog
from ..clock import Clock, SystemClock, to_iso
from ..crypto.aead import Sealer
from ..crypto.keys import MasterKeys
from ..errors import IntegrityError, RepositoryExists, RepositoryNotFound, UsageError, WrongPassword
from ..format import layout
from ..repo import records as rec
from ..repo import settings as settingsrec
from ..repo.keys import KeyRing
from ..storage import open_storage
from ..version import __version__
from .keys import author_public, b64, check_new_password
from .parts import PACK_SIZE, RepositoryParts

if TYPE_CHECKING:
    from . import Repository


FORMAT_VERSION = 2  # what `init` makes; format 1 repositories open and work as before
CHUNK_MIN = 512 << 10
CHUNK_AVG = 512 << 10  # with pyfastcdc's cut-point skipping the mean is about 768 KiB
CHUNK_MAX = 8 << 20
DEFAULT_PARITY = 2  # percent: two 128 KiB shards of each 16 MiB pack rebuildable (FORMAT.md §8.3)
MAX_PARITY = 50


class Opening(RepositoryParts):
    """Creating a repository (`init`) and opening one with a password (`open`)."""

    @classmethod
    def init(
        cls,
        url: str,
        password: str,
        *,
        default_retention: dict | None = None,
        min_retention: str | None = None,
        clock: Clock | None = None,
        kdf_n: int | None = None,
        storage_options: Mapping[str, str] | None = None,
        warn: Callable[[str], None] | None = None,
        params_from: "Repository | None" = None,
        parity: int = DEFAULT_PARITY,
        lock_policy: dict | None = None,
    ) -> Self:
        """Create a repository. `parity`: Reed–Solomon parity per pack, in percent of its size
        (0: none; FORMAT.md §8.3). `params_from` (an open repository) gives its id key, chunker
        seed and chunker parameters, so blob ids are equal and `copy_from` moves blobs as they
        are (`init --copy-params-from`); every other key is new.
        `default_retention` ({"duration": "30d", "mode": None}) locks every new snapshot; its
        mode defaults to governance, and storage must enforce it (where the bucket enforces
        less than that, `warn` hears why). `min_retention`
        (a duration) is the shortest lock amber will set (FORMAT.md §6.1). `kdf_n`: wrap the
        first key with scrypt of that cost (cheap key files for tests), not Argon2id."""
        check_new_password(password)
        default_retention = trust.default_retention_setting(default_retention)  # before anything is created
        min_retention = trust.min_retention_setting(min_retention, default_retention)
        storage = open_storage(url, create=True, options=storage_options)
        if storage.exists(layout.CONFIG) or any(True for _ in storage.list(layout.KEYS)):
            raise RepositoryExists(f"a repository already exists at {url}")
        if default_retention is not None or min_retention is not None:
            check_lock = getattr(storage, "check_object_lock", None)
            if check_lock is not None:
                check_lock()  # an S3 bucket must be versioned with Object Lock before locks are promised
        keys = MasterKeys.generate()
        chunker = {"algorithm": "fastcdc2020", "min": CHUNK_MIN, "avg": CHUNK_AVG, "max": CHUNK_MAX, "normalization": 1}
        if params_from is not None:
            keys = dataclasses.replace(keys, ids=params_from.keys.ids, chunker_seed=params_from.keys.chunker_seed)
            chunker = dict(params_from.config["chunker"])
        clock = clock or SystemClock()
        config = {
            "v": FORMAT_VERSION,
            "content_key": b64(keys.content_public),
            "id": uuid.uuid4().hex,
            "created": to_iso(clock.now()),
            "chunker": chunker,
            "pack_size": PACK_SIZE,
            "compression": "zstd",
            "default_retention": default_retention,
            "program": f"amber {__version__}",
        }
        if not isinstance(parity, int) or isinstance(parity, bool) or not 0 <= parity <= MAX_PARITY:
            raise UsageError(f"--parity must be a whole percentage from 0 to {MAX_PARITY}")
        if parity:
            config["parity"] = parity
        if lock_policy is not None:  # retention/tiers.py: locks that follow the retention schedule
            check_lock = getattr(storage, "check_object_lock", None)
            if check_lock is not None:
                check_lock()
            config["lock_policy"] = lock_policy
        if min_retention is not None:
            config["min_retention"] = min_retention
        key_id = KeyRing(rec.Records(storage, None)).add(keys, password, clock, kdf_n=kdf_n)
        rec.Records(storage, Sealer(keys.data)).put_at(rec.CONFIG, config, layout.CONFIG)
        repo = cls(storage, keys, config, key_id, clock)
        repo.pinned_config = config
        repo.log_event(
            "init",
            repository=config["id"],
            format=FORMAT_VERSION,
            key=key_id,
            default_retention=default_retention,
            min_retention=min_retention,
            public_key=repo.audit.vkey(),
            config_sha256=hashlib.sha256(rec.CONFIG.encode(config)).hexdigest(),
            config=config,
            admin_key=b64(author_public(keys)),
            content_key=b64(keys.content_public),
            **({"params_from": params_from.id} if params_from is not None else {}),
        )
        repo.apply_settings(repo.settings)
        for message in repo.lock_posture():
            (warn or repo.warn)(message)
        return repo

    @classmethod
    def open(
        cls,
        url: str,
        password: str,
        *,
        clock: Clock | None = None,
        storage_options: Mapping[str, str] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> Self:
        """Open with a password. Every key file the password unwraps is tried, cheapest first,
        until one opens the audit log's first entry and the config it pins, and is not revoked;
        the others (and invalid ones) are reported through `warn` and kept in `key_problems`.
        A config that does not match its pin is replaced by the pinned one for reading, named in
        `config_problems`, and every change is refused (`require_sound`). The config is checked
        against the format's limits (FORMAT.md §6) before anything uses it."""
        storage = open_storage(url, options=storage_options)
        if not storage.exists(layout.CONFIG) and not AuditLog.present(storage):  # else: pinned
            raise RepositoryNotFound(f"no repository at {url}", remedy="init")
        opener = trust.Opener(storage)
        problems: list[str] = []
        try:
            keys, key_id = KeyRing(rec.Records(storage, None)).unlock(password, warn, opener.accept, problems)
            opened = opener.opened[key_id]
        except (IntegrityError, WrongPassword) as e:
            if not opener.lenient:  # else a damaged first log entry: a key that opens the config reads
                raise e if isinstance(e, WrongPassword) else IntegrityError(f"{url}: {e}") from None
            keys, key_id, opened = opener.lenient[0]
        declared = opened.config.get("content_key")
        if declared is not None and (keys.content_public is None or b64(keys.content_public) != declared):
            raise IntegrityError(
                f"{layout.key_file(key_id)}: its content key is not the one the repository's config names "
                "(a key file made for another repository, or edited)"
            )
        repo = cls(storage, keys, opened.config, key_id, clock)
        repo.audit.cacert = (storage_options or {}).get("cacert") or None
        if warn is not None:
            repo.warn = warn
        repo.key_problems = [p for p in problems if not p.startswith(layout.key_file(key_id) + ":")]
        repo._password = password  # `check` tries the key files this open did not reach
        repo.config_problems, repo.pin_problems = opened.problems, opened.pin_problems
        repo.pinned_config, repo.revocation_problems = opened.pinned, opened.revocation_problems
        for problem in repo.config_problems + repo.pin_problems:
            repo.warn(problem)
        settings, repo.settings_problems = settingsrec.effective(
            repo.records, opened.config, lambda: trust.logged_settings(repo)
        )
        repo.apply_settings(settings)
        return repo
