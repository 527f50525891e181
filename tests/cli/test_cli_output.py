"""The command line's own pieces: one registry of commands, one JSON writer, a hint for every remedy."""

from __future__ import annotations

import ast
import json
import pathlib

import pytest

import amber.cli
from amber.cli.main import COMMANDS, cli
from amber.cli.output import HINTS, Output, fail, print_json, render
from amber.errors import REMEDIES, AmberError, Locked, RepositoryNotFound, UsageError

from cli_helpers import Amber

CLI_DIR = pathlib.Path(amber.cli.__file__).parent

FLAG_OR_COMMAND = ("--", "`amber ")


def test_every_remedy_has_a_hint_naming_a_flag_or_a_command():
    assert set(HINTS) == set(REMEDIES)
    for remedy, hint in HINTS.items():
        assert any(s in hint for s in FLAG_OR_COMMAND), (remedy, hint)


@pytest.mark.parametrize("remedy", sorted(REMEDIES))
def test_fail_appends_the_hint_and_returns_the_exit_code(remedy, capsys):
    assert fail(Locked("refused", remedy=remedy)) == 30
    err = capsys.readouterr().err
    assert err == f"amber: refused ({HINTS[remedy]})\n"


def test_fail_without_a_remedy_prints_the_message_alone(capsys):
    assert fail(UsageError("bad")) == 2
    assert fail(AmberError()) == 1
    assert capsys.readouterr().err == "amber: bad\namber: AmberError\n"


def test_the_library_does_not_name_flags_the_command_line_does(tmp_path):
    user = Amber(tmp_path / "u")
    r = user.run("snapshots", expect=10)
    assert "amber init" in r.stderr and str(user.repo) in r.stderr
    assert RepositoryNotFound("x", remedy="init").remedy == "init"


def test_print_json_is_one_ascii_document(capsys):
    print_json({"name": "caf\udce9", "n": 1, "when": pathlib.Path("/x")})
    out = capsys.readouterr().out
    assert out == json.dumps({"name": "caf\udce9", "n": 1, "when": "/x"}, indent=2, ensure_ascii=True) + "\n"
    assert out.isascii()


def test_render_prints_json_or_text_then_raises(capsys):
    render(Output({"a": 1}, ["human"]), as_json=True)
    assert json.loads(capsys.readouterr().out) == {"a": 1}
    render(Output({"a": 1}, ["one", "two"]))
    assert capsys.readouterr().out == "one\ntwo\n"
    with pytest.raises(Locked):
        render(Output({"a": 1}, "text", Locked("no")), as_json=True)
    assert json.loads(capsys.readouterr().out) == {"a": 1}


def test_commands_are_registered_in_one_list_and_never_import_main():
    assert {c.name for c in COMMANDS} == set(cli.commands)
    for path in CLI_DIR.glob("*_cmd.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.module not in ("main", "amber.cli.main") and not (node.level and node.module == "main"), (
                    f"{path.name} imports main"
                )
                assert "main" not in {a.name for a in node.names} or node.module != "", path.name


def test_every_command_with_json_output_takes_the_flag():
    def walk(group):
        for c in group.commands.values():
            yield from walk(c) if hasattr(c, "commands") else [c]

    with_json = {c.name for c in walk(cli) if any(p.name == "as_json" for p in c.params)}
    assert {
        "backup",
        "snapshots",
        "ls",
        "diff",
        "find",
        "restore",
        "check",
        "forget",
        "prune",
        "lock",
        "init",
        "log",
        "verify",
        "list",
    } <= with_json
