"""The command line: help texts exist and a bare group prints its help."""

import pytest

from augrgb.cli import build_parser, main


def test_top_level_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "usage: augrgb" in capsys.readouterr().out


def test_every_option_has_help_text():
    """Every option of every command explains itself in --help."""
    def walk(parser, trail):
        for action in parser._actions:
            if action.dest in ("help", "version") or action.__class__.__name__ == "_SubParsersAction":
                if action.__class__.__name__ == "_SubParsersAction":
                    for name, sub in action.choices.items():
                        yield from walk(sub, trail + [name])
                continue
            yield trail, action

    missing = [f"{' '.join(t)} {a.option_strings or a.dest}" for t, a in walk(build_parser(), ["augrgb"]) if not a.help]
    assert missing == []
