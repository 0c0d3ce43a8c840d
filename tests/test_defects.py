"""Defect numbers (lbam.training.defects), edge decoding and the sharpness / grid losses on synthetic cases
whose answers are known."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from lbam.compose import decode_edges
from lbam.training import defects as D
from lbam.training import losses as L
from lbam.training.metrics import grid_energy


def _hole(size=64, box=(16, 48, 16, 48)):
    h = torch.zeros(1, 1, size, size)
    y0, y1, x0, x1 = box
    h[..., y0:y1, x0:x1] = 1
    return h


def _vertical_line(size=64, x=32):
    t = torch.zeros(1, 1, size, size)
    t[..., x] = 1
    return t


def _checkerboard(size=64):
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return ((yy + xx) % 2).float().view(1, 1, size, size)


def _texture(size=64, seed=0, cell=4):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, size // cell, size // cell, generator=g)
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


# ---- edges ------------------------------------------------------------------------------------------
def test_edge_scores_of_the_true_line_are_perfect():
    hole, line = _hole(), _vertical_line()
    s = D.edge_scores(D.edge_counts(line, line, hole))
    assert s == {"edge_p": 1.0, "edge_r": 1.0, "edge_f1": 1.0, "haze": 0.0}


def test_edge_scores_tolerate_two_pixels_but_not_three():
    hole, line = _hole(), _vertical_line()
    assert D.edge_scores(D.edge_counts(_vertical_line(x=34), line, hole))["edge_f1"] == 1.0
    assert D.edge_scores(D.edge_counts(_vertical_line(x=35), line, hole))["edge_f1"] == 0.0


def test_haze_is_the_mean_edge_value_away_from_true_edges():
    hole, line = _hole(), _vertical_line()
    fog = torch.full_like(line, 0.3)
    s = D.edge_scores(D.edge_counts(fog, line, hole))
    assert s["haze"] == pytest.approx(0.3, abs=1e-6)
    assert s["edge_p"] == 0.0 and s["edge_r"] == 0.0  # nothing reaches the 0.5 threshold


def _hatching(size=128, spacing=6, slope=0.3, dash=None):
    """Parallel lines x - slope * y = const (mod spacing), one pixel wide; with ``dash``, cut into dashes."""
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    phase = torch.remainder(xx - slope * yy, spacing)
    lines = (phase < 1).float()
    if dash:
        lines = lines * (torch.remainder(yy, dash) < dash * 0.6).float()
    return lines.view(1, 1, size, size)


@pytest.mark.parametrize("spacing,dash", [(5, None), (6, 20), (8, None)])  # dash 20: 12-px dashes
def test_hatch_flags_parallel_lines_in_the_hole_only(spacing, dash):
    hole = _hole(128, (0, 128, 0, 64))  # left half
    lines = _hatching(spacing=spacing, dash=dash)
    c = D.hatch_counts(lines, hole)
    assert c["hatch_n"].item() == 7 * 3  # 7 rows x 3 columns of 32-px windows stride 16 lie wholly in the hole
    assert c["hatch"].item() == c["hatch_n"].item()
    assert D.hatch_counts(lines, 1 - hole)["hatch"].item() == 7 * 3  # the right half holds 3 columns too
    assert D.hatch_counts(lines * 0, hole)["hatch"].item() == 0


def test_hatch_spares_single_lines_curves_fog_noise_and_wide_stripes():
    hole = _hole(128, (0, 128, 0, 128))
    yy, xx = torch.meshgrid(torch.arange(128).float(), torch.arange(128).float(), indexing="ij")
    ring = ((torch.sqrt((yy - 64) ** 2 + (xx - 64) ** 2) - 40).abs() < 0.7).float().view(1, 1, 128, 128)
    sparse = (torch.rand(1, 1, 128, 128, generator=torch.Generator().manual_seed(0)) > 0.97).float()
    cases = {"one line": _vertical_line(128, 60), "circle": ring, "fog": torch.full((1, 1, 128, 128), 0.3),
             "dots": sparse, "lines 16 px apart": _hatching(spacing=16)}
    for name, edges in cases.items():
        assert D.hatch_counts(edges, hole)["hatch"].item() == 0, name


def _dash(size=128, y=40, x0=20, length=10):
    e = torch.zeros(1, 1, size, size)
    e[..., y, x0:x0 + length] = 1
    return e


def test_stray_counts_dashes_in_edge_free_hole_windows():
    hole = _hole(128, (0, 128, 0, 64))  # left half: 7 rows x 3 columns of 32-px windows, stride 16
    truth = _vertical_line(128, 100)  # outside the hole: every hole window is edge-free
    c = D.stray_counts(_dash(), truth, hole)
    assert c["stray_n"].item() == 21
    assert c["stray"].item() == 4  # the 10-px dash at y 40, x 20-29 lies in windows y0 16/32 x x0 0/16
    assert D.stray_counts(_dash(length=6), truth, hole)["stray"].item() == 0  # under STRAY_MIN_PIXELS
    assert D.stray_counts(truth, truth, hole)["stray"].item() == 0
    assert D.stray_counts(_dash(), truth, 1 - hole)["stray"].item() == 0  # the dash is outside that hole


def test_stray_skips_windows_with_true_edges_and_lines_near_them():
    hole = _hole(128, (0, 128, 0, 64))
    truth = _vertical_line(128, 50)  # in the hole: the windows at x0 32 hold it
    c = D.stray_counts(_vertical_line(128, 44), truth, hole)  # a line 6 px off: false
    assert c["stray_n"].item() == 14
    assert c["stray"].item() == 7  # the column of windows at x0 16 (x 16-47) holds it; x0 0 does not
    assert D.stray_counts(_vertical_line(128, 47), truth, hole)["stray"].item() == 0  # 3 px: within HAZE_DISTANCE
    s = D.edge_scores({**D.edge_counts(_vertical_line(128, 44), truth, hole), **c})
    assert s["stray"] == pytest.approx(0.5)
    small = D.stray_counts(_dash(16, 5, 2), _vertical_line(16, 3), _hole(16, (0, 16, 0, 16)))
    assert small["stray_n"].item() == 0 and small["stray"].item() == 0


def test_hatch_score_pools_windows_and_reports_the_truths():
    hole = _hole(128, (0, 128, 0, 128))
    counts = {**D.edge_counts(_hatching(), _vertical_line(128), hole), **D.hatch_counts(_hatching(), hole),
              "hatch_true": D.hatch_counts(_vertical_line(128), hole)["hatch"]}
    s = D.edge_scores(counts)
    assert s["hatch"] == 1.0 and s["hatch_true"] == 0.0
    assert "hatch" not in D.edge_scores(D.edge_counts(_vertical_line(), _vertical_line(), _hole()))
    small = D.hatch_counts(_hatching(16), _hole(16, (0, 16, 0, 16)))
    assert small["hatch_n"].item() == 0 and D.edge_scores({**D.edge_counts(
        _hatching(16), _hatching(16), _hole(16, (0, 16, 0, 16))), **small})["hatch"] == 0.0


def test_nms_decoding_turns_a_soft_band_into_a_thin_line_and_removes_haze():
    x = torch.arange(64).float()
    band = torch.exp(-((x - 32.3) ** 2) / (2 * 3.0**2)).view(1, 1, 1, 64).expand(1, 1, 64, 64).contiguous()
    thin = decode_edges(band, "nms", 0.5)
    assert (thin[0, 0, 10] > 0).sum() == 1 and thin[0, 0, 10, 32] > 0.9
    assert decode_edges(band * 0.3, "nms", 0.5).abs().sum() == 0  # a faint band is haze: gone
    assert torch.equal(decode_edges(band, "none"), band)
    hole, line = _hole(), _vertical_line()
    raw_haze = D.edge_scores(D.edge_counts(band, line, hole))["haze"]
    assert raw_haze > 0.05 and D.edge_scores(D.edge_counts(thin, line, hole))["haze"] == 0.0


def test_nms_decoding_leaves_no_dotted_lattice_on_a_rippled_plateau():
    # MECNet's transposed convolutions ripple with period 2: on a plateau every other pixel is a local maximum
    plateau = (0.6 + 0.1 * _checkerboard()).view(1, 1, 64, 64)
    assert decode_edges(plateau, "nms", 0.5)[..., 2:-2, 2:-2].abs().sum() == 0


# ---- fills ------------------------------------------------------------------------------------------
def test_sharpness_of_a_flat_fill_is_zero_and_of_the_truth_is_one():
    truth, hole = _texture(), _hole()
    flat = truth * (1 - hole) + hole * truth.mean()
    assert D.fill_scores(D.fill_sums(truth, truth, hole))["sharpness"] == pytest.approx(1.0)
    assert D.fill_scores(D.fill_sums(flat, truth, hole))["sharpness"] == pytest.approx(0.0, abs=1e-4)


def test_grid_ratio_flags_a_checkerboard_fill():
    truth, hole = _texture(), _hole()
    same = D.fill_scores(D.fill_sums(truth, truth, hole))
    assert same["grid2"] == pytest.approx(1.0) and same["grid4"] == pytest.approx(1.0)
    gridded = (truth + 0.05 * _checkerboard() * hole).clamp(0, 1)
    assert D.fill_scores(D.fill_sums(gridded, truth, hole))["grid2"] > 5
    blocks = (truth + 0.05 * _checkerboard(32).repeat_interleave(2, 2).repeat_interleave(2, 3) * hole).clamp(0, 1)
    assert D.fill_scores(D.fill_sums(blocks, truth, hole))["grid4"] > 5
    big_truth, big_hole = _texture(128, cell=16), _hole(128, (24, 104, 24, 104))
    blocks8 = _checkerboard(32).repeat_interleave(4, 2).repeat_interleave(4, 3)
    blocks8 = (big_truth + 0.05 * blocks8 * big_hole).clamp(0, 1)
    assert D.fill_scores(D.fill_sums(blocks8, big_truth, big_hole))["grid8"] > 5


def test_grid_energy_ignores_flat_areas_and_ramps():
    ramp = torch.linspace(0, 1, 64).view(1, 1, 1, 64).expand(1, 3, 64, 64)
    assert grid_energy(ramp).abs().max() < 1e-5
    assert grid_energy(torch.full((1, 3, 64, 64), 0.4)).abs().max() < 1e-6
    assert grid_energy(_checkerboard()).mean() == pytest.approx(8.0)


def _step_edge(size=64, angle=0.0, low=0.2, high=0.8):
    """A straight two-tone edge through the centre at ``angle`` radians from vertical, RGB; and its Canny-like
    one-pixel line (the pixels nearest the boundary on the dark side)."""
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    c = (size - 1) / 2
    signed = (xx - c) * np.cos(angle) + (yy - c) * np.sin(angle)
    img = torch.where(signed > 0, high, low).view(1, 1, size, size).expand(1, 3, size, size).contiguous()
    line = ((signed <= 0) & (signed > -1)).float().view(1, 1, size, size)
    return img, line


@pytest.mark.parametrize("angle", [0.0, 0.5, 1.2])
def test_edge_step_is_one_for_the_truth_and_zero_for_a_flat_fill(angle):
    truth, line = _step_edge(angle=angle)
    hole = _hole()
    assert D.fill_scores(D.fill_sums(truth, truth, hole, line))["edge_step"] == pytest.approx(1.0)
    flat = torch.full_like(truth, 0.5)
    assert D.fill_scores(D.fill_sums(flat, truth, hole, line))["edge_step"] == pytest.approx(0.0, abs=1e-6)


def test_edge_step_falls_for_a_smeared_edge_but_not_for_noise_or_a_one_pixel_shift():
    truth, line = _step_edge()
    hole = _hole()

    def score(fill):
        return D.fill_scores(D.fill_sums(fill.clamp(0, 1), truth, hole, line))["edge_step"]

    x = torch.arange(64).float()
    ramp = (0.2 + 0.6 * torch.sigmoid((x - 31.5) / 4.0)).view(1, 1, 1, 64).expand(1, 3, 64, 64)
    assert score(ramp) < 0.5  # a soft ramp about 16 px wide, what a blurred mean leaves
    noisy = truth + 0.05 * torch.randn(1, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    assert 0.9 < score(noisy) < 1.15
    assert score(torch.roll(truth, 1, dims=-1)) > 0.85
    # only edges inside the (eroded) hole count: a flat fill outside the hole changes nothing
    outside = torch.where(_hole().bool(), truth, torch.full_like(truth, 0.5))
    assert score(outside) == pytest.approx(1.0)


def test_edge_step_is_absent_without_true_edges():
    truth, _ = _step_edge()
    assert "edge_step" not in D.fill_scores(D.fill_sums(truth, truth, _hole()))


def test_blotch_share_counts_colours_far_from_truth_and_ring():
    truth = torch.full((1, 3, 64, 64), 0.5)
    hole = _hole()
    blue = truth.clone()
    blue[:, 2] = torch.where(hole[:, 0] > 0, torch.tensor(1.0), blue[:, 2])
    assert D.fill_scores(D.fill_sums(blue, truth, hole))["blotch"] == pytest.approx(1.0)
    assert D.fill_scores(D.fill_sums(truth, truth, hole))["blotch"] == 0.0
    # a colour from the ring is no blotch even where it differs from the truth underneath
    two_tone = truth.clone()
    two_tone[..., :, :32] = 0.1
    ring_colour = two_tone * (1 - hole) + hole * 0.1
    share = D.fill_scores(D.fill_sums(ring_colour, two_tone, hole))["blotch"]
    assert share == 0.0


# ---- losses -----------------------------------------------------------------------------------------
def test_gradient_statistics_loss_rewards_texture_not_blur():
    truth, hole = _texture(), _hole()
    flat = truth * (1 - hole) + hole * truth.mean()
    shifted = torch.roll(truth, 3, dims=-1)  # same texture, other place
    assert L.gradient_statistics_loss(truth, truth, hole) == 0
    assert L.gradient_statistics_loss(flat, truth, hole) > 4 * L.gradient_statistics_loss(shifted, truth, hole)
    flat.requires_grad_(True)
    L.gradient_statistics_loss(flat, truth, hole).backward()
    assert flat.grad.abs().sum() > 0


def test_grid_loss_is_zero_for_the_truth_and_positive_for_a_checkerboard():
    truth, hole = _texture(), _hole()
    assert L.grid_loss(truth, truth, hole) == 0
    gridded = (truth + 0.05 * _checkerboard() * hole).clamp(0, 1).requires_grad_(True)
    loss = L.grid_loss(gridded, truth, hole)
    assert loss > 0
    loss.backward()
    assert np.isfinite(gridded.grad.numpy()).all()


# ---- lattice ----------------------------------------------------------------------------------------
def _noise(size=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, size, size, generator=g) * 0.5 + 0.25


def _tiled(pattern: torch.Tensor, size=128):
    """A (P, P) pattern repeated over a (1, 3, size, size) image from the top-left corner."""
    p = pattern.shape[0]
    return pattern.repeat(size // p, size // p).view(1, 1, size, size).expand(1, 3, size, size)


def test_lattice_of_unordered_texture_is_about_one():
    hole = _hole(128, (0, 128, 0, 128))
    s = D.fill_scores(D.fill_sums(_noise(seed=1), _noise(seed=2), hole))
    for period in D.LATTICE_PERIODS:
        assert 0.75 < s[f"lattice{period}"] < 1.33, (period, s)


@pytest.mark.parametrize("period", D.LATTICE_PERIODS)
def test_lattice_finds_a_pattern_repeating_at_its_period(period):
    g = torch.Generator().manual_seed(period)
    pattern = (torch.rand(period, period, generator=g) - 0.5) * 0.3
    hole = _hole(128, (0, 128, 0, 128))
    truth = _noise(seed=3)
    fill = (_noise(seed=4) + _tiled(pattern)).clamp(0, 1)
    s = D.fill_scores(D.fill_sums(fill, truth, hole))
    assert s[f"lattice{period}"] > 3.0, s
    # a period-2 checkerboard repeats at 4 and 8 too; blocks of 8 do not repeat every 2 pixels
    if period == 8:
        assert s["lattice2"] < 1.6, s


def test_lattice_is_a_share_so_a_blur_is_not_a_lattice():
    hole = _hole(128, (0, 128, 0, 128))
    truth = _noise(seed=5)
    faint = truth * 0.3 + 0.35  # the same detail at 30 % of its amplitude
    s = D.fill_scores(D.fill_sums(faint, truth, hole))
    for period in D.LATTICE_PERIODS:
        assert s[f"lattice{period}"] == pytest.approx(1.0, rel=0.03)
    assert s["sharpness"] == pytest.approx(0.3, rel=1e-3)


def test_lattice_finds_a_faint_pattern_in_a_flat_region():
    hole = _hole(128, (0, 128, 0, 128))
    flat = torch.full((1, 3, 128, 128), 0.3)
    truth = (flat + _noise(seed=7) * 0.02).clamp(0, 1)  # a nearly flat sky
    checker = _tiled(torch.tensor([[1.0, -1.0], [-1.0, 1.0]])) * (2 / 255)  # +-2 levels
    s = D.fill_scores(D.fill_sums(flat + checker, truth, hole))
    assert s["lattice2"] > 3.0, s
    assert D.fill_scores(D.fill_sums(flat, truth, hole))["lattice2"] == 0.0  # flat: no detail, no lattice


def test_lattice_counts_only_windows_mostly_in_the_hole():
    hole = _hole(128, (0, 64, 0, 128))  # the top half
    truth = _noise(seed=6)
    fill = truth.clone()
    # a checkerboard below the hole, beyond the reach of the 8-px moving average of the largest period
    fill[..., 72:, :] += _tiled(torch.tensor([[0.2, -0.2], [-0.2, 0.2]]))[..., 72:, :]
    s = D.fill_scores(D.fill_sums(fill.clamp(0, 1), truth, hole))
    for period in D.LATTICE_PERIODS:
        assert s[f"lattice{period}"] == pytest.approx(1.0, rel=1e-6)
    fill[..., 40:64, :] += _tiled(torch.tensor([[0.2, -0.2], [-0.2, 0.2]]))[..., 40:64, :]  # now in the hole
    assert D.fill_scores(D.fill_sums(fill.clamp(0, 1), truth, hole))["lattice2"] > 3.0


def _stripe_case(size: int = 128):
    g = torch.Generator().manual_seed(5)
    hole = torch.zeros(1, 1, size, size)
    hole[..., 16:112, 16:112] = 1
    truth = (0.5 + 0.1 * torch.randn(1, 1, size, size, generator=g)).clamp(0, 1).expand(1, 3, size, size)
    yy, xx = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    wave = 0.1 * torch.sin(2 * np.pi * (0.8 * xx + 0.6 * yy) / 5)  # oblique stripes, period 5 px
    return truth, wave.view(1, 1, size, size).expand(1, 3, size, size), hole, g


def test_stripes_of_unordered_texture_are_one_and_of_a_flat_fill_zero():
    truth, _, hole, g = _stripe_case()
    other = (0.5 + 0.1 * torch.randn(1, 1, 128, 128, generator=g)).clamp(0, 1).expand(1, 3, 128, 128)
    assert D.fill_scores(D.fill_sums(truth, truth, hole))["stripes"] == pytest.approx(1.0)
    assert D.fill_scores(D.fill_sums(other, truth, hole))["stripes"] == pytest.approx(1.0, abs=0.1)
    assert D.fill_scores(D.fill_sums(torch.full_like(truth, 0.5), truth, hole))["stripes"] == 0.0
    blur = torch.nn.functional.avg_pool2d(truth, 5, 1, 2)  # weaker in every direction alike: not a stripe
    assert D.fill_scores(D.fill_sums(blur, truth, hole))["stripes"] == pytest.approx(1.0, abs=0.2)


def test_stripes_flag_a_repeated_stripe_in_the_hole_only():
    truth, wave, hole, g = _stripe_case()
    zebra = truth * (1 - hole) + (0.5 + wave + 0.01 * torch.randn(1, 3, 128, 128, generator=g)) * hole
    assert D.fill_scores(D.fill_sums(zebra, truth, hole))["stripes"] > 2.5
    # the same stripes outside the hole hardly count: windows are taken where the hole is at least 75 %
    sums = D.stripe_sums(truth + wave * (1 - hole), truth, hole)
    assert torch.allclose(sums["stripe_out"], sums["stripe_true"], rtol=0.05)


def _fringe_case(size: int = 96):
    """Gray stone-like truth (luminance noise, no colour) with a hole in the middle."""
    g = torch.Generator().manual_seed(7)
    hole = torch.zeros(1, 1, size, size)
    hole[..., 16:80, 16:80] = 1
    gray = (0.5 + 0.08 * torch.randn(1, 1, size, size, generator=g)).clamp(0, 1)
    tint = torch.tensor([0.02, 0.0, -0.02]).view(1, 3, 1, 1)  # a faint, even warm cast
    return (gray + tint + 0.01 * torch.randn(1, 3, size, size, generator=g)).clamp(0, 1), hole


def test_fringe_is_one_for_the_truth_below_for_a_smear_and_far_above_for_colour_bands():
    truth, hole = _fringe_case()
    score = lambda out: D.fill_scores(D.fill_sums(out, truth, hole))["fringe"]  # noqa: E731
    assert score(truth) == pytest.approx(1.0)
    assert score(torch.nn.functional.avg_pool2d(truth, 7, 1, 3)) < 0.5  # a smear loses colour detail too
    # zebra bands of 6 px whose colour swings green / purple: the defect a person sees first
    xx = torch.arange(96).float().view(1, 1, 1, -1)
    band = torch.sin(2 * np.pi * xx / 6)
    swing = torch.tensor([0.06, -0.06, 0.06]).view(1, 3, 1, 1) * band  # purple (+R +B) against green (+G)
    zebra = truth * (1 - hole) + (truth + swing).clamp(0, 1) * hole
    assert score(zebra) > 3.0
    # the same bands in gray (luminance only) raise sharpness but not the fringe number
    gray_bands = truth * (1 - hole) + (truth + 0.06 * band).clamp(0, 1) * hole
    scores = D.fill_scores(D.fill_sums(gray_bands, truth, hole))
    assert scores["fringe"] == pytest.approx(1.0, abs=0.15) and scores["sharpness"] > 1.2


def test_fringe_counts_the_hole_only():
    truth, hole = _fringe_case()
    xx = torch.arange(96).float().view(1, 1, 1, -1)
    swing = torch.tensor([0.06, -0.06, 0.06]).view(1, 3, 1, 1) * torch.sin(2 * np.pi * xx / 6)
    ring = torch.nn.functional.max_pool2d(hole, 25, 1, 12) - hole  # 12 px around the hole, outside it
    sums = D.fringe_sums((truth + swing * ring).clamp(0, 1), truth, hole)
    # only the high-pass's reach (3 sigma = 6 px) crosses into the eroded hole, which starts 3 px in
    assert float(sums["fringe_out"] / sums["fringe_true"]) < 1.2


def test_fringe_singles_out_the_critic_trials_colour_bands_in_the_committed_figure():
    """docs/tried_patch_critic_zebra.jpg: rows of 256 px tiles (Telea r3, v3, the patch-critic trial, truth). The
    hole is recovered as the pixels where v3's tile differs from the truth's (JPEG noise is far below 0.06),
    closed by 3 px. On the stone row the trial painted green-purple bands; Telea and v3 did not."""
    path = Path(__file__).resolve().parents[1] / "docs" / "tried_patch_critic_zebra.jpg"
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    stone = [torch.from_numpy(rgb[512:768, c * 256:(c + 1) * 256]).permute(2, 0, 1)[None] for c in range(4)]
    telea, v3, trial, truth = stone
    differs = ((v3 - truth).abs().amax(1, keepdim=True) > 0.06).float()
    hole = 1 - torch.nn.functional.max_pool2d(1 - torch.nn.functional.max_pool2d(differs, 7, 1, 3), 5, 1, 2)
    assert 0.3 < float(hole.mean()) < 0.7
    score = {name: D.fill_scores(D.fill_sums(x, truth, hole))["fringe"]
             for name, x in (("telea", telea), ("v3", v3), ("trial", trial))}
    assert score["trial"] > 1.8 and score["v3"] < 1 and score["telea"] < 1, score
