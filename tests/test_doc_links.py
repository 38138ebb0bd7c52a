"""Every relative link and image in the Markdown a user reads resolves to a file of the
repository, and every ``#anchor`` to a heading of its target (as GitHub renders them)."""
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted({*REPO.glob("*.md"), *REPO.glob("docs/**/*.md"), *REPO.glob("pretrained/*.md"),
                *REPO.glob("benchmarks/results/**/*.md"), *REPO.glob("experiments/results/**/*.md")})
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"```.*?```", re.S)
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but hyphens dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(m.group(1).replace("`", "")) for m in re.finditer(r"^#+\s+(.*)$", text, re.M)}


def links(page: Path):
    for m in LINK.finditer(CODE.sub("", page.read_text(encoding="utf-8"))):
        target = m.group(1)
        if not re.match(r"[a-z]+:", target):  # http:, https:, mailto: are not the repository's
            yield target


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(REPO)}")
    assert not broken, broken


def test_anchors_are_read_as_github_writes_them(tmp_path):
    page = tmp_path / "a.md"
    page.write_text("# The Python API\n\n## What faceattr found: `FrameResult`\n\n```\n# not a heading\n```\n")
    assert anchors(page) == {"the-python-api", "what-faceattr-found-frameresult"}
    page.write_text("[ok](a.md#the-python-api) [gone](a.md#nowhere) [file](b.md) [web](https://x.org/y)\n")
    assert list(links(page)) == ["a.md#the-python-api", "a.md#nowhere", "b.md"]
