"""What extract's writer promises (faceattr.inference.feature_writer): one writer per output,
nothing replaced that the run did not make, no row lost or doubled whatever instant a run is
killed at, a resume only with the same options. The writer is driven with small synthetic chunks
(fast, so every stage and many kill/resume interleavings are tried), and the real command is
killed at each stage once."""
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import write_clip
from faceattr.cli import main
from faceattr.inference import feature_writer as fw
from faceattr.inference.extract import FeatureChunk
from faceattr.inference.feature_writer import FeatureWriter, OutputInUse, row_key

NAMES = ["f0", "f1"]
OPTIONS = {"align": "auto", "largest_face": False}
STAGES = ("part", "merge", "rename", "linked", "published", "cleanup")
INPUTS = [f"img{i:03d}.jpg" for i in range(12)]
KILLED = 9
PHOTO_FOR_VIDEO = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"


def _chunk(names) -> FeatureChunk:
    feats = np.array([[len(n), int(Path(n).name[3:6])] for n in names], np.float32).reshape(-1, len(NAMES))
    return FeatureChunk(files=list(names), frames=[-1] * len(names), times=[math.nan] * len(names),
                        faces=[0] * len(names), features=feats, inputs=len(names))


def run(out: Path, inputs, chunk=3, resume=False, overwrite=False, options=OPTIONS) -> int:
    """What extract_to_file does with the writer: skip what is there, write the rest, merge."""
    with FeatureWriter(out, NAMES, options, resume=resume, overwrite=overwrite) as w:
        done = w.done_keys()
        todo = [n for n in inputs if row_key(n, -1, os.getcwd()) not in done]
        for k in range(0, len(todo), chunk):
            w.write(_chunk(todo[k:k + chunk]))
        return w.close()


def rows(out: Path) -> list[str]:
    return sorted(fw._read(out)["file"])


def killed_at(stage: str, nth: int, fn, *args, **kw) -> int:
    """Run ``fn`` in a forked child that dies (os._exit, like a SIGKILL: no cleanup) the ``nth``
    time it reaches ``stage``; the child's exit status (KILLED, or 0 if it finished first)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        seen = {"n": 0}

        def reached(s):
            if s == stage:
                seen["n"] += 1
                if seen["n"] == nth:
                    os._exit(KILLED)
        try:
            fw._reached = reached
            fn(*args, **kw)
            os._exit(0)
        except BaseException:  # noqa: BLE001 - any other end is a failure the parent reports
            os._exit(1)
    deadline = time.time() + 60
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"the child killed at {stage} hung")


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---- one writer per output ---------------------------------------------------------------------
def test_a_second_writer_is_refused_while_the_first_holds_the_output(in_tmp):
    out = in_tmp / "f.parquet"
    with FeatureWriter(out, NAMES, OPTIONS) as first:
        first.write(_chunk(INPUTS[:3]))
        for kw in ({}, {"resume": True}, {"overwrite": True}):
            with pytest.raises(OutputInUse, match="another faceattr extract is writing it"):
                FeatureWriter(out, NAMES, OPTIONS, **kw)
        first.write(_chunk(INPUTS[3:6]))
        assert first.close() == 6
    assert rows(out) == sorted(INPUTS[:6])


def test_a_killed_writer_releases_its_lock(in_tmp):
    out = in_tmp / "f.parquet"
    assert killed_at("part", 2, run, out, INPUTS) == KILLED
    assert run(out, INPUTS, resume=True) == len(INPUTS)  # not "in use": the lock died with it


@pytest.mark.slow
def test_real_processes_one_writer_then_a_sigkill_and_a_resume(tmp_path, celeba_root):
    """Two real extracts on one output (the second is refused while the first writes), then the
    first SIGKILLed part-way: every part on disk is whole, and a resume ends with every row once."""
    import pandas as pd
    from conftest import TINY_BUNDLE
    from faceattr.data.celeba import CelebA
    paths = [str(p) for p in CelebA.load(celeba_root, "val", max_images=120).paths()]
    out, parts = tmp_path / "same.parquet", tmp_path / "same.parquet.parts"
    args = ["extract", *paths, "--out", str(out), "--chunk-size", "4", "--weights", str(TINY_BUNDLE)]
    first = subprocess.Popen([sys.executable, "-m", "faceattr.cli", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("part-*"))) < 2 and first.poll() is None:
        time.sleep(0.05)
    second = CliRunner().invoke(main, ["extract", *paths[:8], "--out", str(out), "--weights", str(TINY_BUNDLE)])
    assert second.exit_code == 1 and "another faceattr extract is writing it" in second.output, second.output
    assert first.poll() is None, "the first run finished before it could be killed"
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert not out.exists()
    written = pd.read_parquet(parts)  # every part on disk is whole
    assert 8 <= len(written) and written["file"].nunique() < len(paths)
    assert not written.duplicated(["file", "face"]).any()
    r = CliRunner().invoke(main, [*args, "--resume"])
    assert r.exit_code == 0, r.output
    assert f"{written['file'].nunique()} already there" in r.output and not parts.exists()
    df = pd.read_parquet(out)
    assert set(df["file"]) == set(paths) and not df.duplicated(["file", "face"]).any()
    r = CliRunner().invoke(main, [*args, "--resume"])  # resuming a finished file adds nothing
    assert r.exit_code == 0 and "wrote 0 faces" in r.output and len(pd.read_parquet(out)) == len(df)


# ---- nothing replaced that the run did not make --------------------------------------------------
def test_a_parts_folder_the_user_had_is_left_alone(in_tmp):
    out = in_tmp / "f.parquet"
    mine = in_tmp / "f.parquet.parts"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    for kw in ({}, {"resume": True}, {"overwrite": True}):
        with pytest.raises(FileExistsError, match="was not made by faceattr extract"):
            run(out, INPUTS, **kw)
    assert (mine / "notes.txt").read_text() == "mine" and not out.exists()


def test_an_existing_output_is_kept_unless_resume_or_overwrite(in_tmp):
    out = in_tmp / "f.parquet"
    run(out, INPUTS[:4])
    before = out.read_bytes()
    with pytest.raises(FileExistsError, match="already exists; --resume adds to it, --overwrite replaces it"):
        run(out, INPUTS)
    assert out.read_bytes() == before
    assert run(out, INPUTS[4:6], overwrite=True) == 2 and rows(out) == INPUTS[4:6]


def test_an_output_that_appears_during_the_run_is_not_replaced(in_tmp):
    out = in_tmp / "f.parquet"
    with FeatureWriter(out, NAMES, OPTIONS) as w:
        w.write(_chunk(INPUTS[:3]))
        out.write_text("someone else's file")
        with pytest.raises(FileExistsError, match="appeared while the run was writing"):
            w.close()
    assert out.read_text() == "someone else's file"


# ---- resume: same inputs, same options ----------------------------------------------------------
def test_resume_matches_resolved_paths_not_strings(in_tmp):
    out = in_tmp / "f.parquet"
    (in_tmp / "c6").mkdir()
    relative = [f"c6/{n}" for n in INPUTS[:4]]
    run(out, relative)
    absolute = [str(in_tmp / r) for r in relative]
    assert run(out, absolute, resume=True) == 4


@pytest.mark.parametrize("fmt", [".parquet", ".npz"])
def test_resume_with_other_options_is_refused_naming_the_option(in_tmp, fmt):
    out = in_tmp / f"f{fmt}"
    run(out, INPUTS[:4])
    with pytest.raises(ValueError, match="written with align='auto', this run has align='celeba'"):
        run(out, INPUTS, resume=True, options={**OPTIONS, "align": "celeba"})
    assert killed_at("part", 1, run, out, INPUTS, resume=True) == KILLED  # now the parts hold them
    with pytest.raises(ValueError, match="largest_face"):
        run(out, INPUTS, resume=True, options={**OPTIONS, "largest_face": True})


def test_a_real_resume_with_aligned_after_detection_is_refused(tmp_path, celeba_root):
    from faceattr.data.celeba import CelebA
    paths = [str(p) for p in CelebA.load(celeba_root, "val", max_images=4).paths()]
    out = tmp_path / "f.parquet"
    assert CliRunner().invoke(main, ["extract", *paths[:2], "--out", str(out)]).exit_code == 0
    r = CliRunner().invoke(main, ["extract", *paths, "--out", str(out), "--resume", "--aligned"])
    assert r.exit_code == 1 and "align='auto', this run has align='celeba'" in r.output


# ---- no row lost or doubled, whatever instant a run dies at -------------------------------------
@pytest.mark.parametrize("fmt", [".parquet", ".csv", ".npz"])
@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("onto_existing", [False, True])
def test_a_kill_at_any_stage_then_resume_gives_every_row_once(in_tmp, fmt, stage, onto_existing):
    out = in_tmp / f"f{fmt}"
    if onto_existing:
        run(out, INPUTS[:5])
    status = killed_at(stage, 1, run, out, INPUTS, resume=onto_existing)
    assert status in (KILLED, 0)
    assert run(out, INPUTS, resume=True) == len(INPUTS)
    assert rows(out) == sorted(INPUTS)
    assert not (in_tmp / f"f{fmt}.parts").exists()
    record = [fw.csv_record(out).name] if fmt == ".csv" else []  # a CSV's options, beside it
    assert sorted(p.name for p in in_tmp.iterdir()) == sorted([f"f{fmt}", *record])  # no temporary file left


kill_points = st.lists(st.tuples(st.sampled_from(STAGES), st.integers(1, 4)), max_size=4)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kills=kill_points, first=st.integers(0, len(INPUTS)), chunk=st.integers(1, 5),
       fmt=st.sampled_from([".parquet", ".csv", ".npz"]))
@pytest.mark.slow
def test_any_interleaving_of_kills_and_resumes_gives_the_uninterrupted_rows(tmp_path_factory, kills, first,
                                                                             chunk, fmt):
    d = tmp_path_factory.mktemp("interleave")
    out = d / f"f{fmt}"
    if first:
        run(out, INPUTS[:first], chunk=chunk)
    for stage, nth in kills:
        assert killed_at(stage, nth, run, out, INPUTS, chunk=chunk, resume=True) in (KILLED, 0)
    run(out, INPUTS, chunk=chunk, resume=True)
    assert rows(out) == sorted(INPUTS)
    features = fw._read(out)["features"] if fmt == ".npz" else None
    if features is not None:
        assert len(features) == len(INPUTS)


KILL_SCRIPT = """
import os, sys
import faceattr.inference.feature_writer as fw
stage, nth, seen = sys.argv[1], int(sys.argv[2]), [0]
def reached(s):
    if s == stage:
        seen[0] += 1
        if seen[0] == nth:
            os._exit(9)
fw._reached = reached
from faceattr.cli import main
main(sys.argv[3:])
"""


def _killed_command(stage: str, nth: int, args) -> None:
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, stage, str(nth), *args], capture_output=True,
                          timeout=300)
    assert proc.returncode == KILLED, proc.stderr.decode()


@pytest.mark.parametrize("stage", ["rename", "cleanup"])  # "part": the video test below; all six: above
def test_the_real_command_killed_at_each_stage_resumes_to_every_row_once(tmp_path, celeba_root, stage):
    import pandas as pd
    from faceattr.data.celeba import CelebA
    paths = [str(p) for p in CelebA.load(celeba_root, "val", max_images=6).paths()]
    out = tmp_path / "f.parquet"
    args = ["extract", *paths, "--out", str(out), "--aligned", "--chunk-size", "2"]
    _killed_command(stage, 1, args)
    r = CliRunner().invoke(main, [*args, "--resume"])
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(out)
    assert sorted(df["file"]) == sorted(paths) and not df.duplicated(["file", "face"]).any()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.parquet"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory, celeba_root):
    """A 6-frame video of CelebA faces, one face per frame."""
    pytest.importorskip("av")
    from faceattr.data.celeba import CelebA
    files = CelebA.load(celeba_root, "val", max_images=6).paths()
    return write_clip(tmp_path_factory.mktemp("video") / "clip.avi", files)


@pytest.fixture(scope="module")
def clip_rows(clip, tmp_path_factory):
    import pandas as pd
    out = tmp_path_factory.mktemp("whole") / "f.parquet"
    r = CliRunner().invoke(main, ["extract", str(clip), str(PHOTO_FOR_VIDEO), "--out", str(out)])
    assert r.exit_code == 0, r.output
    return pd.read_parquet(out).sort_values(["file", "frame", "face"]).reset_index(drop=True)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", [".parquet", ".csv", ".npz"])
def test_a_video_killed_part_way_resumes_to_the_uninterrupted_rows(tmp_path, clip, clip_rows, fmt):
    """Chunks are cut by frame, so a kill can fall inside a video: its other frames must still come."""
    import pandas as pd
    out = tmp_path / f"f{fmt}"
    args = ["extract", str(clip), str(PHOTO_FOR_VIDEO), "--out", str(out), "--chunk-size", "2"]
    _killed_command("part", 2, args)  # 4 of the video's 6 frames written
    r = CliRunner().invoke(main, [*args, "--resume"])
    assert r.exit_code == 0, r.output
    assert "4 already there" in r.output
    d = fw._read(out)
    got = pd.DataFrame({"file": d["file"], "frame": d["frame"], "face": d["face"]})
    got = got.sort_values(["file", "frame", "face"]).reset_index(drop=True)
    assert got.equals(clip_rows[["file", "frame", "face"]].astype(got.dtypes.to_dict()))


# ---- the cache beside another process ---------------------------------------------------------
CACHE_SCRIPT = """
import sys, numpy as np
from faceattr import cache
folder, seed = sys.argv[1], int(sys.argv[2])
for i in range(150):
    k = (i * 7 + seed) % 12
    a = cache.cached_array(f"features-{k}.npy", lambda a: a.shape == (64, 64),
                           lambda: np.full((64, 64), k, np.float64), folder=folder)
    assert (a == k).all(), (k, a[0, 0])
    if i % 25 == 0:
        cache.clear(folder)
print("ok")
"""


def test_two_processes_share_a_small_cache_without_errors_or_wrong_values(tmp_path):
    env = {**os.environ, "FACEATTR_CACHE_MAX_GB": str(5 * 64 * 64 * 8 / 1e9)}  # room for ~5 of 12 entries
    procs = [subprocess.Popen([sys.executable, "-W", "error", "-c", CACHE_SCRIPT, str(tmp_path), str(seed)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) for seed in (0, 5)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and out.strip() == b"ok", err.decode()[-2000:]
    assert not list(tmp_path.glob("*.tmp"))


# ---- resume from another folder, CSV's options, the views' identity, a full disk --------------
def _run_keyed(out: Path, inputs, resume=False, options=OPTIONS) -> int:
    """``run``, skipping as extract does: through the writer's own key of this run's names."""
    with FeatureWriter(out, NAMES, options, resume=resume) as w:
        done = w.done_keys()
        todo = [n for n in inputs if w.key(n, -1) not in done]
        if todo:
            w.write(_chunk(todo))
        return w.close()


def test_a_resume_from_another_folder_doubles_no_row_and_keeps_names_relative_to_one(in_tmp, monkeypatch):
    """The third audit's M3: (cd a5 && extract 000014.jpg --out o2.parquet), then from the parent
    extract a5/000014.jpg a5/img001.jpg --out a5/o2.parquet --resume."""
    (in_tmp / "a5").mkdir()
    monkeypatch.chdir(in_tmp / "a5")
    assert _run_keyed(Path("o2.parquet"), ["img000.jpg"]) == 1
    monkeypatch.chdir(in_tmp)
    assert _run_keyed(Path("a5/o2.parquet"), ["a5/img000.jpg", "a5/img001.jpg"], resume=True) == 2
    assert rows(in_tmp / "a5" / "o2.parquet") == ["img000.jpg", "img001.jpg"]  # both relative to a5/
    assert _run_keyed(Path("a5/o2.parquet"), [str(in_tmp / "a5" / "img001.jpg")], resume=True) == 2


def test_a_real_resume_from_another_folder_adds_nothing_twice(tmp_path, celeba_root, monkeypatch):
    import pandas as pd
    photo = next(iter(sorted((celeba_root / "img_align_celeba").glob("*.jpg"))))
    (tmp_path / "a5").mkdir()
    (tmp_path / "a5" / photo.name).write_bytes(photo.read_bytes())
    monkeypatch.chdir(tmp_path / "a5")
    assert CliRunner().invoke(main, ["extract", photo.name, "--out", "o2.parquet"]).exit_code == 0
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["extract", f"a5/{photo.name}", "--out", "a5/o2.parquet", "--resume"])
    assert r.exit_code == 0 and "1 already there" in r.stdout, r.output
    assert len(pd.read_parquet(tmp_path / "a5" / "o2.parquet")) == 1


def test_a_resume_onto_a_finished_csv_with_other_options_is_refused(in_tmp):
    """The third audit's L16: a CSV keeps its options in a record beside it."""
    out = in_tmp / "f.csv"
    run(out, INPUTS[:4])
    assert fw.csv_record(out).is_file()
    with pytest.raises(ValueError, match="written with align='auto', this run has align='celeba'"):
        run(out, INPUTS, resume=True, options={**OPTIONS, "align": "celeba"})
    assert run(out, INPUTS[:6], resume=True) == 6  # the same options: added to


def test_a_resume_onto_a_csv_without_its_record_or_changed_since_is_refused(in_tmp):
    out = in_tmp / "f.csv"
    run(out, INPUTS[:4])
    out.write_text(out.read_text() + "img999.jpg,-1,,0,1,2\n")  # changed by someone: the record is stale
    with pytest.raises(ValueError, match="its record .f.csv.faceattr.json is missing or describes another file"):
        run(out, INPUTS, resume=True)
    fw.csv_record(out).unlink()
    with pytest.raises(ValueError, match="missing or describes another file"):
        run(out, INPUTS, resume=True)
    assert run(out, INPUTS[:2], overwrite=True) == 2


def test_new_heads_in_the_bundle_do_not_stop_a_resume_other_views_do(in_tmp):
    """The third audit's L18: the identity is the views' sha256; the bundle's (heads, vectors
    included) is recorded beside it and compared only where an output predates it."""
    first = {**OPTIONS, "views_sha256": "v1", "weights_sha256": "b1"}
    run(in_tmp / "f.parquet", INPUTS[:3], options=first)
    assert run(in_tmp / "f.parquet", INPUTS[:5], resume=True, options={**first, "weights_sha256": "b2"}) == 5
    with pytest.raises(ValueError, match="views_sha256"):
        run(in_tmp / "f.parquet", INPUTS, resume=True, options={**first, "views_sha256": "v2"})
    old = {**OPTIONS, "weights_sha256": "b1"}  # written before views_sha256 existed
    run(in_tmp / "g.parquet", INPUTS[:3], options=old)
    with pytest.raises(ValueError, match="weights_sha256"):
        run(in_tmp / "g.parquet", INPUTS, resume=True, options={**first, "weights_sha256": "b2"})


def test_bundles_with_the_same_views_share_their_views_sha256(tmp_path):
    from faceattr.inference.bundle import Bundle
    from conftest import TINY_BUNDLE
    a = Bundle.load(TINY_BUNDLE)
    b = Bundle(a.root, {**a.manifest, "heads": {**a.manifest["heads"], "sha256": "0" * 64}})
    assert a.views_sha256() == b.views_sha256() and a.sha256 != b.sha256
    assert a.views_sha256(["relu3_1"]) != a.views_sha256()


@pytest.mark.parametrize("fmt", [".parquet", ".csv", ".npz"])
def test_a_full_disk_during_the_merge_leaves_nothing_half_written_and_says_the_parts_are_whole(
        in_tmp, monkeypatch, fmt):
    import errno
    out = in_tmp / f"g{fmt}"
    real = fw.MERGERS[fmt]

    def full(sources, tmp, names, options):
        tmp.write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setitem(fw.MERGERS, fmt, full)
    with pytest.raises(OSError, match=r"the final merge failed \(No space left on device\); nothing was written "
                                      r"there and every row is intact in .*g\..*\.parts: free space, then run again "
                                      r"with --resume"):
        run(out, INPUTS)
    assert not out.exists() and not (in_tmp / f".g{fmt}.merging").exists()
    monkeypatch.setitem(fw.MERGERS, fmt, real)
    assert run(out, INPUTS, resume=True) == len(INPUTS) and rows(out) == sorted(INPUTS)


def test_a_file_the_user_had_where_the_csv_record_goes_is_not_replaced(in_tmp):
    out = in_tmp / "f.csv"
    fw.csv_record(out).write_text("the user's own notes")
    with pytest.raises(FileExistsError, match="exists and is not a record faceattr wrote"):
        run(out, INPUTS[:3])
    assert fw.csv_record(out).read_text() == "the user's own notes" and not out.exists()
    assert (in_tmp / "f.csv.parts").is_dir()  # the rows are still there for a --resume
