"""lbam.models.fuse: the inference copy computes what the original computes."""
import pytest
import torch
from torch import nn

from lbam.models import EdgeLBAM, MECNet, get_config
from lbam.models.attention import cbl, mask_update
from lbam.models.fuse import fast_mask_update, fold_batchnorm, fold_conv_bn, fuse_for_inference, is_fused


@pytest.fixture(autouse=True)
def _one_thread():
    """These are small models: one thread avoids OpenMP overhead (and oversubscription on busy machines)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _randomise_batchnorm(model: nn.Module, seed: int = 0) -> int:
    """Give every BatchNorm non-trivial running statistics and affine parameters; returns how many."""
    g = torch.Generator().manual_seed(seed)
    n = 0
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.rand(c, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.25)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.rand(c, generator=g) * 0.4 - 0.2)
                n += 1
    return n


def _inputs(batch: int, side: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, side, side, generator=g)
    hole = torch.zeros(batch, 1, side, side)
    hole[:, :, side // 4: side // 2, side // 3: 3 * side // 4] = 1
    hole[:, :, -side // 8:, : side // 5] = 1
    edges = (torch.rand(batch, 1, side, side, generator=g) > 0.9).float() * (1 - hole)
    return image, hole, edges


@pytest.mark.parametrize("config", ["tiny", "tiny-paper", "compact"])
@pytest.mark.parametrize("channels_last", [None, False, True])
def test_fused_generator_matches_original(config, channels_last):
    torch.manual_seed(0)
    gen = EdgeLBAM(get_config(config).generator).eval()
    assert _randomise_batchnorm(gen) > 0
    image, hole, edges = _inputs(2, 128)
    with torch.no_grad():
        ref = gen(image, hole, edges)
    fused = fuse_for_inference(gen, channels_last=channels_last)
    assert isinstance(fused, EdgeLBAM) and is_fused(fused) and not fused.training
    # the BatchNorms of the cbl blocks are gone (only those after a product remain)
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in gen.modules())
    n_bn_fused = sum(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert n_bn_fused == 6 + 6  # six forward-attention BNs (k = 2..7) + six decoder BNs
    assert n_bn_fused < n_bn
    with torch.inference_mode():
        out = fused(image, hole, edges)
    assert out.shape == ref.shape and out.is_contiguous()
    assert (out - ref).abs().max().item() < 1e-4
    # the original is untouched
    assert sum(isinstance(m, nn.BatchNorm2d) for m in gen.modules()) == n_bn
    assert all(p.requires_grad for p in gen.parameters())
    assert not any(p.requires_grad for p in fused.parameters())


@pytest.mark.parametrize("config", ["tiny-paper", "compact"])
def test_pruned_edge_outputs_run_strided_and_match(config):
    # EG_k's edge output is read by EG_{k+1} only at even pixels: the fused copy computes just those (stride 2)
    torch.manual_seed(0)
    gen = EdgeLBAM(get_config(config).generator).eval()
    _randomise_batchnorm(gen)
    fused = fuse_for_inference(gen, channels_last=False)
    unpruned = fuse_for_inference(gen, channels_last=False, prune=False)
    for blocks in (fused.forward_guidance, fused.reverse_guidance):
        assert [tuple(b.edge_out[0].stride) for b in list(blocks)[:-1]] == [(2, 2)] * (len(blocks) - 1)
        assert isinstance(blocks[-1].edge_out, nn.Identity)
    assert tuple(unpruned.forward_guidance[0].edge_out[0].stride) == (1, 1)
    image, hole, edges = _inputs(2, 256)
    with torch.inference_mode():
        a, b = fused(image, hole, edges), unpruned(image, hole, edges)
    assert (a - b).abs().max().item() < 1e-6


@pytest.mark.parametrize("config", ["tiny", "compact"])
@pytest.mark.parametrize("channels_last", [None, True])
def test_fused_mecnet_matches_original(config, channels_last):
    torch.manual_seed(0)
    mec = MECNet(get_config(config).mecnet).eval()
    image, hole, edges = _inputs(2, 128)
    gray = image.mean(1, keepdim=True)
    with torch.no_grad():
        ref = mec(gray, edges, hole)
    fused = fuse_for_inference(mec, channels_last=channels_last)
    assert isinstance(fused, MECNet)
    with torch.inference_mode():
        out = fused(gray, edges, hole)
    assert (out - ref).abs().max().item() < 1e-4


def test_fused_mecnet_with_spectral_norm_matches_original():
    torch.manual_seed(0)
    mec = MECNet(get_config("tiny").mecnet, spectral_norm=True)
    image, hole, edges = _inputs(1, 128)
    gray = image.mean(1, keepdim=True)
    mec.train()
    with torch.no_grad():
        mec(gray, edges, hole)  # a power iteration, so that u and v are meaningful
    mec.eval()
    with torch.no_grad():
        ref = mec(gray, edges, hole)
    fused = fuse_for_inference(mec)
    assert not any(hasattr(m, "weight_orig") for m in fused.modules())
    assert any(hasattr(m, "weight_orig") for m in mec.modules())
    with torch.inference_mode():
        assert (fused(gray, edges, hole) - ref).abs().max().item() < 1e-4


def test_each_rewrite_alone_is_exact():
    torch.manual_seed(0)
    gen = EdgeLBAM(get_config("tiny-paper").generator).eval()
    _randomise_batchnorm(gen, seed=3)
    image, hole, edges = _inputs(1, 128, seed=5)
    with torch.no_grad():
        ref = gen(image, hole, edges)
    for flags in ({"fold_bn": True, "prune": False, "fast_gm": False, "channels_last": False},
                  {"fold_bn": False, "prune": True, "fast_gm": False, "channels_last": False},
                  {"fold_bn": False, "prune": False, "fast_gm": True, "channels_last": False},
                  {"fold_bn": False, "prune": False, "fast_gm": False, "channels_last": True}):
        with torch.inference_mode():
            out = fuse_for_inference(gen, **flags)(image, hole, edges)
        assert (out - ref).abs().max().item() < 1e-4, flags


def test_fast_mask_update_matches_pow():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(10_000, generator=g) * 3, torch.tensor([0.0, -0.0, -5.0, 1e-35, 1e-20, 1.0, 40.0])])
    ref = mask_update(x)
    out = fast_mask_update(x.clone())
    assert out.shape == x.shape and torch.isfinite(out).all()
    pos = x > 1e-30
    assert ((out[pos] - ref[pos]).abs() / ref[pos]).max().item() < 2e-6
    assert out[~pos].max().item() < 1e-23  # 0 in the paper's form: 1e-24 here
    gen = EdgeLBAM(get_config("tiny").generator).eval()
    layers = [m for m in fuse_for_inference(gen).modules() if hasattr(m, "g_M")]
    assert len(layers) == 7 + 6 and all(m.g_M is fast_mask_update for m in layers)
    assert all(m.g_M is not fast_mask_update for m in fuse_for_inference(gen, fast_gm=False).modules()
               if hasattr(m, "g_M"))
    assert all(m.g_M is not fast_mask_update for m in gen.modules() if hasattr(m, "g_M"))


def test_fold_conv_bn_and_fold_batchnorm():
    torch.manual_seed(0)
    block = cbl(5, 7)
    _randomise_batchnorm(block)
    block.eval()
    x = torch.randn(3, 5, 9, 11)
    with torch.no_grad():
        ref = block(x)
        conv = fold_conv_bn(block[0], block[1])
        assert conv.bias is not None
        assert (torch.nn.functional.leaky_relu(conv(x), 0.2) - ref).abs().max() < 1e-5
        model = nn.Sequential(nn.Sequential(*block), nn.Identity())
        folded = fold_batchnorm(model)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
        assert (folded(x) - ref).abs().max() < 1e-5
    with pytest.raises(TypeError):
        fold_conv_bn(block[1], block[0])


@pytest.mark.parametrize("band_bytes", [None, 1])  # default bands; one output row per band
@pytest.mark.parametrize("padding,dilation", [(0, 1), (3, 1), (2, 2)])
@pytest.mark.parametrize("c_in", [12, 40])  # below MIN_IN_FOR_SUMS: plain channels-last conv; above: shifted sums
def test_narrow_conv_matches_conv2d(padding, dilation, band_bytes, c_in, monkeypatch):
    from lbam.models.fuse import NarrowConv2d

    if band_bytes is not None:
        monkeypatch.setattr(NarrowConv2d, "MAX_BAND_BYTES", band_bytes)
    torch.manual_seed(0)
    conv = nn.Conv2d(c_in, 1, 7 if dilation == 1 else 3, padding=padding, dilation=dilation)
    assert NarrowConv2d.applies_to(conv)
    narrow = NarrowConv2d.from_conv(conv)
    sums = c_in >= NarrowConv2d.MIN_IN_FOR_SUMS  # shifted sums keep (k*k*out, c_in, 1, 1) weights
    assert narrow.weight.shape[-1] == (1 if sums else conv.kernel_size[1])
    x = torch.randn(2, c_in, 40, 33)
    with torch.no_grad():
        ref = conv(x)
        out = narrow(x)
        out_cl = narrow(x.contiguous(memory_format=torch.channels_last))
    assert out.shape == ref.shape
    assert (out - ref).abs().max().item() < 1e-4
    assert (out_cl - ref).abs().max().item() < 1e-4
    assert not NarrowConv2d.applies_to(nn.Conv2d(12, 3, 3))  # measured slower: left alone
    assert not NarrowConv2d.applies_to(nn.Conv2d(12, 1, 3, stride=2))
    assert not NarrowConv2d.applies_to(nn.Conv2d(12, 1, 1))


def test_fused_mecnet_uses_narrow_output_conv():
    from lbam.models.fuse import NarrowConv2d

    fused = fuse_for_inference(MECNet(get_config("tiny").mecnet))
    assert isinstance(fused.decoder[-1], NarrowConv2d)
    assert not any(isinstance(m, NarrowConv2d) for m in fuse_for_inference(MECNet(), narrow_conv=False).modules())


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_phase_deconv_matches_conv_transpose(channels_last, bias, monkeypatch):
    from lbam.models.fuse import PhaseConvTranspose2d

    torch.manual_seed(0)
    deconv = nn.ConvTranspose2d(24, 10, 4, 2, 1, bias=bias).eval()
    assert not PhaseConvTranspose2d.applies_to(deconv)  # small weights: measured slower, left alone
    monkeypatch.setattr(PhaseConvTranspose2d, "MIN_WEIGHT_BYTES", 0)
    assert PhaseConvTranspose2d.applies_to(deconv)
    phased = PhaseConvTranspose2d.from_conv(deconv)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for h, w in ((1, 1), (4, 5), (8, 8), (16, 12)):  # the last one is above MAX_PIXELS: conv_transpose2d
        x = torch.randn(2, 24, h, w).contiguous(memory_format=fmt)
        with torch.no_grad():
            ref, out = deconv(x), phased(x)
        assert out.shape == ref.shape == (2, 10, 2 * h, 2 * w)
        assert (out - ref).abs().max().item() < 1e-5, (h, w)
        if channels_last and h * w > 1:
            assert out.is_contiguous(memory_format=torch.channels_last)
    for other in (nn.ConvTranspose2d(24, 10, 4, 2, 0), nn.ConvTranspose2d(24, 10, 3, 2, 1),
                  nn.ConvTranspose2d(24, 10, 4, 2, 1, output_padding=1), nn.ConvTranspose2d(24, 10, 4, 2, 1, groups=2)):
        assert not PhaseConvTranspose2d.applies_to(other)


def test_fused_generator_with_phase_deconvs_matches_original(monkeypatch):
    from lbam.models.fuse import PhaseConvTranspose2d

    monkeypatch.setattr(PhaseConvTranspose2d, "MIN_WEIGHT_BYTES", 0)
    torch.manual_seed(0)
    gen = EdgeLBAM(get_config("tiny-paper").generator).eval()
    _randomise_batchnorm(gen, seed=1)
    image, hole, edges = _inputs(2, 128, seed=2)
    with torch.no_grad():
        ref = gen(image, hole, edges)
    fused = fuse_for_inference(gen)
    assert sum(isinstance(m, PhaseConvTranspose2d) for m in fused.modules()) == 7  # six decoder layers + output
    with torch.inference_mode():
        assert (fused(image, hole, edges) - ref).abs().max().item() < 1e-4
    plain = fuse_for_inference(gen, phase_deconv=False)
    assert not any(isinstance(m, PhaseConvTranspose2d) for m in plain.modules())


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("dilation", [1, 2])
def test_winograd_conv_matches_conv2d(m, dilation):
    from lbam.models.winograd import winograd_conv_nhwc, winograd_filter

    torch.manual_seed(0)
    weight = torch.randn(7, 5, 3, 3)
    h, w = 4 * m * dilation, 2 * m * dilation  # non-square, several tiles each way
    x = torch.randn(2, 5, h + 2 * dilation, w + 2 * dilation)
    ref = torch.nn.functional.conv2d(x, weight, dilation=dilation)
    out = winograd_conv_nhwc(x.permute(0, 2, 3, 1).contiguous(), winograd_filter(weight, m), m, dilation)
    assert out.shape == (2, h, w, 7)
    assert (out.permute(0, 3, 1, 2) - ref).abs().max().item() < 1e-4 * ref.abs().max().item()


@pytest.mark.parametrize("padding, dilation, bias, side, tile", [
    (0, 1, False, 50, 4), (0, 2, True, 52, 4), (1, 1, True, 48, 4), (2, 2, False, 48, 4),
    (1, 1, False, 50, 2),  # 50 is not a multiple of 4: F(2)
    (1, 1, False, 45, 0),  # odd: the direct convolution
    (1, 1, False, 16, 0),  # 128 channels on a small map: direct
])
def test_winograd_module_matches_conv(padding, dilation, bias, side, tile):
    from lbam.models.winograd import WinogradConv2d

    torch.manual_seed(0)
    conv = nn.Conv2d(128, 128, 3, padding=padding, dilation=dilation, bias=bias).eval()
    wc = WinogradConv2d.from_conv(conv)
    x = torch.randn(1, 128, side, side)
    with torch.no_grad():
        ref = conv(x)
    assert wc.tile_for(*ref.shape[-2:]) == tile
    with torch.inference_mode():
        out = wc(x)
        out_cl = wc(x.contiguous(memory_format=torch.channels_last))
    assert out.shape == ref.shape
    for o in (out, out_cl):
        assert (o - ref).abs().max().item() < 1e-4 * ref.abs().max().item()
    x.requires_grad_(True)  # training: the plain convolution, so gradients flow
    assert wc(x).requires_grad


def test_winograd_applies_only_to_wide_3x3_stride_1():
    from lbam.models.winograd import WinogradConv2d

    assert WinogradConv2d.applies_to(nn.Conv2d(128, 256, 3, padding=1))
    for other in (nn.Conv2d(64, 128, 3), nn.Conv2d(128, 128, 3, stride=2), nn.Conv2d(128, 128, 4),
                  nn.Conv2d(128, 128, 3, groups=2), nn.Conv2d(128, 128, 3, dilation=3),
                  nn.Conv2d(128, 128, 3, padding=1, padding_mode="reflect")):
        assert not WinogradConv2d.applies_to(other), other
    wc = WinogradConv2d.from_conv(nn.Conv2d(256, 256, 3))
    assert [wc.tile_for(s, s) for s in (64, 32, 16, 8)] == [4, 2, 2, 0]


def test_fused_wide_mecnet_uses_winograd_and_matches_original():
    from lbam.models.configs import MECNetConfig
    from lbam.models.winograd import WinogradConv2d

    torch.manual_seed(0)
    mec = MECNet(MECNetConfig(base=32, n_blocks=1)).eval()  # trunk of 128 channels: Winograd applies
    image, hole, edges = _inputs(1, 192, seed=4)
    gray = image.mean(1, keepdim=True)
    with torch.no_grad():
        ref = mec(gray, edges, hole)
    fused = fuse_for_inference(mec)
    assert sum(isinstance(m, WinogradConv2d) for m in fused.modules()) == 2
    with torch.inference_mode():
        assert (fused(gray, edges, hole) - ref).abs().max().item() < 1e-4
    assert not any(isinstance(m, WinogradConv2d) for m in fuse_for_inference(mec, winograd=False).modules())


def test_winograd_filters_follow_the_weight():
    from lbam.models.winograd import WinogradConv2d, winograd_filter

    wc = WinogradConv2d.from_conv(nn.Conv2d(128, 128, 3))
    u = wc.filters(4)
    assert wc.filters(4) is u  # cached
    with torch.no_grad():
        wc.weight.mul_(2)  # weights loaded in place: the cache must not serve stale filters
    assert torch.allclose(wc.filters(4), winograd_filter(wc.weight, 4))
    assert torch.allclose(wc.filters(4), 2 * u, rtol=1e-6, atol=1e-7)


def test_fused_copies_of_smooth_upsampling_networks_match():
    cfg = get_config("tiny").with_smooth_upsampling(True)
    torch.manual_seed(0)
    gen, mec = EdgeLBAM(cfg.generator).eval(), MECNet(cfg.mecnet).eval()
    _randomise_batchnorm(gen)
    image, hole, edges = _inputs(2, 128)
    gray = image.mean(1, keepdim=True)
    with torch.no_grad():
        assert torch.allclose(fuse_for_inference(gen)(image, hole, edges), gen(image, hole, edges), atol=1e-5)
        assert torch.allclose(fuse_for_inference(mec)(gray, edges, hole), mec(gray, edges, hole), atol=1e-5)
