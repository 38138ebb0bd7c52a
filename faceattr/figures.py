"""The benchmark's figures: drawn without pyplot (the caller's backend is left alone), laid out by
fixed margins and written atomically.

Fixed margins, in inches, rather than ``tight_layout``: tight_layout draws the whole figure once
more to measure its text, which cost about a third of the time the benchmark spent writing its
figures; the text here is known in advance (the 40 attribute names, fixed titles), so margins
sized for the longest of it leave nothing clipped.
"""
from __future__ import annotations

from dataclasses import dataclass

from .atomic import atomic_path


@dataclass(frozen=True)
class Margins:
    """Space around and between the panels, in inches."""

    left: float = 0.7
    right: float = 0.2
    top: float = 0.4
    bottom: float = 0.55
    between: float = 0.0  # between panels side by side


def new_figure(width: float, height: float, dpi: int = 100):
    """A matplotlib ``Figure`` of ``width`` x ``height`` inches, not registered with pyplot."""
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), dpi=dpi)


def save_png(fig, path, margins: Margins, n_columns: int = 1) -> None:
    """Lay ``fig``'s panels (``n_columns`` side by side) out by ``margins`` and write it to
    ``path`` as a PNG, through a temporary file renamed into place."""
    width, height = fig.get_size_inches()
    panel = (width - margins.left - margins.right - margins.between * (n_columns - 1)) / n_columns
    fig.subplots_adjust(left=margins.left / width, right=1 - margins.right / width,
                        bottom=margins.bottom / height, top=1 - margins.top / height,
                        wspace=margins.between / panel if n_columns > 1 else None)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
