"""Tests of lbam.training.losses and lbam.training.discriminators (tiny sizes, CPU, seeded)."""
from __future__ import annotations

import logging

import pytest
import torch
import torch.nn as nn

from lbam.errors import WeightsError
from lbam.training import losses as L
from lbam.training.discriminators import PatchDiscriminator, TwoColumnDiscriminator

torch.set_num_threads(1)

# torchvision vgg16().features conv layers up to pool3: index -> (out, in, k, k)
VGG_CONVS = {
    0: (64, 3, 3, 3),
    2: (64, 64, 3, 3),
    5: (128, 64, 3, 3),
    7: (128, 128, 3, 3),
    10: (256, 128, 3, 3),
    12: (256, 256, 3, 3),
    14: (256, 256, 3, 3),
}


class NotATensor:
    """A custom class: pickling it into a .pth must make the VGG loader refuse the file."""

    def __init__(self):
        self.payload = "x"


def _fake_vgg_state(prefix: str = "features.", seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for idx, shape in VGG_CONVS.items():
        sd[f"{prefix}{idx}.weight"] = torch.randn(shape, generator=g) * 0.05
        sd[f"{prefix}{idx}.bias"] = torch.randn(shape[0], generator=g) * 0.01
    return sd


# ------------------------------------------------------------------------------------ hole_l1
def test_hole_l1_weights_hole_six_times():
    target = torch.zeros(2, 3, 4, 4)
    out = torch.ones(2, 3, 4, 4)  # |diff| = 1 everywhere
    hole = torch.zeros(2, 1, 4, 4)
    hole[..., :1, :] = 1.0  # 1 of 4 rows -> 25 % hole
    # 6 * 0.25 + 1 * 0.75
    assert L.hole_l1(out, target, hole).item() == pytest.approx(2.25)
    assert L.hole_l1(out, target, hole, hole_weight=1.0, valid_weight=0.0).item() == pytest.approx(0.25)
    # an error only in the hole costs 6x the same error only in the known region
    out_h = target + 0.5 * hole
    out_v = target + 0.5 * (1 - hole) * 0.25 / 0.75  # same total |error| mass, in the known region
    assert L.hole_l1(out_h, target, hole).item() == pytest.approx(6 * L.hole_l1(out_v, target, hole).item())


def test_hole_l1_zero_when_equal():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 8, 8)
    hole = (torch.rand(2, 1, 8, 8) > 0.5).float()
    assert L.hole_l1(x, x.clone(), hole).item() == 0.0


def test_hole_mse_squares_the_errors_with_the_same_weights():
    target = torch.zeros(1, 3, 4, 4)
    hole = torch.zeros(1, 1, 4, 4)
    hole[..., :1, :] = 1.0  # 25 % hole
    out = torch.full((1, 3, 4, 4), 0.5)  # squared error 0.25 everywhere
    assert L.hole_mse(out, target, hole).item() == pytest.approx(0.25 * (6 * 0.25 + 0.75))
    torch.manual_seed(0)
    out = torch.rand(2, 3, 8, 8)
    hole = (torch.rand(2, 1, 8, 8) > 0.5).float()
    # with one weight everywhere it is the plain mean squared error
    assert L.hole_mse(out, target.new_zeros(2, 3, 8, 8), hole, 1.0, 1.0).item() == pytest.approx(
        out.square().mean().item())


# ------------------------------------------------------------------------------------ VGG
def test_vgg_layout_matches_torchvision():
    vgg = L.VGG16Features()
    sd = vgg.state_dict()
    expected = {}
    for idx, shape in VGG_CONVS.items():
        expected[f"{idx}.weight"] = shape
        expected[f"{idx}.bias"] = (shape[0],)
    assert {k: tuple(v.shape) for k, v in sd.items()} == expected
    assert all(not p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training


def test_vgg_from_file_pth_with_prefix(tmp_path):
    sd = _fake_vgg_state("features.")
    sd["classifier.0.weight"] = torch.zeros(4, 4)  # ignored
    sd["features.17.weight"] = torch.zeros(2, 2)  # beyond pool3: ignored
    path = tmp_path / "vgg16.pth"
    torch.save(sd, path)
    vgg = L.VGG16Features.from_file(path)
    assert torch.equal(vgg.state_dict()["10.weight"], sd["features.10.weight"])
    x = torch.rand(2, 3, 16, 24)
    with torch.no_grad():
        p1, p2, p3 = vgg(x)
    assert p1.shape == (2, 64, 8, 12)
    assert p2.shape == (2, 128, 4, 6)
    assert p3.shape == (2, 256, 2, 3)


def test_vgg_from_file_safetensors_bare_keys(tmp_path):
    safetensors = pytest.importorskip("safetensors.torch")
    sd = _fake_vgg_state("", seed=1)
    path = tmp_path / "vgg16.safetensors"
    safetensors.save_file(sd, str(path))
    vgg = L.VGG16Features.from_file(path)
    assert torch.equal(vgg.state_dict()["0.bias"], sd["0.bias"])


def test_vgg_refuses_pickled_object_and_incomplete_files(tmp_path):
    bad = _fake_vgg_state()
    bad["evil"] = NotATensor()
    path = tmp_path / "vgg16.pth"
    torch.save(bad, path)
    with pytest.raises(WeightsError):
        L.VGG16Features.from_file(path)

    partial = _fake_vgg_state()
    del partial["features.14.weight"]
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(WeightsError, match="14.weight"):
        L.VGG16Features.from_file(tmp_path / "partial.pth")

    with pytest.raises(WeightsError):
        L.VGG16Features.from_file(tmp_path / "missing.pth")


def test_build_vgg_none_disables_terms(caplog):
    with caplog.at_level(logging.WARNING, logger="lbam.training.losses"):
        assert L.build_vgg(None) is None
    assert "disabled" in caplog.text
    x = torch.rand(1, 3, 16, 16)
    perc, style = L.perceptual_and_style(None, x, x, x)
    assert perc.item() == 0.0 and style.item() == 0.0


def test_perceptual_and_style_backprop(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "vgg16.pth"
    torch.save(_fake_vgg_state(), path)
    vgg = L.build_vgg(str(path))
    target = torch.rand(1, 3, 16, 16)
    out = torch.rand(1, 3, 16, 16, requires_grad=True)
    hole = torch.zeros(1, 1, 16, 16)
    hole[..., 4:12, 4:12] = 1
    comp = out * hole + target * (1 - hole)
    perc, style = L.perceptual_and_style(vgg, out, comp, target)
    assert perc.item() > 0 and style.item() > 0
    (perc + style).backward()
    assert out.grad is not None and out.grad.abs().sum() > 0
    zero_p, zero_s = L.perceptual_and_style(vgg, target, target, target)
    # identical inputs -> zero up to float noise (out/comp go through VGG as one batch, target alone)
    assert zero_p.item() < 1e-4 * perc.item() and zero_s.item() < 1e-4 * style.item()


# ------------------------------------------------------------------------------------ gram / style
def test_gram_shape_and_style_loss():
    torch.manual_seed(0)
    a = [torch.rand(2, 4, 5, 6), torch.rand(2, 8, 3, 3)]
    g = L.gram(a[0])
    assert g.shape == (2, 4, 4)
    assert torch.allclose(g, g.transpose(1, 2))
    assert L.style_loss(a, [t.clone() for t in a]).item() == 0.0
    b = [torch.rand_like(t) * 2 for t in a]
    assert L.style_loss(a, b).item() > 0
    assert L.perceptual_loss(a, a).item() == 0.0
    assert L.perceptual_loss(a, b).item() > 0


# ------------------------------------------------------------------------------------ WGAN-GP
class LinearCritic(nn.Module):
    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x, hole=None):
        if hole is not None:
            x = x * (1 + 0 * hole)  # extra input passes through untouched
        return (x * self.w).flatten(1).sum(1)


def test_gradient_penalty_linear_critic():
    torch.manual_seed(0)
    real, fake = torch.rand(4, 3, 4, 4), torch.rand(4, 3, 4, 4)
    w = torch.randn(1, 3, 4, 4)
    unit = LinearCritic(w / w.norm())
    hole = torch.ones(4, 1, 4, 4)
    assert L.gradient_penalty(unit, real, fake, hole).item() == pytest.approx(0.0, abs=1e-8)

    double = LinearCritic(2 * w / w.norm())
    gp = L.gradient_penalty(double, real, fake, hole, weight=10.0)
    assert gp.item() == pytest.approx(10.0, rel=1e-4)  # 10 * (2 - 1)^2
    gp.backward()
    assert double.w.grad is not None and double.w.grad.abs().sum() > 0


def test_wgan_and_ns_losses_signs():
    d_real, d_fake = torch.tensor([2.0, 2.0]), torch.tensor([-1.0, -1.0])
    assert L.wgan_critic_loss(d_real, d_fake).item() == -3.0
    assert L.wgan_generator_loss(d_fake).item() == 1.0
    good = L.ns_d_loss(torch.full((2, 1, 3, 3), 5.0), torch.full((2, 1, 3, 3), -5.0))
    bad = L.ns_d_loss(torch.full((2, 1, 3, 3), -5.0), torch.full((2, 1, 3, 3), 5.0))
    assert good.item() < 0.01 < bad.item()
    assert L.ns_g_loss(torch.full((1, 1, 2, 2), 5.0)).item() < L.ns_g_loss(torch.zeros(1, 1, 2, 2)).item()


def test_feature_matching_mean_and_detached():
    real = [torch.zeros(1, 2, 3, 3, requires_grad=True), torch.zeros(1, 1, 2, 2, requires_grad=True)]
    fake = [torch.ones(1, 2, 3, 3, requires_grad=True), torch.full((1, 1, 2, 2), 3.0, requires_grad=True)]
    fm = L.feature_matching_loss(real, fake)
    assert fm.item() == pytest.approx(2.0)  # (1 + 3) / 2
    assert L.feature_matching_loss(real, fake, reduction="sum").item() == pytest.approx(4.0)
    fm.backward()
    assert real[0].grad is None and fake[0].grad is not None


def test_patch_hole_weights_mark_the_patches_that_see_the_hole():
    hole = torch.zeros(1, 1, 16, 16)
    hole[..., 0:3, 12:16] = 1  # top right corner
    w = L.patch_hole_weights(hole, (4, 4))
    expected = torch.zeros(1, 1, 4, 4)
    expected[..., 0, 3] = 1
    assert torch.equal(w, expected)
    assert L.patch_hole_weights(torch.zeros(1, 1, 16, 16), (4, 4)).sum() == 0


def test_masked_ns_losses_count_only_the_patches_that_see_the_hole():
    weights = torch.zeros(1, 1, 2, 2)
    weights[..., 0, 0] = 1
    # the fake patch in the hole is called fake (-10), the three outside are called real (+10): an ideal critic
    fake = torch.full((1, 1, 2, 2), 10.0)
    fake[..., 0, 0] = -10.0
    real = torch.full((1, 1, 2, 2), 10.0)
    assert L.masked_ns_d_loss(real, fake, weights).item() < 1e-3
    assert L.ns_d_loss(real, fake).item() > 3  # unmasked, the three patches outside count as mistakes
    # the generator's loss sees only the hole patch: large while the critic rejects it, small when it passes
    assert L.masked_ns_g_loss(fake, weights).item() == pytest.approx(10.0, abs=1e-3)
    assert L.masked_ns_g_loss(-fake, weights).item() < 1e-3
    assert L.masked_ns_g_loss(fake, torch.zeros_like(weights)).item() == 0.0  # no hole: no term


# ------------------------------------------------------------------------------------ discriminators
@pytest.mark.parametrize("size", [128, 256])
def test_two_column_shapes(size):
    torch.manual_seed(0)
    d = TwoColumnDiscriminator(in_channels=3, base=2)
    img = torch.rand(2, 3, size, size)
    hole = (torch.rand(2, 1, size, size) > 0.7).float()
    with torch.no_grad():
        assert d(img, hole).shape == (2,)
        assert d.score_map(img, hole).shape == (2, 1, size // 64, size // 64)


@pytest.mark.parametrize("size", [128, 256])
def test_patch_discriminator_shapes(size):
    torch.manual_seed(0)
    d = PatchDiscriminator(in_channels=2, base=4)
    with torch.no_grad():
        logits, feats = d(torch.rand(1, 2, size, size))
    s = size // 8 - 2
    assert logits.shape == (1, 1, s, s)
    assert len(feats) == 5
    assert [f.shape[1] for f in feats] == [4, 8, 16, 32, 1]
    assert feats[-1] is logits
    assert all(hasattr(b[0], "weight_orig") for b in d.blocks)  # spectral norm on every conv


def test_two_column_wgan_separates_real_from_fake():
    torch.manual_seed(0)
    d = TwoColumnDiscriminator(in_channels=3, base=4)
    opt = torch.optim.Adam(d.parameters(), lr=1e-3, betas=(0.5, 0.9))
    b, s = 4, 64
    yy = torch.linspace(0, 1, s).view(1, 1, s, 1)
    real = (0.3 + 0.4 * yy).expand(b, 3, s, s).contiguous()  # smooth gradients
    fake = torch.rand(b, 3, s, s)  # noise
    hole = torch.zeros(b, 1, s, s)
    hole[..., 16:48, 16:48] = 1

    def gap():
        with torch.no_grad():
            return (d(real, hole).mean() - d(fake, hole).mean()).item()

    before = gap()
    for _ in range(20):
        opt.zero_grad()
        loss = L.wgan_critic_loss(d(real, hole), d(fake, hole)) + L.gradient_penalty(d, real, fake, hole)
        loss.backward()
        opt.step()
    after = gap()
    assert after > before + 0.1
    assert after > 0


# ------------------------------------------------------------------------------------ edge_bce
@pytest.mark.parametrize("pos_weight", [None, 3.0, "balanced"])
def test_edge_bce_decreases_towards_target(pos_weight):
    torch.manual_seed(0)
    target = (torch.rand(2, 1, 16, 16) < 0.08).float()
    hole = torch.zeros(2, 1, 16, 16)
    hole[..., 4:12, :] = 1
    far = torch.full_like(target, 0.5)
    values = []
    for t in (0.0, 0.5, 0.9, 1.0):
        pred = (1 - t) * far + t * target
        values.append(L.edge_bce(pred, target, hole=hole, pos_weight=pos_weight).item())
    assert all(a > b for a, b in zip(values, values[1:]))
    assert values[-1] < 1e-4  # exact prediction -> ~0 despite the clamping
    assert L.edge_bce(far, target, hole=torch.zeros_like(hole)).item() == 0.0


def test_edge_bce_gradient_finite_at_extremes():
    target = torch.tensor([[[[1.0, 0.0]]]])
    pred = torch.tensor([[[[0.0, 1.0]]]], requires_grad=True)
    loss = L.edge_bce(pred, target, pos_weight="balanced")
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()
