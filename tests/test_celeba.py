import numpy as np
import pytest

from conftest import write_celeba_tree
from faceattr.data.attributes import ATTRIBUTE_NAMES, attribute_index
from faceattr.data.celeba import CelebA, find_root
from faceattr.errors import DatasetError
from faceattr.faces.geometry import CROP_BOX, IMAGE_SIZE, crop_aligned
from faceattr.faces.images import ImageError


def test_forty_attributes_defined_once():
    assert len(ATTRIBUTE_NAMES) == 40 and len(set(ATTRIBUTE_NAMES)) == 40
    assert attribute_index("Smiling") == 31
    with pytest.raises(ValueError, match="unknown attribute 'Smilng'"):
        attribute_index("Smilng")


@pytest.mark.parametrize("under_celeba", [False, True])
@pytest.mark.parametrize("crlf", [False, True])
def test_reads_both_layouts_and_line_ends(tmp_path, under_celeba, crlf):
    write_celeba_tree(tmp_path, n=6, under_celeba=under_celeba, crlf=crlf)
    assert find_root(tmp_path).name == ("celeba" if under_celeba else tmp_path.name)
    ds = CelebA.load(tmp_path, "train")
    assert ds.files == ["000001.jpg", "000004.jpg"]
    assert ds.labels.shape == (2, 40) and set(np.unique(ds.labels)) <= {0, 1}
    assert len(CelebA.load(tmp_path, "all")) == 6
    crops = ds.crops(workers=1)
    assert crops.shape == (2, IMAGE_SIZE, IMAGE_SIZE, 3) and crops.dtype == np.uint8


def test_real_split_sizes_and_labels(celeba_root):
    sizes = {s: len(CelebA.load(celeba_root, s, check_images=False)) for s in ("train", "val", "test")}
    assert sizes == {"train": 13603, "val": 1696, "test": 1699}
    ds = CelebA.load(celeba_root, "test", check_images=False)
    # celeba-mini's README: Smiling is 0.484 positive on test.
    assert abs(ds.labels[:, attribute_index("Smiling")].mean() - 0.484) < 0.001


def test_crop_geometry_matches_spec(celeba_root):
    from PIL import Image
    img = Image.open(celeba_root / "img_align_celeba" / "000002.jpg")
    crop = crop_aligned(img)
    expected = np.asarray(img.convert("RGB").crop(CROP_BOX).resize((64, 64), Image.BILINEAR))
    assert np.array_equal(crop, expected)
    with pytest.raises(ValueError, match="178x218"):
        crop_aligned(img.resize((100, 100)))


def test_wrong_root_names_the_folder(tmp_path):
    with pytest.raises(DatasetError, match="no list_attr_celeba.txt"):
        CelebA.load(tmp_path)
    with pytest.raises(DatasetError, match="not a folder"):
        CelebA.load(tmp_path / "nope")


def test_malformed_row_names_file_and_line(tmp_path):
    base = write_celeba_tree(tmp_path, n=4, crlf=False)
    lines = (base / "list_attr_celeba.txt").read_text().splitlines()
    lines[4] = lines[4].rsplit(" ", 1)[0]  # drop a value on line 5
    (base / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"list_attr_celeba.txt, line 5: expected a file name and 40 values"):
        CelebA.load(tmp_path)


def test_bad_value_and_count(tmp_path):
    base = write_celeba_tree(tmp_path, n=3, crlf=False)
    text = (base / "list_attr_celeba.txt").read_text().replace(" -1", " 0", 1)
    (base / "list_attr_celeba.txt").write_text(text)
    with pytest.raises(DatasetError, match="line 3: attribute values must be -1 or 1"):
        CelebA.load(tmp_path)
    base = write_celeba_tree(tmp_path / "b", n=3, crlf=False)
    text = (base / "list_attr_celeba.txt").read_text().replace("3\n", "4\n", 1)
    (base / "list_attr_celeba.txt").write_text(text)
    with pytest.raises(DatasetError, match="says 4 images but 3 rows follow"):
        CelebA.load(tmp_path / "b")


def test_image_without_row_and_missing_image(tmp_path):
    base = write_celeba_tree(tmp_path, n=3, crlf=False)
    with open(base / "list_eval_partition.txt", "a") as fh:
        fh.write("000099.jpg 0\n")
    with pytest.raises(DatasetError, match="have no row in list_attr_celeba.txt, e.g. 000099.jpg"):
        CelebA.load(tmp_path)
    base = write_celeba_tree(tmp_path / "m", n=3, crlf=False)
    (base / "img_align_celeba" / "000001.jpg").unlink()
    with pytest.raises(DatasetError, match="missing, e.g. 000001.jpg"):
        CelebA.load(tmp_path / "m")


def test_unreadable_image_names_the_file(tmp_path):
    base = write_celeba_tree(tmp_path, n=3, crlf=False)
    (base / "img_align_celeba" / "000001.jpg").write_bytes(b"not a jpeg")
    ds = CelebA.load(tmp_path, "train")
    with pytest.raises(ImageError, match="000001.jpg: cannot read as an image"):
        ds.crops(workers=1)


def test_partition_malformed(tmp_path):
    base = write_celeba_tree(tmp_path, n=3, crlf=False)
    (base / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg x\n000003.jpg 2\n")
    with pytest.raises(DatasetError, match="list_eval_partition.txt, line 2"):
        CelebA.load(tmp_path)


def test_crop_cache_is_reused(tmp_path):
    write_celeba_tree(tmp_path, n=6, crlf=False)
    ds = CelebA.load(tmp_path, "all")
    a = ds.crops(cache_dir=tmp_path / "cache", workers=2)
    files = list((tmp_path / "cache").glob("crops-*.npy"))
    assert len(files) == 1
    b = ds.crops(cache_dir=tmp_path / "cache")
    assert np.array_equal(a, b)


def test_load_splits_reads_the_lists_once_and_gives_what_load_gives(tmp_path, monkeypatch):
    import faceattr.data.celeba as celeba
    base = write_celeba_tree(tmp_path, n=12, crlf=False)
    reads = []
    real = celeba.read_attributes
    monkeypatch.setattr(celeba, "read_attributes", lambda p: reads.append(p) or real(p))
    both = CelebA.load_splits(tmp_path, ("train", "test"), max_images=3)
    assert len(reads) == 1
    for split, ds in both.items():
        alone = CelebA.load(tmp_path, split, max_images=3)
        assert ds.files == alone.files and (ds.labels == alone.labels).all() and len(ds) <= 3


def test_a_value_that_only_begins_like_minus_one_is_refused(tmp_path):
    base = write_celeba_tree(tmp_path, n=3, crlf=False)
    lines = (base / "list_attr_celeba.txt").read_text().splitlines()
    lines[3] = lines[3].replace(" -1", " -1x", 1)  # line 4; the array keeps 3 characters
    (base / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match="line 4: attribute values must be -1 or 1"):
        CelebA.load(tmp_path)
