import numpy as np
import pytest
import torch

from faceattr import generate
from faceattr.data.attributes import attribute_index


def test_sample_shapes_and_determinism(pretrained_bundle, tmp_path):
    a = generate.sample(pretrained_bundle, "relu3_1", n=4, seed=1, out=tmp_path / "s.png")
    b = generate.sample(pretrained_bundle, "relu3_1", n=4, seed=1)
    c = generate.sample(pretrained_bundle, "relu3_1", n=4, seed=2)
    assert a.shape == (4, 3, 64, 64) and np.array_equal(a, b) and not np.array_equal(a, c)
    assert (tmp_path / "s.png").is_file()


def test_interpolation_endpoints_are_the_reconstructions(pretrained_bundle, real_faces, tmp_path):
    vae = pretrained_bundle.load_vae("relu3_1")
    row = generate.interpolate(pretrained_bundle, real_faces[0], real_faces[1], steps=5, view="relu3_1",
                               align="none", out=tmp_path / "row.png")
    rec = generate.decode(vae, generate.encode_means(vae, real_faces[:2])).numpy()
    assert row.shape == (5, 3, 64, 64)
    np.testing.assert_allclose(row[0], rec[0], atol=1e-5)
    np.testing.assert_allclose(row[-1], rec[1], atol=1e-5)


def test_reconstruct_grid(pretrained_bundle, real_faces, tmp_path):
    tiles = generate.reconstruct(pretrained_bundle, real_faces[:2], align="none", out=tmp_path / "r.png")
    assert tiles.shape == (2 * 6, 3, 64, 64)
    # reconstructions resemble their inputs more than they resemble the other input
    x, r = tiles[0], tiles[3]  # input 0 and its relu3_1 reconstruction
    other = tiles[6]
    assert np.abs(x - r).mean() < np.abs(other - r).mean()


def test_smiling_vector_moves_the_smiling_head(pretrained_bundle, celeba_root):
    """Measured on 200 non-smiling and 200 smiling celeba-mini test faces (relu3_1, strength 1.5):
    adding the Smiling vector raised the Smiling head's score (on the 500-d features of the decoded
    faces) for 200/200 non-smiling faces, and subtracting it lowered it for 200/200 smiling faces.
    The test uses 40 of each and asks for at least 80%."""
    from faceattr.data.celeba import CelebA
    from faceattr.inference.encoder import MultiViewEncoder
    from faceattr.inference.heads import LinearHeads
    ds = CelebA.load(celeba_root, "test", max_images=200)
    faces = ds.crops(workers=1)
    s = attribute_index("Smiling")
    vae = pretrained_bundle.load_vae("relu3_1")
    v = torch.from_numpy(pretrained_bundle.attribute_vectors()["relu3_1"][s])
    enc = MultiViewEncoder.from_bundle(pretrained_bundle, device="cpu", precision="float32")
    heads = LinearHeads(pretrained_bundle.heads())

    def smile_score(images):
        u8 = (np.clip(images.transpose(0, 2, 3, 1), 0, 1) * 255 + 0.5).astype(np.uint8)
        return heads.scores(enc.encode(u8))[:, s].numpy()

    fractions = {}
    for label, sign in ((0, 1.5), (1, -1.5)):
        idx = np.flatnonzero(ds.labels[:, s] == label)[:40]
        z = generate.encode_means(vae, faces[idx])
        before = generate.decode(vae, z).numpy()
        after = generate.decode(vae, z + sign * v).numpy()
        moved = smile_score(after) - smile_score(before)
        fractions[label] = float((np.sign(moved) == np.sign(sign)).mean())
    assert fractions[0] >= 0.8 and fractions[1] >= 0.8, fractions


def test_grid_assignment_is_a_permutation():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(16, 2))
    cell = generate.grid_assignment(emb, 4)
    assert sorted(cell) == list(range(16))
    # the left-most point lands in the left column
    assert cell[np.argmin(emb[:, 0])] % 4 == 0


def test_attribute_vectors_difference_of_means():
    z = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 4.0]])
    labels = np.zeros((4, 40), np.uint8)
    labels[:2, 0] = 1
    vec = generate.attribute_vectors(z, labels, {"v": slice(0, 2)})["v"]
    np.testing.assert_allclose(vec[0], [2.0, -3.0])
    assert np.all(vec[1] == 0)  # no positives: zero vector


def test_manipulate_unknown_attribute(pretrained_bundle, real_faces):
    with pytest.raises(ValueError, match="unknown attribute"):
        generate.manipulate(pretrained_bundle, real_faces[0], "Smilng", align="none")


def test_generative_cli_commands(tmp_path, celeba_root):
    from click.testing import CliRunner
    from PIL import Image
    from faceattr.cli import main
    run = CliRunner().invoke
    a, b = (str(celeba_root / "img_align_celeba" / f) for f in ("000002.jpg", "000003.jpg"))
    cases = {
        "sample.png": ["sample", "-n", "4", "--seed", "3"],
        "recon.png": ["reconstruct", "--aligned", a, b],
        "interp.png": ["interpolate", "--aligned", a, b, "--steps", "4"],
        "smile.png": ["manipulate", "--aligned", a, "--attribute", "Smiling", "--strength", "-1", "--steps", "3"],
        "map.png": ["tsne", "--root", str(celeba_root), "-n", "16"],
    }
    # (faces a row, rows, scale): 2 photos x (input + 5 views); one row of 4 or 3; t-SNE 4x4 at 1x
    shapes = {"sample.png": (4, 1, 2), "recon.png": (6, 2, 2), "interp.png": (4, 1, 2), "smile.png": (3, 1, 2),
              "map.png": (4, 4, 1)}
    for name, args in cases.items():
        r = run(main, args + ["--out", str(tmp_path / name)])
        assert r.exit_code == 0, (args, r.output)
        assert Image.open(tmp_path / name).size == grid_size(*shapes[name]), name
    r = run(main, ["manipulate", "--aligned", a, "--attribute", "Smilng", "--out", str(tmp_path / "x.png")])
    assert r.exit_code == 1 and "unknown attribute 'Smilng'" in r.output
    r = run(main, ["tsne", "--root", str(celeba_root), "-n", "15", "--out", str(tmp_path / "x.png")])
    assert r.exit_code == 1 and "square number" in r.output


def test_attribute_vectors_cli(tmp_path, celeba_root):
    from click.testing import CliRunner
    from faceattr.cli import main
    out = tmp_path / "vecs.npz"
    r = CliRunner().invoke(main, ["attribute-vectors", "--root", str(celeba_root), "--max-images", "300",
                                  "--out", str(out)])
    assert r.exit_code == 0, r.output
    z = np.load(out)
    assert sorted(z.files) == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert z["relu3_1"].shape == (40, 100) and np.abs(z["relu3_1"]).sum() > 0


def grid_size(per_row: int, rows: int, scale: int, face: int = 64, pad: int = 2) -> tuple[int, int]:
    """(width, height) of a faceattr.grid picture: 2-pixel gaps around 64x64 faces, then scaled."""
    return ((per_row * (face + pad) + pad) * scale, (rows * (face + pad) + pad) * scale)
