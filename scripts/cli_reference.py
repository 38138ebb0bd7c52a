"""Write docs/cli.md: every command's ``--help``, as click prints it (as datasette does). A test
(tests/test_docs.py) fails when the file and the commands disagree.

    python scripts/cli_reference.py
"""
from __future__ import annotations

from pathlib import Path

import click
from click.testing import CliRunner

from faceattr.cli import main

OUT = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def commands(group: click.Group, prefix: tuple[str, ...] = ()):
    yield prefix
    for name in sorted(group.commands):
        cmd = group.commands[name]
        if isinstance(cmd, click.Group):
            yield from commands(cmd, prefix + (name,))
        else:
            yield prefix + (name,)


def reference() -> str:
    parts = ["# Command-line reference", "",
             "Generated from `faceattr ... --help` by `python scripts/cli_reference.py`; a test keeps it in sync.", ""]
    runner = CliRunner()
    for path in commands(main):
        text = runner.invoke(main, [*path, "--help"], terminal_width=100, prog_name="faceattr").output
        parts += [f"## faceattr {' '.join(path)}".rstrip(), "", "```", text.rstrip(), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    from faceattr.atomic import write_text
    write_text(OUT, reference())
    print(OUT)
