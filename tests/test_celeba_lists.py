"""CelebA's lists are read strictly: a file listed twice, in two partitions, or outside the image
folder is refused, naming the lines."""
from pathlib import Path

import pytest


PHOTO = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"


# ---- CelebA lists --------------------------------------------------------------------------
def _celeba(tmp_path, attr_extra=(), part_extra=()):
    from conftest import write_celeba_tree
    root = write_celeba_tree(tmp_path, n=4, crlf=False)
    attr = (root / "list_attr_celeba.txt").read_text().splitlines()
    attr += list(attr_extra)
    attr[0] = str(len(attr) - 2)
    (root / "list_attr_celeba.txt").write_text("\n".join(attr) + "\n")
    with open(root / "list_eval_partition.txt", "a") as fh:
        fh.writelines(line + "\n" for line in part_extra)
    return root, attr


def test_a_file_listed_twice_in_the_attributes_is_refused_naming_both_lines(tmp_path):
    from faceattr.data.celeba import CelebA
    from faceattr.errors import DatasetError
    root, attr = _celeba(tmp_path)
    name, values = attr[3].split(" ", 1)
    flipped = " ".join("1" if v == "-1" else "-1" for v in values.split())
    root, _ = _celeba(tmp_path / "b", attr_extra=[f"{name} {flipped}"])
    with pytest.raises(DatasetError, match=r"lines 4 and 7: '000002.jpg' is listed twice, with different labels"):
        CelebA.load(root, "all")


def test_an_image_in_two_partitions_is_refused_naming_both_lines(tmp_path):
    from faceattr.data.celeba import CelebA
    from faceattr.errors import DatasetError
    root, _ = _celeba(tmp_path, part_extra=["000001.jpg 2"])
    with pytest.raises(DatasetError, match=r"lines 1 and 5: '000001.jpg' is listed in two partitions"):
        CelebA.load(root, "all")


def test_a_listed_name_cannot_point_outside_the_image_folder(tmp_path):
    from faceattr.data.celeba import read_partition
    from faceattr.errors import DatasetError
    p = tmp_path / "list_eval_partition.txt"
    p.write_text("000001.jpg 0\n../../secret.jpg 1\n")
    with pytest.raises(DatasetError, match="line 2: '../../secret.jpg' is not a plain file name"):
        read_partition(p)
