"""The networks: paper parameter counts, contracts (shapes, ranges, masking), attention formulas."""
import pytest
import torch

from lbam.models import CONFIGS, EdgeLBAM, MECNet, ModelConfig, get_config, pyramid_fill
from lbam.models.attention import GaussianAttention, mask_update


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_paper_parameter_counts_match_the_paper():
    cfg = get_config("paper")
    assert round(n_params(MECNet(cfg.mecnet)) / 1e6, 2) == 16.53
    assert round(n_params(EdgeLBAM(cfg.generator)) / 1e6, 2) == 109.94


def test_compact_is_much_smaller_than_paper():
    cfg = get_config("compact")
    total = n_params(MECNet(cfg.mecnet)) + n_params(EdgeLBAM(cfg.generator))
    assert total < 0.1 * (16.53e6 + 109.94e6)


@pytest.mark.parametrize("name", ["tiny", "tiny-paper"])
def test_contracts_shapes_and_ranges(name):
    torch.manual_seed(0)
    cfg = get_config(name)
    mec, gen = MECNet(cfg.mecnet).eval(), EdgeLBAM(cfg.generator).eval()
    img = torch.rand(2, 3, 128, 256)
    hole = (torch.rand(2, 1, 128, 256) > 0.7).float()
    edges = (torch.rand(2, 1, 128, 256) > 0.9).float()
    with torch.no_grad():
        prob = mec(img[:, :1], edges, hole)
        out = gen(img, hole, prob)
    assert prob.shape == (2, 1, 128, 256) and 0 <= prob.min() and prob.max() <= 1
    assert out.shape == (2, 3, 128, 256) and 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize("name", ["tiny", "tiny-paper"])
def test_networks_ignore_what_the_hole_holds(name):
    torch.manual_seed(0)
    cfg = get_config(name)
    mec, gen = MECNet(cfg.mecnet).eval(), EdgeLBAM(cfg.generator).eval()
    img = torch.rand(1, 3, 128, 128)
    hole = torch.zeros(1, 1, 128, 128)
    hole[..., 30:90, 40:100] = 1
    other = img * (1 - hole) + torch.rand_like(img) * hole
    edges = (torch.rand(1, 1, 128, 128) > 0.9).float()
    other_edges = edges * (1 - hole) + hole  # edges inside the hole must be ignored too
    with torch.no_grad():
        assert torch.equal(mec(img[:, :1], edges, hole), mec(other[:, :1], other_edges, hole))
        e = torch.rand(1, 1, 128, 128)
        assert torch.equal(gen(img, hole, e), gen(other, hole, e))


def test_gaussian_attention_formula_and_clamping():
    g = GaussianAttention((1.1, 2.0, 1.0, 1.0))
    x = torch.tensor([0.0, 2.0, 3.0])
    a = 1.1
    expected = torch.tensor([a * torch.exp(torch.tensor(-4.0)).item(), 1.0 + (a - 1), 1 + (a - 1) * torch.exp(torch.tensor(-1.0)).item()])
    assert torch.allclose(g(x), expected, atol=1e-6)
    with torch.no_grad():
        g.a.fill_(100.0)  # clamped to 6
    assert torch.allclose(g(torch.tensor([2.0])), torch.tensor([6.0]))


def test_mask_update_is_relu_to_the_power_0_8():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0])
    assert torch.allclose(mask_update(x), torch.tensor([0.0, 0.0, 1.0, 2.0**0.8]))


def test_pyramid_fill_keeps_known_pixels_and_fills_smoothly():
    img = torch.linspace(0, 1, 128).view(1, 1, 1, 128).expand(1, 3, 128, 128).contiguous()
    known = torch.ones(1, 1, 128, 128)
    known[..., 40:80, 40:80] = 0
    fill = pyramid_fill(img, known)
    assert torch.equal(fill * known, img * known)
    assert (fill - img).abs()[..., 40:80, 40:80].mean() < 0.05  # a ramp is continued, not zeroed


def test_side_rules_are_enforced_by_the_shapes():
    cfg = get_config("tiny")
    gen = EdgeLBAM(cfg.generator).eval()
    with pytest.raises(ValueError, match="multiples of 128"):
        gen(torch.rand(1, 3, 96, 96), torch.zeros(1, 1, 96, 96), torch.zeros(1, 1, 96, 96))
    mec = MECNet(cfg.mecnet).eval()
    with pytest.raises(ValueError, match="multiples of 32"):
        mec(torch.rand(1, 1, 64, 64), torch.zeros(1, 1, 64, 64), torch.zeros(1, 1, 64, 64))


def test_config_round_trips_through_dict():
    for cfg in CONFIGS.values():
        assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="known"):
        get_config("huge")


def test_residual_generator_starts_close_to_its_prefill():
    cfg = get_config("tiny")
    gen = EdgeLBAM(cfg.generator).eval()
    img = torch.rand(1, 3, 128, 128)
    hole = torch.zeros(1, 1, 128, 128)
    hole[..., 20:70, 30:90] = 1
    with torch.no_grad():
        out = gen(img, hole, torch.zeros_like(hole))
    residual = (out - pyramid_fill(img, 1 - hole).clamp(0, 1)).abs()
    assert 0 < residual.mean() < 0.05


@pytest.mark.parametrize("channels_last", [False, True])
def test_decoder_attention_inference_path_matches_training_path(channels_last):
    # without gradients the two products are written into one tensor; with them, cat(s * A, up(d) * B)
    from lbam.models.attention import DecoderAttention

    torch.manual_seed(0)
    layer = DecoderAttention(8, 4).eval()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    s, a, b = (torch.randn(2, 4, 16, 12).contiguous(memory_format=fmt) for _ in range(3))
    d = torch.randn(2, 8, 8, 6).contiguous(memory_format=fmt)
    if channels_last:
        layer = layer.to(memory_format=torch.channels_last)
    ref = layer(s, d, a, b)  # grad mode: the concatenating form
    up = layer.up(d)
    manual = torch.nn.functional.leaky_relu(layer.bn(torch.cat((s, up), 1) * torch.cat((a, b), 1)), 0.2)
    with torch.no_grad():
        out = layer(s, d, a, b)
    assert out.shape == (2, 8, 16, 12)
    assert torch.equal(out, ref.detach()) and torch.allclose(ref, manual, atol=1e-6)


def test_edge_guidance_edge_stride_and_edge_output_options():
    from lbam.models.attention import EdgeGuidance

    torch.manual_seed(0)
    full = EdgeGuidance(4, 8).eval()
    strided = EdgeGuidance(4, 8, edge_stride=2).eval()
    strided.load_state_dict(full.state_dict())  # the same weights: the options change no parameter
    no_edge = EdgeGuidance(4, 8, edge_output=False).eval()
    no_edge.load_state_dict({k: v for k, v in full.state_dict().items() if not k.startswith("edge_out.")})
    m, e = torch.rand(2, 4, 16, 24), torch.rand(2, 4, 32, 48)
    with torch.no_grad():
        mask_full, edge_full = full(m, e)
        mask_s, edge_s = strided(m, e)
        mask_n, edge_n = no_edge(m, e)
    assert edge_s.shape == (2, 8, 8, 12)
    torch.testing.assert_close(edge_s, edge_full[..., ::2, ::2], rtol=0, atol=1e-6)  # the pixels (2i, 2j)
    torch.testing.assert_close(mask_s, mask_full, rtol=0, atol=0)
    torch.testing.assert_close(mask_n, mask_full, rtol=0, atol=0)
    assert edge_n.shape == (2, 4, 16, 24)  # e' (resized) passes through


def test_fused_copy_keeps_the_model_class():
    from lbam.models.fuse import fuse_for_inference

    gen = EdgeLBAM(get_config("tiny").generator)
    fused = fuse_for_inference(gen, channels_last=True)
    assert type(fused) is EdgeLBAM  # no run-time subclass; outputs come back contiguous all the same
    x, hole, edge = torch.rand(1, 3, 128, 128), torch.zeros(1, 1, 128, 128), torch.zeros(1, 1, 128, 128)
    hole[..., 40:80, 40:80] = 1
    with torch.no_grad():
        assert fused(x, hole, edge).is_contiguous()


# ---- smooth upsampling ---------------------------------------------------------------------------------
def test_binomial_blur_keeps_constants_and_removes_the_period_2_pattern():
    from lbam.models.smoothing import binomial_blur

    yy, xx = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    for pattern in ((-1.0) ** xx, (-1.0) ** yy, (-1.0) ** (xx + yy)):
        x = pattern.float().view(1, 1, 16, 16).repeat(2, 3, 1, 1)
        assert binomial_blur(x)[..., 1:-1, 1:-1].abs().max() < 1e-6  # the border repeats its edge pixel
    c = torch.full((1, 2, 8, 8), 0.7)
    assert torch.allclose(binomial_blur(c), c)
    ramp = xx.float().view(1, 1, 16, 16)
    assert torch.allclose(binomial_blur(ramp)[..., 1:-1], ramp[..., 1:-1], atol=1e-5)  # linear ramps pass


def test_smooth_upsampling_adds_no_parameters_and_changes_the_output():
    torch.manual_seed(0)
    base = get_config("tiny")
    mec, gen = MECNet(base.mecnet).eval(), EdgeLBAM(base.generator).eval()
    s = base.with_smooth_upsampling(True)
    assert s.parameter_layout() == base.parameter_layout() and s != base
    mec_s, gen_s = MECNet(s.mecnet).eval(), EdgeLBAM(s.generator).eval()
    mec_s.load_state_dict(mec.state_dict())  # strict: the same names and shapes
    gen_s.load_state_dict(gen.state_dict())
    image = torch.rand(1, 3, 128, 128)
    hole = torch.zeros(1, 1, 128, 128)
    hole[..., 32:96, 40:100] = 1
    edges = (torch.rand(1, 1, 128, 128) > 0.9).float()
    with torch.no_grad():
        gray = image.mean(1, keepdim=True)
        assert (mec(gray, edges, hole) - mec_s(gray, edges, hole)).abs().max() > 1e-4
        assert (gen(image, hole, edges) - gen_s(image, hole, edges)).abs().max() > 1e-4


def test_smooth_upsampling_leaves_no_period_2_pattern_in_the_residual():
    """Whatever period-2 lattice the generator's last transposed convolution writes (here: it writes nothing
    else), smooth upsampling keeps it out of the residual, away from the border."""

    class Lattice(torch.nn.Module):  # stands in for output_conv: one output phase of every 2x2 cell lit
        def forward(self, d):
            b, _, h, w = d.shape
            z = torch.zeros(b, 3, 2 * h, 2 * w)
            z[..., 0::2, 0::2] = 0.2
            return z

    base = get_config("tiny")
    image = torch.full((1, 3, 128, 128), 0.5)
    hole = torch.ones(1, 1, 128, 128)
    hole[..., :8, :] = 0
    edges = torch.zeros(1, 1, 128, 128)
    energy = {}
    for on in (False, True):
        torch.manual_seed(0)
        gen = EdgeLBAM(base.with_smooth_upsampling(on).generator).eval()
        gen.output_conv = Lattice()
        with torch.no_grad():
            r = gen(image, hole, edges)[..., 16:-16, 16:-16] - 0.5
        phases = torch.stack([r[..., a::2, b::2].mean() for a in (0, 1) for b in (0, 1)])
        energy[on] = float(phases.var())
    assert energy[False] > 1e-3, energy
    assert energy[True] < 1e-6 * energy[False], energy


def test_model_config_bounds_the_edge_threshold_itself():
    import dataclasses

    for bad in (0.0, 1.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="edge_threshold"):
            dataclasses.replace(get_config("compact"), edge_threshold=bad)
    assert dataclasses.replace(get_config("compact"), edge_threshold=0.3).edge_threshold == 0.3
