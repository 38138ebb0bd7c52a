"""Every ``$ faceattr ...`` command shown in README.md and docs/guide.md runs as written and exits
0; where the page shows its output, the lines shown are there (the attribute names and their
signs, the box line: not the percentages, which move with the CPU's rounding)."""
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from faceattr.cli import main

REPO = Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/guide.md"]
BLOCK = re.compile(r"```[a-z]*\n(.*?)```", re.S)
ATTRIBUTE_CELL = re.compile(r"([+-]) (\w+)\s+\d+\.\d%")


def shown_commands(page: str) -> list[tuple[str, list[str]]]:
    """(command, the output lines shown after it) of each ``$ faceattr`` line of the page."""
    out = []
    for block in BLOCK.findall((REPO / page).read_text(encoding="utf-8")):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("$ faceattr "):
                rest = lines[i + 1:]
                end = next((k for k, l in enumerate(rest) if l.startswith("$ ")), len(rest))
                out.append((line[2:], rest[:end]))
    return out


def test_the_pages_show_commands():
    assert all(shown_commands(page) for page in PAGES)


@pytest.mark.weights
@pytest.mark.parametrize("page", PAGES)
def test_every_shown_command_runs_and_prints_what_the_page_shows(page, monkeypatch):
    monkeypatch.chdir(REPO)
    for command, shown in shown_commands(page):
        r = CliRunner().invoke(main, shlex.split(command)[1:])
        assert r.exit_code == 0, (command, r.output)
        printed = r.stdout
        cells = [c for line in shown for c in ATTRIBUTE_CELL.findall(line)]
        got = dict((name, sign) for sign, name in ATTRIBUTE_CELL.findall(printed))
        assert all(got.get(name) == sign for sign, name in cells), (command, cells, got)
        heads = [line.split("  confidence")[0] for line in shown if "  face " in line]
        assert all(h in printed for h in heads), (command, heads, printed[:300])
