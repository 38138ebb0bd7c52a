"""One bad file costs only its own answer: every decoder fault, of whatever type, is that input's
``ImageError`` naming it, and every other input of the batch is answered (predict, extract, the
transformer; serve in test_serve.py)."""
import io
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from faceattr.cli import main
from faceattr.faces.images import ImageError, load_photo, readable_formats

from conftest import TINY_BUNDLE

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"


def evil_dds() -> bytes:
    """A DDS file whose pixel-format flags Pillow's DDS decoder answers with NotImplementedError
    (the third audit's H1), whatever it is named."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, "DDS")
    data = bytearray(buf.getvalue())
    data[80:84] = struct.pack("<I", 0x2000)
    return bytes(data)


def bad_exif_jpeg() -> bytes:
    """A JPEG whose EXIF segment claims an orientation entry with an offset far past its end."""
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 150, 120)).save(buf, "JPEG", exif=exif.tobytes())
    data = bytearray(buf.getvalue())
    at = data.find(b"Exif\0\0") + 6 + 8  # the first IFD: entry count, then entries
    data[at + 2 + 4: at + 2 + 8] = struct.pack("<I", 0x7FFFFFF0)[: 4]
    return bytes(data)


def _writable_formats():
    Image.init()
    return sorted(Image.SAVE)


def _encoded(fmt: str) -> bytes | None:
    """A small picture in ``fmt``, in the first mode that format saves, or None if none does."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8))
    for mode in ("RGB", "L", "1", "RGBA", "P", "I;16"):
        buf = io.BytesIO()
        try:
            rgb.convert(mode).save(buf, fmt)
        except Exception:  # noqa: BLE001 - this mode or format cannot be written here: try the next
            continue
        return buf.getvalue()
    return None


def _mutations(data: bytes, seed: int) -> list[bytes]:
    """The file cut short, with bytes flipped in its header and its body, and its header doubled."""
    rng = np.random.default_rng(seed)
    out = [data[: len(data) // 2], data[:40], data + data[:64]]
    for lo, hi in ((0, min(64, len(data))), (0, len(data))):
        d = bytearray(data)
        for at in rng.integers(lo, max(hi, lo + 1), 6):
            d[at] ^= int(rng.integers(1, 256))
        out.append(bytes(d))
    return out


def test_every_pillow_format_and_its_mutations_give_an_image_or_an_image_error():
    """Files of every format Pillow writes, whole and mutated, as bytes and as files named .jpg:
    each gives a picture or the ImageError of that input, never another exception."""
    seen = 0
    for k, fmt in enumerate(_writable_formats()):
        data = _encoded(fmt)
        if data is None:
            continue
        for variant in [data, *_mutations(data, k)]:
            try:
                img, _ = load_photo(variant)
            except ImageError as e:
                assert str(e).startswith(f"<{len(variant)} bytes>: "), (fmt, str(e))
            else:
                assert img.mode == "RGB" and fmt in readable_formats() + ("MPO",), fmt
            seen += 1
    assert seen > 100


def test_a_format_faceattr_does_not_list_is_refused_whatever_its_name(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, "TGA")
    (tmp_path / "face.jpg").write_bytes(buf.getvalue())
    with pytest.raises(ImageError, match=r"face\.jpg: cannot read as an image \(not a JPEG, PNG"):
        load_photo(tmp_path / "face.jpg")


def test_a_crafted_dds_named_jpg_is_that_files_error():
    with pytest.raises(ImageError, match="cannot read as an image"):
        load_photo(evil_dds())


def test_a_decoder_fault_of_any_type_becomes_the_inputs_image_error(tmp_path, monkeypatch):
    """Whatever Pillow raises while decoding (here an IndexError, as its plugins do on crafted
    files) is the input's ImageError, with the exception's type named."""
    (tmp_path / "x.png").write_bytes(PHOTO.read_bytes())
    monkeypatch.setattr(Image.Image, "load", lambda self: (_ for _ in ()).throw(IndexError("tile out of range")))
    with pytest.raises(ImageError, match=r"x\.png: cannot read as an image \(IndexError: tile out of range\)"):
        load_photo(tmp_path / "x.png")


@pytest.fixture
def mixed_folder(tmp_path) -> Path:
    """Two good photos and three crafted files, one of each kind of fault."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(PHOTO.read_bytes())
    (folder / "b.png").write_bytes(PHOTO.read_bytes())
    (folder / "evil.jpg").write_bytes(evil_dds())
    (folder / "exif.jpg").write_bytes(bad_exif_jpeg())
    (folder / "cut.png").write_bytes(PHOTO.read_bytes()[:3000])
    return folder


def _answered(records) -> dict:
    return {Path(r["file"]).name: r["error"] for r in records}


def test_predict_answers_every_good_photo_beside_crafted_files(mixed_folder):
    r = CliRunner().invoke(main, ["predict", str(mixed_folder), "--format", "json", "--weights", str(TINY_BUNDLE)])
    records = json.loads(r.stdout)
    errors = _answered(records)
    assert errors["a.png"] is None and errors["b.png"] is None
    assert "evil.jpg: cannot read as an image" in errors["evil.jpg"]
    assert "cut.png" in errors["cut.png"]
    assert r.exit_code == 1 and "evil.jpg" in r.stderr
    assert len(records) == 5  # exif.jpg too: answered or its own error


def test_extract_writes_the_good_rows_beside_crafted_files_and_resume_finishes(mixed_folder, tmp_path):
    out = tmp_path / "f.parquet"
    args = ["extract", str(mixed_folder), "--out", str(out), "--weights", str(TINY_BUNDLE)]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 1 and "evil.jpg: cannot read as an image" in first.stderr, first.output
    import pandas as pd
    rows = pd.read_parquet(out)
    files = set(rows["file"].map(lambda f: Path(f).name))
    assert {"a.png", "b.png"} <= files and "evil.jpg" not in files
    again = CliRunner().invoke(main, args + ["--resume"])
    assert "wrote 0 faces" in again.stdout and len(pd.read_parquet(out)) == len(rows), again.output


def test_the_transformer_gives_a_nan_row_and_a_warning_for_a_crafted_file(mixed_folder):
    from faceattr.inference.transformer import MultiViewVAEFeatures
    t = MultiViewVAEFeatures(weights=str(TINY_BUNDLE)).fit()
    with pytest.warns(UserWarning, match=r"input 1 \(.*evil\.jpg\): .*cannot read as an image"):
        x = t.transform([str(mixed_folder / "a.png"), str(mixed_folder / "evil.jpg")])
    assert np.isfinite(x[0]).all() and np.isnan(x[1]).all()


def test_a_file_name_that_is_not_utf8_gets_its_rows_and_resumes(tmp_path):
    """A name whose bytes are not UTF-8 is written with \\x escapes (valid in parquet and CSV), its
    row is found again by a resume, and the other inputs' rows are there."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.png").write_bytes(PHOTO.read_bytes())
    with open(os.path.join(os.fsencode(folder), b"bad\xff.png"), "wb") as fh:
        fh.write(PHOTO.read_bytes())
    import pandas as pd
    for suffix in (".parquet", ".csv"):
        out = tmp_path / f"o{suffix}"
        args = ["extract", str(folder), "--out", str(out), "--weights", str(TINY_BUNDLE)]
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 0, r.output
        df = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
        assert sorted(Path(f).name for f in df["file"]) == ["bad\\xff.png", "good.png"]
        again = CliRunner().invoke(main, args + ["--resume"])
        assert again.exit_code == 0 and "2 already there" in again.stdout, again.output
