"""MTCNN's three stages (facenet-pytorch's networks and box arithmetic) with every crop's resize
taken from one summed-area table per photo.

facenet-pytorch's ``detect_face`` cuts every candidate box out of its photo and resizes it to
24x24 (then 48x48) with its own ``interpolate(mode="area")`` call, one box at a time: thousands of
small calls per batch of photos. Area resizing is adaptive average pooling, whose cells have
integer bounds, so the mean of every cell of every box is four reads of the photo's summed-area
table; the pyramid levels, whole photos, are two matrix products each. Same boxes, scores and
landmarks as ``detect_face`` up to float rounding (tests/test_detect.py). The whole batched path:
benchmarks/photo_speed.py.
"""
from __future__ import annotations

import numpy as np
import torch
from .mtcnn_nets import batched_nms, batched_nms_min, bbreg, generate_bounding_box, pad, rerec

_BOX_CHUNK = 1024  # boxes gathered at once: 4 corners x 48x48 cells x int64 indices stay ~75 MB


def summed_area_tables(imgs: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, H+1, W+1, 3) running sums, exact in integers: int32 while
    255 * H * W fits (any detection copy of up to 2,900 px square), int64 beyond."""
    dtype = torch.int32 if imgs.shape[1] * imgs.shape[2] * 255 < 2**31 else torch.int64
    sat = torch.zeros((imgs.shape[0], imgs.shape[1] + 1, imgs.shape[2] + 1, 3), dtype=dtype, device=imgs.device)
    sat[:, 1:, 1:] = imgs.to(dtype).cumsum(1).cumsum(2)
    return sat


def _cell_bounds(start: torch.Tensor, length: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """adaptive_avg_pool2d's cell bounds [floor(i*L/S), ceil((i+1)*L/S)) offset by start: (N, S) each."""
    i = torch.arange(size, dtype=torch.int64, device=start.device)
    lo = (i[None] * length[:, None]) // size
    hi = ((i[None] + 1) * length[:, None] + size - 1) // size
    return start[:, None] + lo, start[:, None] + hi


def _averaging_matrix(n_in: int, n_out: int, device) -> torch.Tensor:
    """(n_out, n_in): row i averages the inputs of adaptive pooling's cell i."""
    zero = torch.zeros(1, dtype=torch.int64, device=device)
    lo, hi = (b[0] for b in _cell_bounds(zero, zero + n_in, n_out))
    i = torch.arange(n_in, device=device)
    inside = ((i[None] >= lo[:, None]) & (i[None] < hi[:, None])).to(torch.float32)
    return inside / inside.sum(1, keepdim=True)


def area_resize(planes: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """Whole photos (B, 3, H, W) float32 resized by area averaging (``interpolate(mode="area")``)
    -> (B, 3, out_h, out_w) float32 in channels_last memory. Area averaging is separable, so it is
    two matrix products: 1.8x faster than four summed-area-table gathers, within 5e-5 of them."""
    rows = _averaging_matrix(planes.shape[2], out_h, planes.device)
    cols = _averaging_matrix(planes.shape[3], out_w, planes.device)
    return (rows @ planes @ cols.T).contiguous(memory_format=torch.channels_last)


class SatTable:
    """The summed-area tables of photos of any sizes, as one flat buffer: what lets the second and
    third stages crop the candidates of every photo of a chunk in one pass, whatever their sizes
    (only the first stage needs a batch of same-size photos)."""

    def __init__(self, sats: list[torch.Tensor]):
        dtype = torch.int64 if any(t.dtype == torch.int64 for t in sats) else torch.int32
        self.flat = torch.cat([t.to(dtype).reshape(-1, 3) for t in sats])
        base, heights, widths, start = [], [], [], 0
        for t in sats:
            b, h1, w1, _ = t.shape
            base += [start + i * h1 * w1 for i in range(b)]
            heights += [h1 - 1] * b
            widths += [w1 - 1] * b
            start += b * h1 * w1
        self.device = self.flat.device
        self.base = torch.tensor(base, dtype=torch.int64, device=self.device)
        self.h, self.w = np.asarray(heights), np.asarray(widths)  # per photo, in pixels

    def inside(self, boxes, image_inds):
        """Boxes clipped to their photo (facenet's ``pad``, per photo), less those with nothing inside
        it. (facenet skips such a box's crop but keeps the box, misaligning boxes and scores after it.)"""
        if len(boxes) == 0:
            return boxes, image_inds, (np.zeros(0, np.int32),) * 4
        inds = image_inds.cpu().numpy()
        y, ey, x, ex = pad(boxes, 2**30, 2**30)  # truncated and at least 1; each photo's far edge below
        ey, ex = np.minimum(ey, self.h[inds]).astype(y.dtype), np.minimum(ex, self.w[inds]).astype(x.dtype)
        ok = (ey > (y - 1)) & (ex > (x - 1))
        keep = torch.from_numpy(ok).to(boxes.device)
        return boxes[keep], image_inds[keep], (y[ok], ey[ok], x[ok], ex[ok])

    def crops(self, image_inds, y, ey, x, ex, size: int) -> torch.Tensor:
        """Each box ``photo[image_inds[k], y[k]-1:ey[k], x[k]-1:ex[k]]`` (facenet's 1-based ``pad``
        bounds) resized to ``size`` x ``size`` by area averaging -> (N, 3, size, size) float32."""
        def ints(a):
            return torch.as_tensor(np.asarray(a), dtype=torch.int64, device=self.device)

        image_inds = torch.as_tensor(image_inds, dtype=torch.int64, device=self.device)
        stride = ints(self.w)[image_inds] + 1  # the row length of each box's table
        y0, x0 = ints(y) - 1, ints(x) - 1
        hk, wk = ints(ey) - y0, ints(ex) - x0
        out = torch.empty((len(y0), size, size, 3), dtype=torch.float32, device=self.device)
        for s in range(0, len(y0), _BOX_CHUNK):
            sl = slice(s, s + _BOX_CHUNK)
            r_lo, r_hi = _cell_bounds(y0[sl], hk[sl], size)  # (n, S)
            c_lo, c_hi = _cell_bounds(x0[sl], wk[sl], size)
            base, w1 = self.base[image_inds[sl]][:, None, None], stride[sl][:, None, None]

            def corner(rows, cols):  # index_select: several times faster than advanced indexing here
                idx = base + rows[:, :, None] * w1 + cols[:, None, :]
                return self.flat.index_select(0, idx.view(-1)).view(*idx.shape, 3)  # (n, S, S, 3)

            sums = corner(r_hi, c_hi) - corner(r_lo, c_hi) - corner(r_hi, c_lo) + corner(r_lo, c_lo)
            area = ((r_hi - r_lo)[:, :, None] * (c_hi - c_lo)[:, None, :])[..., None]
            out[sl] = sums.to(torch.float32) / area.to(torch.float32)
        return out.permute(0, 3, 1, 2)  # channels_last memory, as the networks run


# The number of candidate boxes differs from batch to batch; rounded up to a multiple of these (per
# crop size: 24 for the second stage, 48 for the third), the crops and every network activation
# come in a few sizes the allocator can reuse, where sizes that change every batch fragmented the
# heap: a 16,998-photo `faceattr extract` grew from 1.2 to 2.2 GB (benchmarks/extract_stream.py).
BOX_BUCKET = {24: 64, 48: 16}


# Candidates per network call. facenet-pytorch runs 512 at a time, whose activations (a 512-crop
# ONet's first layer alone is 138 MB) spill out of the caches: on an Intel Xeon (2 cores) 1,536
# crops took RNet 463 ms at 512 against 59 ms at 128, and ONet 1,285 ms at 512 against 450 ms at
# 64, with outputs equal to 3e-7. Measured in a micro-benchmark, and end to end in
# benchmarks/photo_speed.py.
NET_BATCH = {24: 128, 48: 64}


def _input_dtype(net) -> torch.dtype:
    """What ``net`` computes in (its first parameter's type): each network may have its own."""
    return next(net.parameters()).dtype


def _run_on_crops(net, table: SatTable, image_inds, bounds, size: int) -> tuple[torch.Tensor, ...]:
    """``net`` on every box's ``size`` x ``size`` crop, the boxes padded to a multiple of
    BOX_BUCKET[size] (with copies of the first box) and the padding's outputs dropped; cropped
    and run NET_BATCH[size] boxes at a time, so each chunk's crops are still in cache. Outputs are
    float32 whatever the network computes in: scores, boxes and NMS stay float32."""
    dtype = _input_dtype(net)
    n = len(image_inds)
    pad_to = -(-n // BOX_BUCKET[size]) * BOX_BUCKET[size]
    fill = np.zeros(pad_to - n, dtype=np.int64)
    image_inds = torch.cat([image_inds, image_inds[fill]])
    y, ey, x, ex = (np.concatenate([np.asarray(a), np.asarray(a)[fill]]) for a in bounds)
    outs = []
    for s in range(0, pad_to, NET_BATCH[size]):
        sl = slice(s, s + NET_BATCH[size])
        im_data = table.crops(image_inds[sl], y[sl], ey[sl], x[sl], ex[sl], size)
        outs.append(tuple(o.float() for o in net(((im_data - 127.5) * 0.0078125).type(dtype))))
    return tuple(torch.cat(o)[:n] for o in zip(*outs))


def pyramid_scales(h: int, w: int, minsize: int, factor: float) -> list[float]:
    """The first stage's image scales: the smallest face searched for (``minsize``) maps to the
    proposal network's 12 pixels, then each level is ``factor`` smaller, down to 12 pixels."""
    scales, scale, minl = [], 12.0 / minsize, min(h, w) * 12.0 / minsize
    while minl >= 12:
        scales.append(scale)
        scale, minl = scale * factor, minl * factor
    return scales


def _propose(pnet, planes, scales, threshold: float):
    """First stage: the proposal network over the image pyramid of (B, 3, H, W) float32 photos ->
    squared candidate boxes (n, 5) and the photo of each."""
    h, w = planes.shape[2:]
    dtype = _input_dtype(pnet)
    boxes, image_inds, scale_picks, offset = [], [], [], 0
    for scale in scales:
        im_data = area_resize(planes, int(h * scale + 1), int(w * scale + 1))
        im_data = (im_data - 127.5) * 0.0078125
        reg, probs = (o.float() for o in pnet(im_data.type(dtype)))
        boxes_scale, image_inds_scale = generate_bounding_box(reg, probs[:, 1], scale, threshold)
        boxes.append(boxes_scale)
        image_inds.append(image_inds_scale)
        pick = batched_nms(boxes_scale[:, :4], boxes_scale[:, 4], image_inds_scale, 0.5)
        scale_picks.append(pick + offset)
        offset += boxes_scale.shape[0]
    boxes, image_inds, scale_picks = torch.cat(boxes), torch.cat(image_inds), torch.cat(scale_picks)
    boxes, image_inds = boxes[scale_picks], image_inds[scale_picks]
    pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
    boxes, image_inds = boxes[pick], image_inds[pick]
    regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    boxes = torch.stack([boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
                         boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh, boxes[:, 4]]).permute(1, 0)
    return rerec(boxes), image_inds


def _refine(rnet, table: SatTable, boxes, image_inds, threshold: float):
    """Second stage: the refinement network on every candidate at 24x24."""
    boxes, image_inds, bounds = table.inside(boxes, image_inds)
    if len(boxes) == 0:
        return boxes, image_inds
    out = _run_on_crops(rnet, table, image_inds, bounds, 24)
    out0, score = out[0].permute(1, 0), out[1].permute(1, 0)[1, :]
    ipass = score > threshold
    boxes = torch.cat((boxes[ipass, :4], score[ipass].unsqueeze(1)), dim=1)
    image_inds, mv = image_inds[ipass], out0[:, ipass].permute(1, 0)
    pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
    boxes, image_inds, mv = boxes[pick], image_inds[pick], mv[pick]
    return rerec(bbreg(boxes, mv)), image_inds


def _output(onet, table: SatTable, boxes, image_inds, threshold: float):
    """Third stage: the output network at 48x48 -> boxes, five landmarks each, and their photos."""
    points = torch.zeros(0, 5, 2, device=table.device)
    boxes, image_inds, bounds = table.inside(boxes, image_inds)
    if len(boxes) == 0:
        return boxes, points, image_inds
    out = _run_on_crops(onet, table, image_inds, bounds, 48)
    out0, points, score = out[0].permute(1, 0), out[1].permute(1, 0), out[2].permute(1, 0)[1, :]
    ipass = score > threshold
    points = points[:, ipass]
    boxes = torch.cat((boxes[ipass, :4], score[ipass].unsqueeze(1)), dim=1)
    image_inds, mv = image_inds[ipass], out0[:, ipass].permute(1, 0)
    w_i, h_i = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    points_x = w_i.repeat(5, 1) * points[:5, :] + boxes[:, 0].repeat(5, 1) - 1
    points_y = h_i.repeat(5, 1) * points[5:10, :] + boxes[:, 1].repeat(5, 1) - 1
    points = torch.stack((points_x, points_y)).permute(2, 1, 0)
    boxes = bbreg(boxes, mv)
    pick = batched_nms_min(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
    return boxes[pick], points[pick], image_inds[pick]


def detect_faces_groups(groups: list[np.ndarray], minsize: int, pnet, rnet, onet, threshold, factor: float,
                        device="cpu") -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """facenet-pytorch's ``detect_face`` for several batches of photos, each batch (B, H, W, 3) uint8
    of one size: the first stage runs per batch, the second and third on the candidates of all
    photos at once. Per batch, per photo: boxes (n, 5: x1, y1, x2, y2, score), landmarks (n, 5, 2)."""
    sats, boxes, inds, offset = [], [], [], 0
    for imgs in groups:
        raw = torch.from_numpy(np.ascontiguousarray(imgs)).to(device)
        b, h, w = raw.shape[:3]
        sat = summed_area_tables(raw)
        planes = raw.permute(0, 3, 1, 2).to(torch.float32).contiguous()
        found, found_inds = _propose(pnet, planes, pyramid_scales(h, w, minsize, factor), threshold[0])
        sats.append(sat)
        boxes.append(found)
        inds.append(found_inds + offset)
        offset += b
    table = SatTable(sats)
    found, found_inds = _refine(rnet, table, torch.cat(boxes), torch.cat(inds), threshold[1])
    found, points, found_inds = _output(onet, table, found, found_inds, threshold[2])
    found, points, found_inds = found.cpu().numpy(), points.cpu().numpy(), found_inds.cpu().numpy()
    per_photo = [(found[found_inds == i].copy(), points[found_inds == i].copy()) for i in range(offset)]
    out, start = [], 0
    for imgs in groups:
        out.append(per_photo[start:start + len(imgs)])
        start += len(imgs)
    return out
