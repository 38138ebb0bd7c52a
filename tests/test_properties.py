"""Property-based tests (hypothesis) of the readers a user's files go through: whatever the bytes
or lines, the answer is a decoded result or the reader's own named error, never anything else.
(The feature writer's kill/resume property is in tests/test_extract_safety.py.)"""
import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from faceattr.data.attributes import ATTRIBUTE_NAMES
from faceattr.data.celeba import read_attributes, read_partition
from faceattr.errors import DatasetError
from faceattr.faces.images import ImageError, load_rgb

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"
FIXTURES = [HealthCheck.function_scoped_fixture]


def _encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.open(PHOTO).convert("RGB").resize((48, 48)).save(buf, format=fmt)
    return buf.getvalue()


SEEDS = {fmt: _encoded(fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")}


def _decodes_or_names_the_problem(source, name: str) -> None:
    try:
        img = load_rgb(source)
    except ImageError as e:
        assert name in str(e) and "object at 0x" not in str(e)
        return
    assert img.mode == "RGB" and min(img.size) >= 1
    np.asarray(img)  # the pixels really decode


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2048))
def test_any_bytes_decode_or_raise_an_image_error(data):
    _decodes_or_names_the_problem(data, f"<{len(data)} bytes>")


@settings(max_examples=150, deadline=None)
@given(fmt=st.sampled_from(sorted(SEEDS)), cut=st.floats(0, 1),
       flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=8))
def test_damaged_real_images_decode_or_raise_an_image_error(fmt, cut, flips):
    data = bytearray(SEEDS[fmt][: max(1, int(len(SEEDS[fmt]) * cut))] if cut < 1 else SEEDS[fmt])
    for where, value in flips:
        data[min(int(where * len(data)), len(data) - 1)] = value
    _decodes_or_names_the_problem(bytes(data), f"<{len(data)} bytes>")


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURES)
@given(data=st.binary(max_size=1024), suffix=st.sampled_from([".jpg", ".png", ".webp", ".avif", ".gif", ""]))
def test_any_file_decodes_or_raises_an_image_error_naming_it(tmp_path, data, suffix):
    path = tmp_path / f"input{suffix}"
    path.write_bytes(data)
    _decodes_or_names_the_problem(path, str(path))


# ---- the CelebA lists --------------------------------------------------------------------------
names = st.one_of(st.sampled_from([f"{i:06d}.jpg" for i in range(1, 6)]),
                  st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12))
values = st.lists(st.sampled_from(["1", "-1", "0", "2", "x", ""]), min_size=38, max_size=42)
attr_rows = st.tuples(names, values).map(lambda nv: " ".join([nv[0], *nv[1]]))
part_rows = st.tuples(names, st.sampled_from(["0", "1", "2", "3", "", "x"])).map(" ".join)


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURES)
@given(rows=st.lists(attr_rows, max_size=6), count=st.integers(-1, 8), header=st.booleans(),
       newline=st.sampled_from(["\n", "\r\n"]))
def test_any_attribute_list_reads_whole_or_raises_a_celeba_error(tmp_path, rows, count, header, newline):
    path = tmp_path / "list_attr_celeba.txt"
    lines = [str(count), " ".join(ATTRIBUTE_NAMES) if header else "Smiling"] + rows
    path.write_text(newline.join(lines), encoding="utf-8")
    try:
        files, labels = read_attributes(path)
    except DatasetError as e:
        assert str(path) in str(e)
        return
    assert labels.shape == (len(files), len(ATTRIBUTE_NAMES)) and set(np.unique(labels)) <= {0, 1}
    assert len(set(files)) == len(files) == count  # no name twice, the count holds
    assert all("/" not in f for f in files)


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURES)
@given(rows=st.lists(part_rows, max_size=8))
def test_any_partition_list_reads_whole_or_raises_a_celeba_error(tmp_path, rows):
    path = tmp_path / "list_eval_partition.txt"
    path.write_text("\n".join(rows), encoding="utf-8")
    try:
        out = read_partition(path)
    except DatasetError as e:
        assert str(path) in str(e)
        return
    listed = [r.split()[0] for r in rows if r.split()]
    assert sorted(out) == sorted(listed)  # every row kept, none twice
    assert set(out.values()) <= {0, 1, 2}
