"""The public API is pinned: a name added to or removed from `amber` is a deliberate change."""

from __future__ import annotations

import amber
import amber.errors

NAMES = """
__version__ Repository Snapshot open_repository verify_bundle
AmberError AlreadyExists AnomalyAlarm CheckpointError IntegrityError Locked NotAllowed NotFound PartialBackup ProofError
RepositoryExists RepositoryNotFound RestoreFailed SignerUnverified StorageError TokenRefused Unsupported UsageError
WrongPassword
"""
PUBLIC = set(NAMES.split())


def test_all_is_exactly_the_public_api():
    assert set(amber.__all__) == PUBLIC
    assert len(amber.__all__) == len(set(amber.__all__))
    for name in amber.__all__:
        assert getattr(amber, name) is not None


def test_every_error_class_is_public_and_in_one_tree():
    errors = {
        name for name, obj in vars(amber.errors).items() if isinstance(obj, type) and issubclass(obj, BaseException)
    }
    assert errors <= PUBLIC
    for name in errors:
        assert issubclass(getattr(amber, name), amber.AmberError)


def test_every_error_has_an_exit_code_from_the_contract():
    codes = {
        getattr(amber, n).exit_code
        for n in PUBLIC
        if n.endswith(
            ("Error", "Found", "Exists", "Locked", "Password", "Backup", "Failed", "Unsupported", "Unverified", "Alarm")
        )
    }
    assert codes <= {1, 2, 3, 4, 10, 12, 20, 21, 30}


def test_a_repository_opens_through_the_public_api(tmp_path):
    url = str(tmp_path / "repo")
    amber.Repository.init(url, "pw", kdf_n=2**10).close()
    repo = amber.open_repository(url, "pw")
    assert repo.snapshots() == []
    try:
        amber.open_repository(url, "wrong")
    except amber.WrongPassword as e:
        assert e.exit_code == 12
    else:
        raise AssertionError("a wrong password opened the repository")


def test_remedies_are_known_names():
    assert amber.errors.REMEDIES
    try:
        amber.UsageError("x", remedy="no-such-remedy")
    except ValueError:
        pass
    else:
        raise AssertionError("an unknown remedy was accepted")
