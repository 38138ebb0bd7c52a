"""Our MTCNN stages (faceattr/faces/mtcnn.py) against facenet-pytorch's own, and batched detection
against one photo at a time."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from faceattr.faces.mtcnn import SatTable, area_resize, detect_faces_groups, summed_area_tables


def crop_area_resize(sat, image_inds, y, ey, x, ex, size: int):
    """``SatTable.crops`` on one batch of same-size photos' tables (B, H+1, W+1, 3)."""
    return SatTable([sat]).crops(image_inds, y, ey, x, ex, size)


def detect_faces(imgs, minsize: int, pnet, rnet, onet, threshold, factor: float, device="cpu"):
    """facenet-pytorch's ``detect_face`` for one (B, H, W, 3) uint8 batch, as ours computes it."""
    return detect_faces_groups([imgs], minsize, pnet, rnet, onet, threshold, factor, device)[0]


def test_crops_equal_facenets_area_interpolation_box_by_box():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (3, 70, 90, 3), dtype=np.uint8)
    sat = summed_area_tables(torch.from_numpy(imgs))
    n = 200
    # 1-based clipped bounds as facenet's pad() gives them: tiny boxes (upsampled), thin ones, the whole photo
    y = rng.integers(1, 60, n); x = rng.integers(1, 80, n)
    ey = np.minimum(y + rng.integers(0, 60, n), 70); ex = np.minimum(x + rng.integers(0, 80, n), 90)
    y[0], ey[0], x[0], ex[0] = 1, 70, 1, 90
    inds = rng.integers(0, 3, n)
    float_imgs = torch.from_numpy(imgs).permute(0, 3, 1, 2).float()
    for size in (24, 48):
        ours = crop_area_resize(sat, torch.from_numpy(inds), y, ey, x, ex, size)
        for k in range(n):
            crop = float_imgs[inds[k]:inds[k] + 1, :, y[k] - 1:ey[k], x[k] - 1:ex[k]]
            ref = F.interpolate(crop, size=(size, size), mode="area")[0]
            torch.testing.assert_close(ours[k], ref, atol=1e-3, rtol=1e-5)


def test_pyramid_levels_equal_area_interpolation():
    planes = torch.randint(0, 256, (2, 3, 218, 178), dtype=torch.uint8).float()
    for out_h, out_w in ((131, 107), (19, 16), (300, 250)):
        ref = F.interpolate(planes, size=(out_h, out_w), mode="area")
        torch.testing.assert_close(area_resize(planes, out_h, out_w), ref, atol=1e-3, rtol=1e-5)


def test_summed_area_tables_are_running_sums():
    imgs = torch.randint(0, 256, (2, 23, 17, 3), dtype=torch.uint8)
    sat = summed_area_tables(imgs)
    assert sat.shape == (2, 24, 18, 3) and int(sat[:, 0].abs().sum() + sat[:, :, 0].abs().sum()) == 0
    torch.testing.assert_close(sat[:, 1:, 1:], imgs.to(torch.int64).cumsum(1).cumsum(2).to(sat.dtype))


def test_large_detection_copies_use_exact_64_bit_sums():
    img = torch.full((1, 3000, 3000, 3), 255, dtype=torch.uint8)
    sat = summed_area_tables(img)
    assert sat.dtype == torch.int64 and int(sat[0, -1, -1, 0]) == 255 * 3000 * 3000


@pytest.fixture(scope="module")
def photos(celeba_root):
    from faceattr.data.celeba import CelebA
    paths = CelebA.load(celeba_root, "test").paths()[:24]
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])


# How far our boxes and landmarks may be from facenet-pytorch's, in pixels: float rounding only
# (summed-area crops, channels_last); measured 6e-5 px.
FACENET_TOLERANCE_PX = 1e-2


def test_same_boxes_scores_and_landmarks_as_facenet_pytorch(photos):
    """Our networks (faceattr.faces.mtcnn_nets, facenet-pytorch's weights loaded without importing
    it) and stages against facenet-pytorch's own MTCNN and detect_face."""
    from facenet_pytorch import MTCNN
    from facenet_pytorch.models.utils.detect_face import detect_face
    from faceattr.faces.detect import FaceDetector
    from faceattr.faces.mtcnn_nets import FACTOR, THRESHOLDS
    ref = MTCNN(keep_all=True)
    assert (tuple(ref.thresholds), ref.factor, ref.min_face_size) == (THRESHOLDS, FACTOR, 20)
    pnet, rnet, onet = FaceDetector().mtcnn
    # a second group: the same faces upscaled, several per photo's pyramid level
    for batch in (photos, np.stack([np.asarray(Image.fromarray(p).resize((356, 436))) for p in photos[:6]])):
        with torch.no_grad():
            ref_boxes, ref_points = detect_face(batch, 20, ref.pnet, ref.rnet, ref.onet, ref.thresholds, ref.factor, "cpu")
            ours = detect_faces(batch, 20, pnet, rnet, onet, THRESHOLDS, FACTOR)
        assert sum(len(b) for b, _ in ours) >= len(batch)
        for (boxes, points), rb, rp in zip(ours, ref_boxes, ref_points):
            rb, rp = np.asarray(rb, np.float32), np.asarray(rp, np.float32)
            assert boxes.shape == rb.shape
            np.testing.assert_allclose(boxes, rb, atol=FACENET_TOLERANCE_PX)
            np.testing.assert_allclose(points, rp, atol=FACENET_TOLERANCE_PX)


def test_batched_detection_equals_one_photo_at_a_time(photos):
    from faceattr.faces.detect import FaceDetector
    det = FaceDetector()
    imgs = [Image.fromarray(p) for p in photos[:8]] + [Image.fromarray(photos[0]).resize((300, 360))]
    batched = det.detect_batch(imgs, batch=4)
    for img, faces in zip(imgs, batched):
        single = det.detect(img)
        assert len(faces) == len(single) >= 1
        for a, b in zip(faces, single):
            np.testing.assert_allclose(a.box, b.box, atol=0.5)
            np.testing.assert_allclose(a.landmarks, b.landmarks, atol=0.5)


def test_photos_of_several_sizes_share_the_second_and_third_stages(photos):
    """issue 27: one pass of the refinement and output networks for all candidates of photos of
    different sizes gives each photo the boxes it gets in its own same-size batch."""
    from faceattr.faces.detect import FaceDetector
    from faceattr.faces.mtcnn_nets import FACTOR, THRESHOLDS
    pnet, rnet, onet = FaceDetector().mtcnn
    groups = [photos[:6], np.stack([np.asarray(Image.fromarray(p).resize((300, 360))) for p in photos[6:9]]),
              np.stack([np.asarray(Image.fromarray(p).resize((120, 150))) for p in photos[9:11]])]
    with torch.no_grad():
        together = detect_faces_groups(groups, 20, pnet, rnet, onet, THRESHOLDS, FACTOR)
        apart = [detect_faces(g, 20, pnet, rnet, onet, THRESHOLDS, FACTOR) for g in groups]
    assert sum(len(b) for g in together for b, _ in g) >= 11
    for g_together, g_apart in zip(together, apart):
        for (boxes, points), (ref_boxes, ref_points) in zip(g_together, g_apart):
            assert boxes.shape == ref_boxes.shape
            np.testing.assert_allclose(boxes, ref_boxes, atol=FACENET_TOLERANCE_PX)
            np.testing.assert_allclose(points, ref_points, atol=FACENET_TOLERANCE_PX)


def test_a_photo_without_a_face_is_searched_again_and_small_boxes_are_dropped(monkeypatch):
    """The second, more permissive search runs only on the photos in which the first found no
    face, and keeps no box below the minimum face size (noise at those thresholds)."""
    from PIL import Image
    from faceattr.faces.detect import Face, FaceDetector, Sensitivity
    imgs = [Image.new("RGB", (200, 200), (120, 120, 120)) for _ in range(3)]
    d = FaceDetector(min_face_size=20, device="cpu", second_pass=Sensitivity())
    first = [[], [Face((10, 10, 90, 90), 0.99, np.zeros((5, 2)))], []]
    monkeypatch.setattr(FaceDetector, "_detect_groups", lambda self, groups: [first] if self.stages is None else None)
    asked = []

    class Again:
        def detect_batch(self, batch, size):
            asked.append(len(batch))
            return [[Face((0, 0, 60, 60), 0.85, np.zeros((5, 2))), Face((0, 0, 11, 14), 0.96, np.zeros((5, 2)))],
                    []]
    monkeypatch.setattr(FaceDetector, "permissive", lambda self: Again())
    out = d.detect_batch(imgs)
    assert asked == [2] and [len(f) for f in out] == [1, 1, 0] and out[0][0].box == (0, 0, 60, 60)
    assert FaceDetector(device="cpu").second_pass is None  # a detector made without it searches once


def test_the_second_search_is_a_face_option_on_by_default():
    from faceattr.faces.finder import FaceFinder
    from faceattr.faces.options import FaceOptions
    assert FaceFinder(FaceOptions()).detector().second_pass is not None
    assert FaceFinder(FaceOptions(second_search=False)).detector().second_pass is None
