"""The distributed path on a real local Ray instance (2 CPUs): same rows as one process."""
import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the Ray path needs the [ray] extra: pip install 'faceattr[ray]'")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_ray_rows_equal_single_process(local_ray, celeba_root, tmp_path):
    from PIL import Image
    from faceattr import AttributePredictor, MultiViewVAEFeatures
    from faceattr.data.celeba import CelebA
    from faceattr.inference.ray_data import predict_dataset
    paths = [str(p) for p in CelebA.load(celeba_root, "test", max_images=16).paths()]
    Image.new("RGB", (200, 200), (128, 128, 128)).save(tmp_path / "blank.png")
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    paths += [str(tmp_path / "blank.png"), str(tmp_path / "broken.jpg")]
    ds = ray.data.from_items([{"path": p} for p in paths])
    df = predict_dataset(ds, concurrency=2, batch_size=8).to_pandas().sort_values(["path", "face"])

    single = [r.to_dict() for r in AttributePredictor().predict_images(paths)]
    expected_rows = sum(max(1, len(r["faces"])) for r in single)
    assert len(df) == expected_rows and set(df["path"]) == set(paths)
    feats = MultiViewVAEFeatures().fit()
    for r in single:
        got = df[df["path"] == r["file"]]
        if r["error"] or not r["faces"]:
            assert list(got["face"]) == [-1] and (r["error"] or "no face found") == got["error"].iloc[0]
            continue
        assert list(got["face"]) == list(range(len(r["faces"])))
        for j, face in enumerate(r["faces"]):
            row = got.iloc[j]
            np.testing.assert_allclose(row["box"], face["box"], atol=0.1)
            for name in ("Smiling", "Male", "Eyeglasses"):
                assert row[name] == pytest.approx(face["attributes"][name]["probability"], abs=1e-3)
    got = np.stack([df[(df["path"] == p) & (df["face"] == 0)].iloc[0]["features"] for p in paths[:16]])
    # bfloat16 convolutions round a little differently with the batch's make-up (8 here, 16 there).
    np.testing.assert_allclose(got, feats.transform(paths[:16]), atol=2e-2)


@pytest.mark.slow
def test_ray_reads_bytes_of_photos_and_videos(local_ray, celeba_root, tmp_path):
    pytest.importorskip("av", reason="video input needs the [video] extra")
    from conftest import write_clip
    from faceattr.data.celeba import CelebA
    from faceattr.inference.ray_data import predict_dataset
    paths = [str(p) for p in CelebA.load(celeba_root, "test", max_images=10).paths()]
    clip = str(write_clip(tmp_path / "clip.mp4", paths[4:10]))
    ds = ray.data.read_binary_files(paths[:4] + [clip], include_paths=True)
    df = predict_dataset(ds, concurrency=1, batch_size=8, largest_face=True, every=2).to_pandas()
    photos, frames = df[df["frame"] == -1], df[df["frame"] >= 0].sort_values("frame")
    assert len(photos) == 4 and (photos["face"] == 0).all() and np.isnan(photos["time_s"].to_numpy(float)).all()
    assert list(frames["frame"]) == [0, 2, 4] and frames["path"].str.endswith("clip.mp4").all()
    assert list(frames["time_s"]) == pytest.approx([0.0, 0.4, 0.8])
    assert np.isfinite(np.stack(df["features"])).all()
