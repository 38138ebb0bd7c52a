"""Video input (one record per sampled frame, with timestamps) and annotated pictures."""
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import write_clip
from faceattr.cli import main

av = pytest.importorskip("av", reason="video input needs the [video] extra: pip install 'faceattr[video]'")
PHOTO = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"


@pytest.fixture(scope="module")
def clip(tmp_path_factory, celeba_root):
    """10 celeba-mini faces as a 5 fps MPEG-4 clip (176x216)."""
    files = sorted((celeba_root / "img_align_celeba").glob("*.jpg"))[:10]
    return write_clip(tmp_path_factory.mktemp("video") / "clip.mp4", files)


def test_predict_video_gives_one_record_per_sampled_frame(clip):
    r = CliRunner().invoke(main, ["predict", str(clip), "--every", "2", "--format", "json"])
    assert r.exit_code == 0, r.output
    recs = json.loads(r.stdout)
    assert [x["frame"] for x in recs] == [0, 2, 4, 6, 8]
    assert [x["time_s"] for x in recs] == pytest.approx([0.0, 0.4, 0.8, 1.2, 1.6])
    assert all(x["file"] == str(clip) and x["error"] is None for x in recs)
    assert sum(len(x["faces"]) >= 1 for x in recs) >= 4
    assert all(len(f["attributes"]) == 40 for x in recs for f in x["faces"])


def test_video_fps_sampling_and_csv(clip):
    r = CliRunner().invoke(main, ["predict", str(clip), "--fps", "1", "--format", "csv"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("file,frame,time_s,face")
    frames = sorted({int(l.split(",")[1]) for l in lines[1:]})
    assert frames == [0, 5]  # 5 fps sampled at 1 fps: frames at 0 s and 1 s


def test_corrupt_video_is_a_named_error_and_the_others_go_on(clip, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(clip.read_bytes()[:300])
    r = CliRunner().invoke(main, ["predict", str(bad), str(PHOTO), "--format", "json"])
    assert r.exit_code == 1
    recs = json.loads(r.stdout)
    assert recs[0]["file"] == str(bad) and str(bad) in recs[0]["error"] and "video" in recs[0]["error"]
    assert recs[-1]["file"] == str(PHOTO) and len(recs[-1]["faces"]) == 1


def test_extract_takes_videos(clip, tmp_path):
    import pandas as pd
    out = tmp_path / "f.parquet"
    r = CliRunner().invoke(main, ["extract", str(clip), str(PHOTO), "--every", "5", "--out", str(out)])
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(out)
    video = df[df["file"] == str(clip)]
    assert sorted(set(video["frame"])) == [0, 5] and list(video["time_s"].round(2).unique()) == [0.0, 1.0]
    photo = df[df["file"] == str(PHOTO)]
    assert list(photo["frame"]) == [-1] and np.isnan(photo["time_s"]).all()


def test_annotate_writes_pictures(clip, tmp_path):
    d = tmp_path / "ann"
    r = CliRunner().invoke(main, ["predict", str(PHOTO), str(clip), "--every", "5", "--annotate", str(d),
                                  "--format", "json"])
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in d.iterdir())
    clip_name = Path(clip).name
    assert names == sorted(["astronaut.png.annotated.png", f"{clip_name}.frame000000.annotated.png",
                            f"{clip_name}.frame000005.annotated.png"])
    drawn, plain = np.asarray(Image.open(d / "astronaut.png.annotated.png").convert("RGB")), np.asarray(Image.open(PHOTO).convert("RGB"))
    assert drawn.shape == plain.shape
    box = [round(v) for v in json.loads(r.stdout)[0]["faces"][0]["box"]]
    # The box outline is drawn: the pixels along its top edge changed.
    edge = (drawn[box[1], box[0]:box[2]].astype(int) - plain[box[1], box[0]:box[2]]).any(axis=-1)
    assert edge.mean() > 0.8
