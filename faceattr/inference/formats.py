"""How prediction records are written out: a readable table, CSV rows, a streamed JSON array.

A record is what ``AttributePredictor.iter_records`` yields for one input:
``{"file", "error", "faces": [{"box", "confidence", "landmarks", "attributes": {name: {"present",
"probability", "score"}}}], "decision"}``: video inputs add ``"frame"`` and ``"time_s"``, and
``"decision"`` names the rule that made each ``present``.
"""
from __future__ import annotations

import csv
import io
import json
from typing import Iterable, Iterator

from ..data.attributes import ATTRIBUTE_NAMES
from ..errors import InputError

FORMATS = ("table", "json", "csv")
CSV_FIELDS = (["file", "frame", "time_s", "face", "error", "x1", "y1", "x2", "y2", "confidence"]
              + [f"{n}_{k}" for n in ATTRIBUTE_NAMES for k in ("present", "probability", "score")])


def printable(text: str) -> str:
    """``text`` with newlines, tabs and other control characters written as escapes (``\\n``), so a
    file named with one cannot break a line of a table or a message into two."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _where(r: dict) -> str:
    name = printable(r["file"])
    return name if r.get("frame") is None else f"{name} frame {r['frame']} ({r['time_s']:.2f} s)"


def table_text(r: dict) -> str:
    if r["error"]:
        return f"{_where(r)}: ERROR {printable(r['error'])}"
    if not r["faces"]:
        return f"{_where(r)}: no face found"
    lines = []
    for i, face in enumerate(r["faces"]):
        head = f"{_where(r)}  face {i + 1}/{len(r['faces'])}"
        if face.get("box"):
            head += f"  box {[round(v) for v in face['box']]}  confidence {face['confidence']:.3f}"
        lines.append(head)
        attrs = face["attributes"]
        cells = [f"  {'+' if attrs[n]['present'] else '-'} {n:<20} {attrs[n]['probability']:6.1%}"
                 for n in ATTRIBUTE_NAMES]
        for k in range(0, len(cells), 2):
            lines.append("".join(f"{cell:<34}" for cell in cells[k:k + 2]).rstrip())
    return "\n".join(lines)


# A cell that starts with one of these is a formula to a spreadsheet (``=cmd|' /C calc'!A0``):
# text cells that do are written with a leading apostrophe, as OWASP advises against CSV injection.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(text: str) -> str:
    """``text`` as a CSV cell that a spreadsheet shows as text, never runs as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_rows(r: dict, for_spreadsheet: bool = True) -> list[list]:
    """The CSV rows of one record (one per face); ``for_spreadsheet`` writes text cells that
    start like a formula as text (``spreadsheet_text``)."""
    text = spreadsheet_text if for_spreadsheet else str
    where = [text(r["file"]), r.get("frame", ""), "" if r.get("time_s") is None else round(r["time_s"], 3)]
    if r["error"] or not r["faces"]:
        return [where + ["", text(r["error"] or "no face found")] + [""] * (len(CSV_FIELDS) - 5)]
    rows = []
    for i, face in enumerate(r["faces"]):
        box = face.get("box") or [""] * 4
        a = face["attributes"]
        rows.append(where + [i, ""] + list(box) + [face.get("confidence", "")]
                    + [v for n in ATTRIBUTE_NAMES for v in (int(a[n]["present"]), a[n]["probability"], a[n]["score"])])
    return rows


def stream(records: Iterable[dict], fmt: str) -> Iterator[str]:
    """Text pieces of the whole output, one per record (plus the frame of the format): JSON is one
    array, written element by element, so a large folder never sits in memory."""
    if fmt not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "json":
        first = True
        yield "["
        for r in records:
            yield ("\n" if first else ",\n") + json.dumps(r)
            first = False
        yield "\n]\n"
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(CSV_FIELDS)
        yield buf.getvalue()
        for r in records:
            buf.seek(0)
            buf.truncate()
            w.writerows(csv_rows(r))
            yield buf.getvalue()
    else:
        for r in records:
            yield table_text(r) + "\n"
