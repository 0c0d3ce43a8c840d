"""lbam.edges: gray conversion and the OpenCV/numpy Canny against scikit-image's reference."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lbam.edges import GRAY_WEIGHTS, canny, canny_edges, rgb_to_gray
from lbam.errors import InputError

from skimage.color import rgb2gray  # the [test] extra: these comparisons must run, never skip
from skimage.feature import canny as sk_canny

PHOTO_DIR = Path(__file__).resolve().parent / "fixtures" / "photos"  # synthetic, see make_photos.py
SIGMA, LOW, HIGH = 1.5, 0.1, 0.2


def _photos(k=3, long_side=512):
    files = sorted(p for p in PHOTO_DIR.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:k]
    assert len(files) == k, f"the test photos in {PHOTO_DIR} are missing"
    out = []
    for f in files:
        img = Image.open(f).convert("RGB")
        img.thumbnail((long_side, long_side), Image.BICUBIC)
        out.append((f.name, np.asarray(img)))
    return out


@pytest.fixture(scope="module")
def photos():
    return _photos()


def _holes(h, w):
    """A hole mask (True = hole) with a rectangle, a disk and a thin stroke."""
    yy, xx = np.mgrid[:h, :w]
    hole = np.zeros((h, w), bool)
    hole[h // 5 : h // 2, w // 4 : w // 2] = True
    hole |= (yy - 2 * h // 3) ** 2 + (xx - 3 * w // 4) ** 2 < (min(h, w) // 8) ** 2
    hole |= np.abs(yy - (xx * h) // w) < 3
    hole[:, :3] = True  # touching the image border
    return hole


def f1(pred, ref, tol=0):
    """F1 of two binary maps; tol > 0 counts a pixel as matched within a (2*tol+1)^2 window."""
    pred = pred.astype(bool)
    ref = ref.astype(bool)
    if tol:
        from scipy.ndimage import binary_dilation

        s = np.ones((2 * tol + 1, 2 * tol + 1), bool)
        precision = (pred & binary_dilation(ref, s)).sum() / max(pred.sum(), 1)
        recall = (ref & binary_dilation(pred, s)).sum() / max(ref.sum(), 1)
    else:
        tp = (pred & ref).sum()
        precision = tp / max(pred.sum(), 1)
        recall = tp / max(ref.sum(), 1)
    return 2 * precision * recall / max(precision + recall, 1e-12)


# ------------------------------------------------------------------------------------ gray


def test_rgb_to_gray_numpy_matches_skimage(photos):
    _, rgb8 = photos[0]
    rgb = rgb8.astype(np.float64) / 255.0
    ours = rgb_to_gray(rgb)
    assert ours.dtype == np.float32 and ours.shape == rgb.shape[:2]
    np.testing.assert_allclose(ours, rgb2gray(rgb), atol=1e-6)
    # uint8 is scaled by 1/255
    np.testing.assert_allclose(rgb_to_gray(rgb8), ours, atol=1e-6)


def test_rgb_to_gray_torch_matches_numpy():
    rng = np.random.default_rng(0)
    rgb = rng.random((2, 3, 17, 23), dtype=np.float32)
    t = torch.from_numpy(rgb)
    g = rgb_to_gray(t)
    assert g.shape == (2, 1, 17, 23) and g.dtype == torch.float32
    for i in range(2):
        np.testing.assert_allclose(g[i, 0].numpy(), rgb_to_gray(rgb[i].transpose(1, 2, 0)), atol=1e-6)
        np.testing.assert_allclose(g[i, 0].numpy(), rgb2gray(rgb[i].transpose(1, 2, 0)), atol=1e-6)
    assert rgb_to_gray(t[0]).shape == (1, 17, 23)
    assert sum(GRAY_WEIGHTS) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 4)),
        np.zeros((4, 4, 4)),
        np.zeros((4, 4, 3), complex),
        torch.zeros(2, 4, 5, 5),
        torch.zeros(1, 3, 4, 4, dtype=torch.int32),
        [1, 2, 3],
    ],
)
def test_rgb_to_gray_rejects(bad):
    with pytest.raises(InputError):
        rgb_to_gray(bad)


# ------------------------------------------------------------------------------------ canny


def test_canny_matches_skimage(photos):
    for name, rgb8 in photos:
        gray = rgb2gray(rgb8)
        ref = sk_canny(gray, sigma=SIGMA, low_threshold=LOW, high_threshold=HIGH)
        ours = canny(gray, sigma=SIGMA, low=LOW, high=HIGH)
        assert ours.dtype == np.uint8 and ours.shape == gray.shape
        assert set(np.unique(ours)) <= {0, 1}
        exact, near = f1(ours, ref), f1(ours, ref, tol=1)
        print(f"{name} {gray.shape}: skimage {ref.sum()} edge px, ours {ours.sum()}; "
              f"F1 exact {exact:.4f}, 1-px {near:.4f}")
        assert ref.sum() > 100
        assert exact >= 0.99
        assert near >= 0.99
        # the 1-pixel image border never holds an edge (as in skimage)
        assert not ours[0].any() and not ours[-1].any() and not ours[:, 0].any() and not ours[:, -1].any()
        # float32 input: same edges up to float rounding
        assert f1(canny(gray.astype(np.float32)), ref) >= 0.99


def test_canny_with_hole_matches_skimage_mask(photos):
    from scipy.ndimage import binary_dilation

    for name, rgb8 in photos:
        gray = rgb2gray(rgb8)
        hole = _holes(*gray.shape)
        known = ~hole
        ref = sk_canny(gray, sigma=SIGMA, low_threshold=LOW, high_threshold=HIGH, mask=known)
        ours = canny(gray, known, sigma=SIGMA, low=LOW, high=HIGH)
        exact, near = f1(ours, ref), f1(ours, ref, tol=1)
        print(f"{name} with holes: F1 exact {exact:.4f}, 1-px {near:.4f}")
        assert exact >= 0.99
        # no edge in a hole, nor on a known pixel touching one
        assert not ours[binary_dilation(hole, np.ones((3, 3), bool))].any()
        # the hole must not influence edges far from it: compare with the unmasked edges
        full = canny(gray, sigma=SIGMA, low=LOW, high=HIGH).astype(bool)
        far = ~binary_dilation(hole, np.ones((31, 31), bool))
        assert f1(ours.astype(bool) & far, full & far) >= 0.95


def test_canny_simple_cases():
    img = np.zeros((40, 50))
    img[10:30, 15:35] = 1.0
    e = canny(img)
    assert e.sum() > 0
    # edges lie on the square's outline, nowhere else
    assert not e[:8].any() and not e[32:].any() and not e[14:26, 19:31].any()
    assert not canny(np.full((40, 50), 0.5)).any()
    assert canny(np.zeros((2, 2))).shape == (2, 2)
    # everything unknown: no edges at all
    assert not canny(img, np.zeros(img.shape, bool)).any()
    # bool/uint8 known masks are both fine
    np.testing.assert_array_equal(canny(img, np.ones(img.shape, np.uint8)), canny(img, np.ones(img.shape, bool)))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(gray=np.zeros((4, 4, 3))),
        dict(gray=np.zeros((8, 8)), known=np.ones((8, 9), bool)),
        dict(gray=np.zeros((8, 8)), sigma=0),
        dict(gray=np.zeros((8, 8)), low=0.3, high=0.2),
        dict(gray=np.zeros((8, 8), np.uint8)),
    ],
)
def test_canny_rejects(kwargs):
    with pytest.raises(InputError):
        canny(**kwargs)


def test_canny_edges_batch(photos):
    grays = [rgb2gray(rgb8)[:256, :320].astype(np.float32) for _, rgb8 in photos[:2]]
    gray = torch.from_numpy(np.stack(grays))[:, None]
    hole = torch.zeros_like(gray)
    hole[0, 0, 50:120, 60:200] = 1.0
    out = canny_edges(gray, hole, SIGMA, LOW, HIGH)
    assert out.shape == gray.shape and out.dtype == torch.float32 and out.device == gray.device
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    for i in range(2):
        known = hole[i, 0].numpy() < 0.5
        np.testing.assert_array_equal(out[i, 0].numpy(), canny(grays[i], known, SIGMA, LOW, HIGH))
    assert out[0, 0, 50:120, 60:200].sum() == 0
    # a bool hole tensor means the same
    torch.testing.assert_close(canny_edges(gray, hole.bool(), SIGMA, LOW, HIGH), out)
    with pytest.raises(InputError):
        canny_edges(gray, hole[:, :, :10], SIGMA, LOW, HIGH)
    with pytest.raises(InputError):
        canny_edges(gray[:, 0], hole[:, 0], SIGMA, LOW, HIGH)
