"""Tests for lbam.tiling: crop planning, extraction, pasting, padding and batching."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lbam.tiling import (
    Crop,
    batched,
    choose_strategy,
    extract,
    extract_mask,
    pad_to_multiple,
    paste,
    plan_crops,
    unpad,
)

TRAIN = 256
CONTEXT = TRAIN // 4  # the default context
SHAPES = [(20, 30), (1, 1), (37, 41), (256, 256), (300, 700), (2000, 300), (513, 1025), (700, 700)]


def random_hole(shape, rng, kind):
    """A bool (H, W) hole: rectangles, speckles, strokes, with some touching the borders."""
    h, w = shape
    hole = np.zeros(shape, bool)
    if kind == "rects":
        for _ in range(rng.integers(1, 6)):
            rh, rw = rng.integers(1, max(2, h // 4)), rng.integers(1, max(2, w // 4))
            y, x = rng.integers(0, h), rng.integers(0, w)
            hole[y : y + rh, x : x + rw] = True
    elif kind == "speckles":
        hole[:] = rng.random(shape) < 0.0005
        hole[rng.integers(0, h), rng.integers(0, w)] = True
    elif kind == "border":  # blobs glued to every edge and a corner
        t = max(1, min(h, w) // 10)
        hole[:t, w // 3 : w // 3 + t] = True
        hole[-t:, : t + 3] = True
        hole[h // 2 : h // 2 + t, -t:] = True
        hole[h // 3 : h // 3 + t, :t] = True
    elif kind == "stroke":  # a thin diagonal line
        n = max(h, w)
        ys, xs = np.linspace(0, h - 1, n).astype(int), np.linspace(0, w - 1, n).astype(int)
        hole[ys, xs] = True
    return hole


def coverage(crops, shape):
    count = np.zeros(shape, np.int32)
    for c in crops:
        y0, x0, y1, x1 = c.clip(*shape)
        count[y0:y1, x0:x1] += 1
    return count


def smooth_image(shape, channels=3):
    h, w = shape
    y = torch.linspace(0, 1, h)[:, None]
    x = torch.linspace(0, 1, w)[None, :]
    chans = [0.5 + 0.4 * torch.sin(3 * x + 2 * y + k) * torch.cos(2 * y - x + k) for k in range(channels)]
    return torch.stack(chans)[None]  # (1, C, H, W) in [0.1, 0.9]


CASES = [(s, k, seed) for s in SHAPES for k in ("rects", "speckles", "border", "stroke") for seed in range(2)]


@pytest.mark.parametrize("strategy", ["crop", "auto", "full", "resize"])
def test_every_hole_pixel_in_exactly_one_crop(strategy):
    for shape, kind, seed in CASES:
        hole = random_hole(shape, np.random.default_rng(seed), kind)
        crops = plan_crops(hole, TRAIN, strategy=strategy)
        assert len({c.size for c in crops}) <= 1  # one working size per plan
        if not hole.any():
            assert crops == []
            continue
        count = coverage(crops, shape)
        assert (count[hole] == 1).all(), (shape, kind, seed, crops)
        if strategy == "crop":  # merged boxes are pairwise disjoint (in the image and beyond it)
            boxes = [c.box for c in crops]
            for i, a in enumerate(boxes):
                for b in boxes[i + 1 :]:
                    assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])


def test_crop_boxes_square_sized_and_placed():
    for shape, kind, seed in CASES:
        h, w = shape
        hole = random_hole(shape, np.random.default_rng(seed), kind)
        for c in plan_crops(hole, TRAIN, strategy="crop"):
            y0, x0, y1, x1 = c.box
            side = y1 - y0
            assert x1 - x0 == side and c.size == (TRAIN, TRAIN)
            assert TRAIN <= side <= max(h, w, TRAIN)
            for lo, hi, n in ((y0, y1, h), (x0, x1, w)):
                if side <= n:  # fits: lies inside the image
                    assert 0 <= lo and hi <= n
                else:  # sticks out on both ends, centred
                    assert lo < 0 and hi > n and abs((lo + hi) - n) <= 1
            ys, xs = np.nonzero(hole[max(y0, 0) : y1, max(x0, 0) : x1])
            ys, xs = ys + max(y0, 0), xs + max(x0, 0)
            extent = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
            if side < max(h, w):  # not capped at the whole image: the hole is at most half the side
                assert extent <= side // 2
            # context: at least CONTEXT known pixels around the hole, unless the box side is at the image edge
            assert ys.min() - y0 >= CONTEXT or y0 <= 0
            assert xs.min() - x0 >= CONTEXT or x0 <= 0
            assert y1 - 1 - ys.max() >= CONTEXT or y1 >= h
            assert x1 - 1 - xs.max() >= CONTEXT or x1 >= w


def test_nearby_blobs_merge_far_blobs_do_not():
    hole = np.zeros((1000, 1000), bool)
    hole[100:110, 100:110] = True
    hole[100:110, 130:140] = True  # 20 px away: same crop
    hole[800:810, 800:810] = True  # far away: own crop
    crops = plan_crops(hole, TRAIN, strategy="crop")
    assert len(crops) == 2
    assert all(c.box_size == (TRAIN, TRAIN) for c in crops)  # small holes: native resolution, no upscaling


def test_overlapping_boxes_merge():
    hole = np.zeros((1000, 1000), bool)
    hole[300:340, 300:340] = True
    hole[300:340, 500:540] = True  # 160 px apart: 256-boxes overlap
    crops = plan_crops(hole, TRAIN, strategy="crop")
    assert len(crops) == 1
    assert coverage(crops, hole.shape)[hole].min() == 1


@pytest.mark.parametrize(
    "shape,kind,seed",
    [((20, 30), "rects", 0), ((37, 41), "border", 1), ((300, 700), "rects", 1), ((2000, 300), "border", 0),
     ((700, 700), "stroke", 0), ((513, 1025), "rects", 0)],
)
@pytest.mark.parametrize("strategy", ["auto", "crop", "resize"])
def test_identity_network_round_trip(shape, kind, seed, strategy):
    hole = random_hole(shape, np.random.default_rng(seed), kind)
    image = smooth_image(shape)
    crops = plan_crops(hole, TRAIN, strategy=strategy)
    out = paste(image[0], extract(image, crops), crops, hole)
    assert out.shape == image[0].shape
    keep = torch.from_numpy(~hole)
    assert torch.equal(out[:, keep], image[0][:, keep])  # bit-exact outside the hole
    diff = (out - image[0]).abs()[:, torch.from_numpy(hole)]
    if all(c.scale == (1.0, 1.0) for c in crops):
        assert diff.max() == 0  # no resampling: exact everywhere
    else:
        assert diff.mean() < 0.005 and diff.max() < 0.02


def test_paste_never_writes_outside_the_hole():
    rng = np.random.default_rng(3)
    for shape, strategy in [((300, 700), "crop"), ((2000, 300), "crop"), ((20, 30), "full"), ((513, 1025), "resize")]:
        hole = random_hole(shape, rng, "rects")
        image = torch.rand((3,) + shape)
        crops = plan_crops(hole, TRAIN, strategy=strategy)
        results = torch.rand((len(crops), 3) + crops[0].size) + 5.0  # far from anything in the image
        out = paste(image, results, crops, hole)
        changed = (out != image).any(0).numpy()
        assert not (changed & ~hole).any()
        assert changed[hole].all()  # and every hole pixel got an answer
        assert torch.equal(image, image.clone())  # the canvas itself is not modified
        assert (out[:, torch.from_numpy(hole)] >= 4.0).all()


def test_extract_shapes_and_full_crop_is_reflect_padding():
    hole = np.zeros((20, 30), bool)
    hole[3:6, 4:9] = True
    image = torch.rand(1, 3, 20, 30)
    crops = plan_crops(hole, TRAIN)
    assert crops == [Crop((0, 0, 128, 128), (128, 128))]
    x = extract(image, crops)
    assert x.shape == (1, 3, 128, 128)
    assert torch.equal(x, pad_to_multiple(image, 128)[0])
    m = extract_mask(hole, crops)
    assert m.shape == (1, 1, 128, 128) and m.dtype == torch.float32
    assert np.array_equal(m[0, 0, :20, :30].bool().numpy(), hole)
    assert set(m.unique().tolist()) <= {0.0, 1.0}


def test_extract_mask_is_conservative():
    """Every working pixel that extract() fills with (part of) a hole pixel's value is marked as hole."""
    rng = np.random.default_rng(5)
    for shape, strategy in [
        ((300, 700), "crop"), ((2000, 300), "crop"), ((513, 1025), "resize"), ((37, 41), "crop"),
        ((20, 30), "resize"), ((100, 1000), "resize"),  # upscaled; upscaled in y, downscaled in x
    ]:
        for kind in ("rects", "stroke", "border"):
            hole = random_hole(shape, rng, kind)
            crops = plan_crops(hole, TRAIN, strategy=strategy)
            image = torch.rand((1, 1) + shape) * 0.5
            image[0, 0, torch.from_numpy(hole)] = 1e6  # poison the hole
            poisoned = extract(image, crops) > 1.0
            m = extract_mask(hole, crops).bool()
            assert not (poisoned & ~m).any(), (shape, strategy, kind)
            # and the mask does not swallow the crop: at 256 working size most pixels stay known
            if strategy == "crop":
                assert m.float().mean() < 0.75


def test_extract_per_crop_images_and_errors():
    hole = np.zeros((600, 600), bool)
    hole[50:60, 50:60] = True
    hole[500:510, 500:510] = True
    crops = plan_crops(hole, TRAIN, strategy="crop")
    assert len(crops) == 2
    images = torch.rand(2, 3, 600, 600)
    x = extract(images, crops)
    assert torch.equal(x[1], extract(images[1:], crops[1:])[0])
    with pytest.raises(ValueError):
        extract(torch.rand(3, 3, 600, 600), crops)
    with pytest.raises(ValueError):
        extract(images[:1], [Crop((0, 0, 256, 256), 256), Crop((0, 0, 256, 256), 128)])
    with pytest.raises(ValueError):
        plan_crops(hole, strategy="tiles")
    with pytest.raises(ValueError):
        Crop((5, 0, 5, 10), 256)


@pytest.mark.parametrize("hw", [(5, 7), (1, 1), (1, 200), (127, 129), (128, 256), (300, 2)])
@pytest.mark.parametrize("mode", ["reflect", "replicate", "constant"])
def test_pad_unpad_round_trip(hw, mode):
    x = torch.rand((2, 3) + hw)
    padded, size = pad_to_multiple(x, 128, mode=mode)
    assert size == hw
    assert padded.shape[-2] % 128 == 0 and padded.shape[-1] % 128 == 0
    assert padded.shape[-2] - hw[0] < 128 and padded.shape[-1] - hw[1] < 128
    assert torch.equal(unpad(padded, size), x)


def test_pad_matches_torch_when_possible_and_repeats_mirror():
    x = torch.rand(1, 2, 100, 90)
    padded, _ = pad_to_multiple(x, 128, mode="reflect")
    assert torch.equal(padded, F.pad(x, (0, 38, 0, 28), mode="reflect"))
    padded, _ = pad_to_multiple(x, 128, mode="replicate")
    assert torch.equal(padded, F.pad(x, (0, 38, 0, 28), mode="replicate"))
    # pad (123) far beyond the size (5): mirror repeated, period 2 * (5 - 1)
    row = torch.arange(5.0).view(1, 1, 1, 5)
    padded, _ = pad_to_multiple(row, 128)
    assert padded[0, 0, 0, :13].tolist() == [0, 1, 2, 3, 4, 3, 2, 1, 0, 1, 2, 3, 4]
    assert (padded[0, 0] == padded[0, 0, 0]).all()  # height 1: replicated
    same = torch.rand(1, 1, 256, 128)
    assert pad_to_multiple(same, 128)[0] is same


def _hole_with(shape, box):
    hole = np.zeros(shape, bool)
    y0, x0, y1, x1 = box
    hole[y0:y1, x0:x1] = True
    return hole


@pytest.mark.parametrize(
    "shape,box,expected",
    [
        ((20, 30), (3, 3, 10, 10), "full"),  # tiny: padded to 128 x 128
        ((500, 300), (10, 10, 400, 290), "full"),  # padded 512 x 384 <= 512: full even for a big hole
        ((513, 100), (10, 10, 20, 20), "crop"),  # padded 640 > 512, small hole
        ((2000, 300), (900, 100, 950, 150), "crop"),
        ((1000, 1000), (0, 0, 1000, 450), "resize"),  # 45 % hole
        ((1000, 1000), (100, 100, 500, 450), "resize"),  # 14 %, but box side 800 > max(H, W) / 2 = 500
        ((1000, 1000), (100, 100, 250, 250), "crop"),  # box side 300 <= 500
        ((1024, 768), (100, 100, 400, 400), "resize"),  # box side 600 > 512: crop would be coarser than resize
        ((1024, 768), (100, 100, 220, 220), "crop"),  # box side 256: native resolution
    ],
)
def test_auto_rule(shape, box, expected):
    hole = _hole_with(shape, box)
    assert choose_strategy(hole, TRAIN) == expected
    crops = plan_crops(hole, TRAIN)
    assert crops == plan_crops(hole, TRAIN, strategy=expected)
    if expected == "resize":
        (c,) = crops
        assert c.box == (0, 0) + shape
        assert max(c.size) == 2 * TRAIN and all(s % 128 == 0 for s in c.size)
    if expected == "full":
        (c,) = crops
        assert c.scale == (1.0, 1.0) and c.box[:2] == (0, 0) and all(s % 128 == 0 for s in c.size)


def test_resize_size_rule():
    assert plan_crops(np.ones((2000, 300), bool), strategy="resize") == [Crop((0, 0, 2000, 300), (512, 128))]
    assert plan_crops(np.ones((20, 30), bool), strategy="resize") == [Crop((0, 0, 20, 30), (128, 128))]
    assert plan_crops(np.ones((400, 1000), bool), strategy="resize") == [Crop((0, 0, 400, 1000), (256, 512))]


def test_empty_hole_plans_nothing():
    for strategy in ("auto", "crop", "full", "resize"):
        assert plan_crops(np.zeros((300, 400), bool), strategy=strategy) == []
    image = torch.rand(3, 30, 40)
    assert torch.equal(paste(image, torch.zeros(0, 3, 256, 256), [], np.zeros((30, 40), bool)), image)


def test_batched():
    assert [list(b) for b in batched([0, 1, 2, 3, 4], 2)] == [[0, 1], [2, 3], [4]]
    assert [b for b in batched(iter(range(5)), 3)] == [[0, 1, 2], [3, 4]]
    t = torch.arange(7)
    assert [b.tolist() for b in batched(t, 4)] == [[0, 1, 2, 3], [4, 5, 6]]
    assert list(batched([], 3)) == []
    with pytest.raises(ValueError):
        list(batched([1], 0))


# ------------------------------------------------------------------ paste: hole-only sampling of grown boxes


def _reference_paste(canvas, results, crops, hole):
    """The former paste: every result resized to its full box (F.interpolate), then copied at hole pixels."""
    out = canvas.clone()
    h, w = canvas.shape[-2:]
    hole_t = torch.from_numpy(np.asarray(hole, bool))
    for i, crop in enumerate(crops):
        cy0, cx0, cy1, cx1 = crop.clip(h, w)
        if cy1 <= cy0 or cx1 <= cx0:
            continue
        bh, bw = crop.box_size
        r = results[i : i + 1]
        if (bh, bw) != tuple(r.shape[-2:]):
            r = F.interpolate(r, size=(bh, bw), mode="bilinear", align_corners=False,
                              antialias=bh < r.shape[-2] or bw < r.shape[-1])
        y0, x0 = crop.box[:2]
        back = r[0, :, cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        region = out[:, cy0:cy1, cx0:cx1]
        region.copy_(torch.where(hole_t[cy0:cy1, cx0:cx1], back, region))
    return out


PASTE_CASES = [
    # (image shape, box, working size)
    ((300, 400), (0, 0, 300, 400), (128, 256)),  # "resize": grows on both axes, aspect changes
    ((300, 400), (-40, 50, 216, 306), (128, 128)),  # box sticks out at the top
    ((300, 400), (100, 250, 356, 506), (100, 77)),  # bottom right outside, odd factors
    ((300, 400), (10, 20, 266, 276), (256, 256)),  # same size: copied as is
    ((300, 400), (10, 20, 266, 276), (256, 100)),  # one axis kept, one grown
    ((300, 400), (0, 0, 300, 400), (384, 512)),  # shrinks: antialiased full resize path
    ((300, 400), (0, 0, 300, 400), (512, 256)),  # shrinks on one axis only
    ((37, 41), (-100, -100, 156, 156), (32, 32)),  # box much larger than the image
    ((5, 7), (0, 0, 5, 7), (1, 1)),  # a 1-pixel result
]


@pytest.mark.parametrize("shape, box, size", PASTE_CASES)
def test_paste_matches_full_resize_reference(shape, box, size):
    rng = np.random.default_rng(7)
    hole = rng.random(shape) < 0.3
    canvas = torch.from_numpy(rng.random((3,) + shape, dtype=np.float32))
    crops = [Crop(box, size)]
    results = torch.from_numpy(rng.random((1, 3) + size, dtype=np.float32))
    ref = _reference_paste(canvas, results, crops, hole)
    out = paste(canvas, results, crops, hole)
    hole_t = torch.from_numpy(hole)
    assert torch.equal(out[:, ~hole_t], canvas[:, ~hole_t])  # outside the hole: bit-identical
    assert float((out - ref).abs().max()) <= 1e-5  # far within 1/255
    assert torch.equal(torch.round(out * 255), torch.round(ref * 255)) or \
        float((torch.round(out * 255) - torch.round(ref * 255)).abs().max()) <= 1


def test_paste_several_crops_matches_reference():
    rng = np.random.default_rng(3)
    hole = np.zeros((700, 900), bool)
    hole[50:120, 60:200] = True
    hole[400:690, 500:890] = rng.random((290, 390)) < 0.5
    crops = [Crop((0, 0, 256, 256), TRAIN), Crop((300, 450, 800, 950), TRAIN), Crop((-20, 300, 280, 400), TRAIN)]
    canvas = torch.from_numpy(rng.random((1, 3, 700, 900), dtype=np.float32))
    results = torch.from_numpy(rng.random((len(crops), 3, TRAIN, TRAIN), dtype=np.float32))
    ref = _reference_paste(canvas[0], results, crops, hole)
    out = paste(canvas, results, crops, hole)
    assert out.shape == canvas.shape
    assert float((out[0] - ref).abs().max()) <= 1e-5


def test_paste_inplace_and_copy_semantics():
    rng = np.random.default_rng(5)
    hole = rng.random((64, 80)) < 0.2
    crops = plan_crops(hole, 32, strategy="resize", resize_max_side=32, multiple=16)
    results = torch.rand(len(crops), 3, *crops[0].size)
    # channels-last memory, like the HWC numpy image api.py wraps
    canvas = torch.from_numpy(rng.random((64, 80, 3), dtype=np.float32)).permute(2, 0, 1)
    before = canvas.clone()
    out = paste(canvas, results, crops, hole)  # default: a new tensor, the canvas untouched
    assert torch.equal(canvas, before) and out.data_ptr() != canvas.data_ptr()
    assert out.stride() == canvas.stride()  # memory layout kept
    same = paste(canvas, results, crops, hole, inplace=True)  # written into the canvas itself
    assert same.data_ptr() == canvas.data_ptr()
    assert torch.equal(canvas, out) and not torch.equal(canvas, before)


def test_paste_float64_canvas_and_grown_path_dtype():
    hole = np.zeros((50, 60), bool)
    hole[10:30, 20:50] = True
    crops = [Crop((0, 0, 50, 60), (16, 32))]
    canvas = torch.rand(3, 50, 60, dtype=torch.float64)
    results = torch.rand(1, 3, 16, 32)
    out = paste(canvas, results, crops, hole)
    assert out.dtype == torch.float64
    ref = _reference_paste(canvas, results.double(), crops, hole)
    assert float((out - ref).abs().max()) <= 1e-5  # taps are computed in float32


def test_component_boxes_match_connected_component_statistics():
    import cv2

    from lbam.tiling.plan import _component_boxes

    def reference(m):
        _, _, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
        st = stats[1:].astype(np.int64)
        return sorted(map(tuple, np.stack([st[:, 0], st[:, 1], st[:, 0] + st[:, 2], st[:, 1] + st[:, 3]], 1).tolist()))

    rng = np.random.default_rng(0)
    masks = []
    for t in range(40):
        h, w = (int(v) for v in rng.integers(1, 120, 2))
        m = (rng.random((h, w)) < rng.uniform(0.01, 0.6)).astype(np.uint8)
        if t % 2:
            m = cv2.dilate(m, np.ones((3, 3), np.uint8))
        masks.append(m)
    ring = np.ones((9, 9), np.uint8)
    ring[2:7, 2:7] = 0
    ring[4, 4] = 1  # a component inside another's hole
    diagonal = np.zeros((7, 7), np.uint8)
    diagonal[1, 1] = diagonal[2, 2] = diagonal[3, 1] = 1  # one component through 8-connectivity
    masks += [ring, diagonal, np.ones((1, 9), np.uint8), np.ones((5, 7), np.uint8), np.zeros((4, 4), np.uint8)]
    for m in masks:
        assert sorted(map(tuple, _component_boxes(m).tolist())) == reference(m)
