"""The anomaly thresholds and their judgement (backup/anomaly.py): pure, no repository."""

from __future__ import annotations

import pytest

from amber.backup.anomaly import DEFAULT_THRESHOLDS, Measured, evaluate, is_ransom_note, parse_thresholds
from amber.errors import IntegrityError, UsageError
from amber.format.records import validate_settings


def test_ransom_note_names_match_case_insensitively_and_ordinary_names_do_not():
    for name in (
        "README_TO_DECRYPT.txt",
        "How_To_Decrypt_Files.html",
        "_readme.txt",
        "RESTORE_FILES.txt",
        "_HELP_instructions.html",
        "DECRYPT-INSTRUCTIONS.txt",
    ):
        assert is_ransom_note(name), name
    for name in ("README.md", "readme.txt", "decrypt.py", "restore.py", "instructions.txt", "HOW_TO_BUILD.md"):
        assert not is_ransom_note(name), name


def test_thresholds_parse_over_the_current_ones():
    t = parse_thresholds("changed=60%, min-files=50", {"collapsed": 0.3})
    assert (t["changed"], t["min_files"], t["collapsed"], t["renamed"]) == (0.6, 50, 0.3, DEFAULT_THRESHOLDS["renamed"])
    for bad in ("changed", "changed=1.5", "min-files=0.5", "entropy=1", "collapsed=-1"):
        with pytest.raises(UsageError):
            parse_thresholds(bad)


def test_min_files_keeps_small_changes_quiet_but_not_ransom_notes():
    m = Measured(files_parent=10, files=10, changed=10, bytes_changed=100, bytes_collapsed=100, files_collapsed=10)
    assert not evaluate("p" * 64, m, {}).alarm
    assert evaluate("p" * 64, m, {"min_files": 5}).alarm
    m = Measured(files_parent=1000, files=1001, added=1, ransom_notes=["/x/HOW_TO_RECOVER.txt"])
    found = evaluate("p" * 64, m, {})
    assert found.alarm and found.reasons == ["1 new file(s) named like a ransom note: /x/HOW_TO_RECOVER.txt"]
    assert not evaluate("p" * 64, m, {"ransom_notes": 0}).alarm


def test_renames_count_only_to_extensions_the_parent_did_not_have():
    m = Measured(files_parent=100, files=100, renamed=40, renamed_to={".md": 40}, parent_extensions={".txt", ".md"})
    assert evaluate("p" * 64, m, {}).signals["files_renamed"] == 0
    m.renamed_to = {".locked": 40}
    found = evaluate("p" * 64, m, {})
    assert found.signals["renamed"] == 0.4 and found.alarm and "'.locked'" in found.reasons[0]


def test_a_settings_record_with_malformed_thresholds_is_refused():
    doc = {"v": 1, "version": 1, "default_retention": None, "min_retention": None}
    validate_settings(dict(doc, anomaly_thresholds={"changed": 0.5, "future_signal": 3}), "settings/1")
    for bad in ({"changed": "0.5"}, {"changed": True}, {"x" * 40: 1}, [1], {"changed": -1}):
        with pytest.raises(IntegrityError):
            validate_settings(dict(doc, anomaly_thresholds=bad), "settings/1")
