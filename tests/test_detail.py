"""Context detail transfer (lbam.detail): texture from the known pixels, matched by context, never outside the hole."""
import numpy as np
import pytest
import torch

from lbam import Inpainter
from lbam.detail import DETAILS, add_context_detail, band_residual, octaves_for, transfer_detail
from lbam.edges import rgb_to_gray


def _band_std(x: torch.Tensor, where: torch.Tensor) -> float:
    return float(band_residual(rgb_to_gray(x))[0, 0][where].std())


def _two_halves(size=(96, 128)):
    """Left half: gray noise around 0.3 (a texture); right half: flat 0.7. One square hole in each half, filled
    with its half's mean colour (a perfectly smooth fill)."""
    h, w = size
    g = torch.Generator().manual_seed(3)
    img = torch.full((1, 3, h, w), 0.7)
    img[..., : w // 2] = 0.3 + 0.15 * (torch.rand(1, 1, h, w // 2, generator=g) - 0.5)
    hole = torch.zeros(1, 1, h, w)
    hole[..., 32:64, 16:48] = 1
    hole[..., 32:64, 80:112] = 1
    filled = img.clone()
    filled[..., 32:64, 16:48] = 0.3
    filled[..., 32:64, 80:112] = 0.7
    return img, hole, filled


def test_texture_goes_where_the_context_is_textured_and_nowhere_else():
    img, hole, filled = _two_halves()
    out = transfer_detail(filled, hole)
    known = hole[0, 0] == 0
    assert torch.equal(out[..., known], filled[..., known])  # known pixels exactly the input's
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    left = torch.zeros_like(known)
    left[36:60, 20:44] = True  # inside the left hole, away from its rim
    right = torch.zeros_like(known)
    right[36:60, 84:108] = True
    texture = _band_std(img, left)
    assert _band_std(filled, left) < 1e-6  # the fill was flat ...
    assert _band_std(out, left) > 0.4 * texture  # ... and now carries a good part of the photo's texture
    assert _band_std(out, right) < 0.05 * texture  # the flat half's hole matched flat sources and stays flat


def test_the_draw_is_seeded_and_strength_scales_it():
    img, hole, filled = _two_halves()
    a, b = transfer_detail(filled, hole, seed=1), transfer_detail(filled, hole, seed=1)
    assert torch.equal(a, b)
    assert not torch.equal(a, transfer_detail(filled, hole, seed=2))
    assert torch.equal(transfer_detail(filled, hole, strength=0.0), filled)
    half = transfer_detail(filled, hole, seed=1, strength=0.5)
    assert torch.allclose(half - filled, 0.5 * (a - filled), atol=1e-5)  # no clamping at these values


def test_nothing_to_draw_from_or_nothing_to_fill_leaves_the_image_as_it_is():
    img, _, _ = _two_halves()
    no_hole = torch.zeros(1, 1, *img.shape[-2:])
    assert torch.equal(transfer_detail(img, no_hole), img)
    almost_all = torch.ones_like(no_hole)
    almost_all[..., :4, :4] = 0  # 4 known pixels: no clean source window anywhere
    assert torch.equal(transfer_detail(img, almost_all), img)
    for bad in (dict(cell=7), dict(cell=0), dict(octaves=0), dict(tau=0.0), dict(strength=-1.0), dict(clip=0.0)):
        with pytest.raises(ValueError):
            transfer_detail(img, no_hole, **bad)


def test_band_and_window_follow_the_scale_of_the_fill():
    assert octaves_for(1.0) == 1 and octaves_for(0.5) == 2 and octaves_for(0.25) == 3 and octaves_for(1.5) == 1
    x = torch.rand(1, 3, 40, 50)
    assert torch.allclose(band_residual(torch.full_like(x, 0.4)), torch.zeros_like(x), atol=1e-6)
    assert band_residual(x, 2).abs().mean() > band_residual(x, 1).abs().mean()  # a wider band holds more


def test_add_context_detail_works_in_place_on_the_region_around_the_hole():
    img, hole, filled = _two_halves((96, 400))  # the holes sit in the left 128 columns of a wide image
    far = filled.clone()
    far[..., 300:] = torch.rand(1, 3, 96, 100, generator=torch.Generator().manual_seed(0))  # noise far away
    before = far.clone()
    out = add_context_detail(far, hole[0, 0].numpy() > 0)
    assert out is far and not torch.equal(far, before)  # in place
    assert torch.equal(far[..., hole[0, 0] == 0], before[..., hole[0, 0] == 0])


def test_inpainter_detail_option():
    inp = Inpainter.from_config("tiny", device="cpu")
    assert inp.detail == "none" and inp.detail_strength == 1.0 and DETAILS == ("none", "context")
    rng = np.random.default_rng(0)
    img = (0.4 + 0.3 * rng.random((160, 200, 3))).astype(np.float32)  # a noisy photo
    hole = np.zeros((160, 200), bool)
    hole[50:110, 60:140] = True
    plain = inp.inpaint(img, hole)
    inp.detail = "context"
    sharp = inp.inpaint(img, hole)
    assert np.array_equal(sharp[~hole], img[~hole])
    grad = lambda x: np.abs(np.diff(x, axis=1))[hole[:, 1:] & hole[:, :-1]].mean()  # noqa: E731
    assert grad(sharp) > 1.5 * grad(plain)
    inp.detail_strength = 0
    assert np.array_equal(inp.inpaint(img, hole), plain)
    with pytest.raises(ValueError, match="detail"):
        inp.detail = "sharp"
    with pytest.raises(ValueError, match="detail_strength"):
        inp.detail_strength = -1
    assert inp.detail == "context" and inp.detail_strength == 0


def test_neighbouring_windows_do_not_draw_the_same_source():
    from lbam.detail import draw_sources

    nh, nw, k = 6, 7, 3
    targets = torch.arange(nh * nw)
    cand = torch.tensor([[5, 9, 11]]).repeat(nh * nw, 1)  # every window has the same three candidates ...
    logits = torch.tensor([[3.0, 2.0, 1.0]]).repeat(nh * nw, 1)  # ... and would take source 5 without the rule
    drawn = draw_sources(cand, logits, targets, nh, nw).view(nh, nw)
    assert set(drawn.unique().tolist()) <= {5, 9, 11}
    # with the 8 neighbours excluded, three sources cannot colour a grid: where all three are taken the best
    # one is drawn again; but no two horizontally or vertically adjacent windows of the first group repeat
    first = drawn[0::2, 0::2]
    assert (first == 5).all()  # the first group has no drawn neighbour yet: its best candidate
    assert (drawn[1::2, 1::2] != 5).all()  # the second group avoids its diagonal neighbours' source
    wide = torch.arange(12)[None].repeat(nh * nw, 1)  # enough candidates: no neighbour repeats at all
    drawn = draw_sources(wide, torch.linspace(2, 1, 12)[None].repeat(nh * nw, 1), targets, nh, nw).view(nh, nw)
    for i in range(nh):
        for j in range(nw):
            for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
                if 0 <= i + dy < nh and 0 <= j + dx < nw:
                    assert drawn[i, j] != drawn[i + dy, j + dx], (i, j, dy, dx)
