"""Every Python example in README.md and docs/ runs as written (sybil reads the blocks from the
Markdown itself, so no copy of an example lives here); one that must not run says why in the
Markdown (``<!-- skip: next ... -->``). The blocks of a page run in order, from the repository's
root, sharing one namespace, as a reader would run them."""
from pathlib import Path
from unittest import SkipTest

import pytest

sybil = pytest.importorskip("sybil", reason="the docs' examples run with sybil (the [test] extra)")
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PAGES = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md")
                              if "```python" in p.read_text(encoding="utf-8"))]


@pytest.mark.weights
@pytest.mark.parametrize("page", PAGES)
def test_every_python_example_of_the_page_runs(page, monkeypatch):
    monkeypatch.chdir(REPO)
    document = sybil.Sybil(parsers=[PythonCodeBlockParser(), SkipParser()]).parse(REPO / page)
    ran = skipped = 0
    for example in document:
        try:
            example.evaluate()
        except SkipTest:  # a block the page says must not run, and why
            skipped += 1
            continue
        ran += 1
    assert ran + skipped, f"{page}: no example"
