"""Published-checkpoint conversion: layouts, spectral-norm folding, strictness, safe loading, equivalence.

The fake published checkpoints below have exactly the keys and shapes of the files published for the paper
(docs/ARCHITECTURE.md section 4; cross-checked against tests/fixtures/published_checkpoint_keys.json). Their converted weights must reproduce a reference forward written here from docs/ARCHITECTURE.md
with torch.nn.functional only, reading the published key names directly.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lbam.convert import convert_edge_lbam, convert_mecnet, convert_official, fold_spectral_norm, load_published
from lbam.errors import WeightsError
from lbam.models import EdgeLBAM, MECNet, get_config
from lbam.weights_io import read_weights_folder, sha256_file, write_weights_folder

SIDE = 128
TOL = 1e-4

# ------------------------------------------------------------------------------ published layouts
# Written from docs/ARCHITECTURE.md sections 2-4 (published names), independently of lbam.convert.

Layout = Dict[str, Tuple[Tuple[int, ...], str]]  # key -> (shape, kind)


def _sn(layout: Layout, name: str, shape, bias: bool, transposed: bool = False) -> None:
    rows = shape[1] if transposed else shape[0]
    if bias:
        layout[f"{name}.bias"] = ((rows,), "bias")
    layout[f"{name}.weight_orig"] = (tuple(shape), "weight")
    layout[f"{name}.weight_u"] = ((rows,), "sn_u_t" if transposed else "sn_u")
    layout[f"{name}.weight_v"] = ((math.prod(shape) // rows,), "sn_v")


def mecnet_layout() -> Layout:
    lay: Layout = {}
    _sn(lay, "encoder.1", (64, 3, 7, 7), True)
    _sn(lay, "encoder.4", (128, 64, 4, 4), True)
    _sn(lay, "encoder.7", (256, 128, 4, 4), True)
    for n, c_in in ((1, 256), (2, 512), (3, 512)):
        lay[f"upsample{n}.0.weight"] = ((c_in, 256, 4, 4), "tweight")
        lay[f"upsample{n}.0.bias"] = ((256,), "bias")
    for i in range(8):
        for j in (1, 5):
            _sn(lay, f"middle.{i}.conv_block.{j}", (256, 256, 3, 3), False)
    _sn(lay, "decoder.0", (512, 128, 4, 4), True, transposed=True)
    _sn(lay, "decoder.3", (128, 64, 4, 4), True, transposed=True)
    lay["decoder.7.weight"] = ((1, 64, 7, 7), "weight")
    lay["decoder.7.bias"] = ((1,), "bias")
    return lay


def _bn(lay: Layout, name: str, c: int) -> None:
    for p, kind in (("weight", "bn_w"), ("bias", "bias"), ("running_mean", "bn_mean"), ("running_var", "bn_var")):
        lay[f"{name}.{p}"] = ((c,), kind)
    lay[f"{name}.num_batches_tracked"] = ((), "count")


def _cbl(lay: Layout, name: str, c_in: int, c_out: int, k: int = 3) -> None:
    lay[f"{name}.0.weight"] = ((c_out, c_in, k, k), "weight")
    _bn(lay, f"{name}.1", c_out)


def _eg(lay: Layout, name: str, c_in: int, c_out: int) -> None:
    _cbl(lay, f"{name}.maskconv", c_in, c_in)
    _cbl(lay, f"{name}.edgegradient", c_in, c_in)
    _cbl(lay, f"{name}.edgemaskcoincide", 2 * c_in, 1, k=1)
    _cbl(lay, f"{name}.edgeconv", c_in, c_out)


def _ga(lay: Layout, name: str) -> None:
    for p in ("a", "mu", "sigma1", "sigma2"):
        lay[f"{name}.{p}"] = ((), "ga_" + p)


def edge_lbam_layout() -> Layout:
    c = [64, 128, 256, 512, 512, 512, 512]
    cm = [3] + c[:-1]
    lay: Layout = {}
    for c_in, name in ((3, "maskconv1"), (3, "maskconv2"), (1, "edgeconv1"), (3, "edgeconv2"),
                       (3, "maskconv3"), (3, "maskconv4"), (1, "edgeconv3"), (3, "edgeconv4")):
        _cbl(lay, name, c_in, 3)
    for k in range(1, 8):
        lay[f"ec{k}.conv.conv.weight"] = ((c[k - 1], 5 if k == 1 else c[k - 2], 4, 4), "weight")
        lay[f"ec{k}.conv.maskConv.weight"] = ((c[k - 1], cm[k - 1], 4, 4), "weight")
        _ga(lay, f"ec{k}.conv.activationFuncG_A")
        if k > 1:
            _bn(lay, f"ec{k}.bn", c[k - 1])
        _eg(lay, f"edge{k}", cm[k - 1], c[k - 1])
    for k in range(1, 7):
        lay[f"reverseConv{k}.reverseMaskConv.weight"] = ((c[k - 1], cm[k - 1], 4, 4), "weight")
        _ga(lay, f"reverseConv{k}.activationFuncG_A")
        _eg(lay, f"reverseedge{k}", cm[k - 1], c[k - 1])
    dec_in = [512, 1024, 1024, 1024, 512, 256]
    dec_out = [512, 512, 512, 256, 128, 64]
    for j in range(1, 7):
        lay[f"dc{j}.conv.weight"] = ((dec_in[j - 1], dec_out[j - 1], 4, 4), "tweight")
        _bn(lay, f"dc{j}.bn", 2 * dec_out[j - 1])
    lay["dc7.weight"] = ((128, 3, 4, 4), "tweight")
    return lay


def _unit(g: torch.Generator, n: int) -> torch.Tensor:
    x = torch.randn(n, generator=g, dtype=torch.float64)
    return x / x.norm()


def fake_state(layout: Layout, seed: int) -> Dict[str, torch.Tensor]:
    """Random tensors for ``layout``: scaled conv weights, positive BN variances, unit u / v vectors."""
    g = torch.Generator().manual_seed(seed)
    sd: Dict[str, torch.Tensor] = {}
    ranges = {"ga_a": (0.9, 3.0), "ga_mu": (0.0, 3.3), "ga_sigma1": (0.3, 2.3), "ga_sigma2": (0.3, 2.3)}
    for key, (shape, kind) in layout.items():
        if kind in ("weight", "tweight"):
            fan_in = math.prod(shape) // shape[0] if kind == "weight" else shape[0] * math.prod(shape[2:]) // 4
            t = torch.randn(shape, generator=g) * math.sqrt(2.0 / fan_in)
        elif kind == "bias":
            t = 0.1 * torch.randn(shape, generator=g)
        elif kind == "bn_w":
            t = 1 + 0.2 * torch.randn(shape, generator=g)
        elif kind == "bn_mean":
            t = 0.1 * torch.randn(shape, generator=g)
        elif kind == "bn_var":
            t = 0.5 + torch.rand(shape, generator=g)
        elif kind == "count":
            t = torch.tensor(int(torch.randint(1, 10**6, (), generator=g)))
        elif kind.startswith("ga_"):
            lo, hi = ranges[kind]
            t = lo + (hi - lo) * torch.rand((), generator=g)
        elif kind.startswith("sn_"):
            continue  # filled from their weight below
        else:
            raise AssertionError(kind)
        sd[key] = t.float() if kind != "count" else t
    # Spectral-norm vectors: unit vectors from a few power iterations started at random, as training leaves them.
    for key, (shape, kind) in layout.items():
        if kind not in ("sn_u", "sn_u_t"):
            continue
        name = key[: -len(".weight_u")]
        w = sd[name + ".weight_orig"].double()
        transposed = kind == "sn_u_t"
        wm = (w.transpose(0, 1) if transposed else w).reshape(shape[0], -1)
        v = _unit(g, wm.shape[1])
        for _ in range(3):
            u = wm @ v
            u = u / u.norm()
            v = wm.t() @ u
            v = v / v.norm()
        sd[key] = u.float()
        sd[name + ".weight_v"] = v.float()
    return {k: sd[k] for k in layout}  # published key order


def _published_json() -> Dict[str, Dict[str, List[int]]]:
    """Key names and shapes of the authors' published checkpoints (a copy kept in tests/fixtures)."""
    return json.loads((Path(__file__).resolve().parent / "fixtures" / "published_checkpoint_keys.json").read_text())


# ------------------------------------------------------------------------------ reference forward
# docs/ARCHITECTURE.md sections 2 and 3, on published names, torch.nn.functional only.


def _sn_weight(p, name: str, transposed: bool = False) -> torch.Tensor:
    w, u, v = p[name + ".weight_orig"], p[name + ".weight_u"], p[name + ".weight_v"]
    wm = (w.transpose(0, 1) if transposed else w).reshape(u.numel(), -1)
    return w / torch.dot(u, wm @ v)


def ref_mecnet(p, gray, edges, hole):
    inorm = F.instance_norm
    known = 1 - hole
    x = torch.cat((gray * known + hole, edges * known, hole), 1)
    x = F.conv2d(F.pad(x, (3,) * 4, mode="reflect"), _sn_weight(p, "encoder.1"), p["encoder.1.bias"])
    x = F.relu(inorm(x))
    for i in (4, 7):
        x = F.relu(inorm(F.conv2d(x, _sn_weight(p, f"encoder.{i}"), p[f"encoder.{i}.bias"], stride=2, padding=1)))
    h, w = x.shape[-2:]

    def trunk(t):
        for i in range(8):
            y = F.conv2d(F.pad(t, (2,) * 4, mode="reflect"), _sn_weight(p, f"middle.{i}.conv_block.1"), dilation=2)
            y = F.relu(inorm(y))
            y = inorm(F.conv2d(F.pad(y, (1,) * 4, mode="reflect"), _sn_weight(p, f"middle.{i}.conv_block.5")))
            t = t + y
        return t

    def up(t, n):
        t = F.conv_transpose2d(t, p[f"upsample{n}.0.weight"], p[f"upsample{n}.0.bias"], stride=2, padding=1)
        return F.relu(inorm(t))

    f64 = trunk(x)
    f8, f16, f32 = (trunk(F.adaptive_avg_pool2d(x, (h // s, w // s))) for s in (8, 4, 2))
    u64 = up(torch.cat((f32, up(torch.cat((f16, up(f8, 1)), 1), 2)), 1), 3)
    y = torch.cat((f64, u64), 1)
    for i in (0, 3):
        y = F.conv_transpose2d(y, _sn_weight(p, f"decoder.{i}", True), p[f"decoder.{i}.bias"], stride=2, padding=1)
        y = F.relu(inorm(y))
    y = F.conv2d(F.pad(y, (3,) * 4, mode="reflect"), p["decoder.7.weight"], p["decoder.7.bias"])
    return torch.sigmoid(y)


def ref_edge_lbam(p, image, hole, edge):
    def lrelu(t):
        return F.leaky_relu(t, 0.2)

    def bn(t, n):
        return F.batch_norm(t, p[n + ".running_mean"], p[n + ".running_var"], p[n + ".weight"], p[n + ".bias"],
                            training=False, eps=1e-5)

    def cbl(t, n):
        wt = p[n + ".0.weight"]
        return lrelu(bn(F.conv2d(t, wt, padding=wt.shape[-1] // 2), n + ".1"))

    def g_a(x, n):
        a = p[n + ".a"].clamp(1.01, 6.0)
        mu = p[n + ".mu"].clamp(0.1, 3.0)
        s1 = p[n + ".sigma1"].clamp(0.5, 2.0)
        s2 = p[n + ".sigma2"].clamp(0.5, 2.0)
        d2 = (x - mu) ** 2
        return torch.where(x < mu, a * torch.exp(-s1 * d2), 1 + (a - 1) * torch.exp(-s2 * d2))

    def g_m(x):
        return F.relu(x) ** 0.8

    def eg(m, e, n):
        e = F.interpolate(e, size=m.shape[-2:], mode="nearest")
        a = cbl(m, n + ".maskconv")
        k = cbl(torch.cat((cbl(e, n + ".edgegradient"), m), 1), n + ".edgemaskcoincide")
        return a * k + m, cbl(e, n + ".edgeconv")

    known = 1 - hole
    f = torch.cat((image * known, known, edge), 1)
    m = cbl(cbl(known.repeat(1, 3, 1, 1), "maskconv1"), "maskconv2")
    e = cbl(cbl(edge, "edgeconv1"), "edgeconv2")
    skips, fmaps, rmaps = {}, {}, {}
    for k in range(1, 8):
        m, e = eg(m, e, f"edge{k}")
        conv = F.conv2d(f, p[f"ec{k}.conv.conv.weight"], stride=2, padding=1)
        mc = F.conv2d(m, p[f"ec{k}.conv.maskConv.weight"], stride=2, padding=1)
        att = g_a(mc, f"ec{k}.conv.activationFuncG_A")
        out = conv * att
        f = lrelu(bn(out, f"ec{k}.bn") if k > 1 else out)
        m = g_m(mc)
        skips[k], fmaps[k] = conv, att
    r = cbl(cbl(hole.repeat(1, 3, 1, 1), "maskconv3"), "maskconv4")
    e = cbl(cbl(edge, "edgeconv3"), "edgeconv4")
    for k in range(1, 7):
        r, e = eg(r, e, f"reverseedge{k}")
        rc = F.conv2d(r, p[f"reverseConv{k}.reverseMaskConv.weight"], stride=2, padding=1)
        rmaps[k] = g_a(rc, f"reverseConv{k}.activationFuncG_A")
        r = g_m(rc)
    d = f
    for j in range(1, 7):
        k = 7 - j
        up = F.conv_transpose2d(d, p[f"dc{j}.conv.weight"], stride=2, padding=1)
        d = lrelu(bn(torch.cat((skips[k], up), 1) * torch.cat((fmaps[k], rmaps[k]), 1), f"dc{j}.bn"))
    return torch.tanh(F.conv_transpose2d(d, p["dc7.weight"], stride=2, padding=1)).abs()


# ------------------------------------------------------------------------------------------ fixtures


def _inputs(seed: int = 7):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(1, 3, SIDE, SIDE, generator=g)
    gray = 0.2125 * image[:, :1] + 0.7154 * image[:, 1:2] + 0.0721 * image[:, 2:]
    hole = torch.zeros(1, 1, SIDE, SIDE)
    hole[..., 30:80, 40:100] = 1
    hole[..., 90:120, 5:30] = 1
    edges = (torch.rand(1, 1, SIDE, SIDE, generator=g) > 0.85).float()
    soft_edge = edges * (1 - hole) + torch.rand(1, 1, SIDE, SIDE, generator=g) * hole
    return image, gray, hole, edges, soft_edge


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    d = tmp_path_factory.mktemp("published")
    mec = fake_state(mecnet_layout(), seed=1)
    gen = fake_state(edge_lbam_layout(), seed=2)
    paths = {"mecnet": d / "edge_model.pth", "mecnet_module": d / "edge_model_dp.pth", "generator": d / "g.pth"}
    torch.save({"iteration": 123, "generator": mec}, paths["mecnet"])
    torch.save({"iteration": 123, "generator": {"module." + k: v for k, v in mec.items()}}, paths["mecnet_module"])
    torch.save(gen, paths["generator"])
    return {"mecnet_state": mec, "generator_state": gen, **paths}


@pytest.fixture(scope="module")
def folder(published, tmp_path_factory):
    out = convert_official(published["mecnet_module"], published["generator"], tmp_path_factory.mktemp("w") / "paper")
    return out, read_weights_folder(out)


# --------------------------------------------------------------------------------------------- tests


def test_fake_checkpoints_have_the_published_keys_and_shapes():
    doc = _published_json()
    (mec_key,) = [k for k in doc if k.startswith("mecnet")]
    (gen_key,) = [k for k in doc if k.startswith("edge_lbam")]
    for lay, want in ((mecnet_layout(), doc[mec_key]), (edge_lbam_layout(), doc[gen_key])):
        assert {k: list(s) for k, (s, _) in lay.items()} == want


def test_load_published_unwraps_generator_and_strips_module_prefix(published):
    plain = load_published(published["mecnet"])
    dp = load_published(published["mecnet_module"])
    assert list(plain) == list(dp) == list(published["mecnet_state"])
    assert all(torch.equal(plain[k], dp[k]) for k in plain)
    gen = load_published(published["generator"])
    assert set(gen) == set(published["generator_state"])


def test_converted_mecnet_matches_reference_forward(published, folder):
    _, (config, mec_state, _, _) = folder
    model = MECNet(config.mecnet)
    model.load_state_dict(mec_state, strict=True)
    model.eval()
    _, gray, hole, edges, _ = _inputs()
    with torch.no_grad():
        ours = model(gray, edges, hole)
        ref = ref_mecnet(published["mecnet_state"], gray, edges, hole)
    diff = (ours - ref).abs().max().item()
    print(f"MECNet max abs diff {diff:.3g} (output std {ref.std():.3g})")
    assert ref.std() > 1e-3  # not a degenerate (constant) output
    assert diff < TOL


def test_converted_edge_lbam_matches_reference_forward(published, folder):
    _, (config, _, gen_state, _) = folder
    model = EdgeLBAM(config.generator)
    model.load_state_dict(gen_state, strict=True)
    model.eval()
    image, _, hole, _, edge = _inputs()
    with torch.no_grad():
        ours = model(image, hole, edge)
        ref = ref_edge_lbam(published["generator_state"], image, hole, edge)
    diff = (ours - ref).abs().max().item()
    print(f"Edge-LBAM max abs diff {diff:.3g} (output mean {ref.mean():.3g} std {ref.std():.3g})")
    assert ref.std() > 1e-3 and ref.max() < 0.9999  # neither constant nor saturated
    assert diff < TOL


def test_convert_official_writes_paper_config_and_hashes(published, folder):
    out, (config, mec_state, gen_state, meta) = folder
    assert config == get_config("paper")
    doc = json.loads((out / "config.json").read_text())
    assert doc["model"] == get_config("paper").to_dict()
    assert "source" in doc and doc["source_files"]["generator"]["sha256"] == sha256_file(published["generator"])
    for name in ("mecnet.safetensors", "generator.safetensors"):
        assert doc["files"][name] == sha256_file(out / name) == meta["files"][name]
    assert set(mec_state) == set(MECNet(config.mecnet).state_dict())
    assert gen_state["decoder.0.bn.num_batches_tracked"].dtype == torch.int64


def _spectral_norm_case(module: nn.Module, x: torch.Tensor, **sn_kwargs):
    torch.manual_seed(0)
    sn = nn.utils.spectral_norm(module, **sn_kwargs)
    sn.train()
    for _ in range(3):  # power iterations update u and v
        sn(x)
    sn.eval()
    with torch.no_grad():
        y = sn(x)  # eval: weight = weight_orig / (u . W v) without updating u, v
    return sn, y


@pytest.mark.parametrize(
    "make, explicit_dim",
    [
        (lambda: nn.Conv2d(6, 10, 3, padding=1), False),
        (lambda: nn.ConvTranspose2d(12, 5, 4, 2, 1), False),  # non-square: dim 1 inferred from u / v
        (lambda: nn.ConvTranspose2d(8, 8, 4, 2, 1), True),  # square: dim must be given
    ],
)
def test_fold_spectral_norm_equals_torch_spectral_norm_in_eval(make, explicit_dim):
    torch.manual_seed(0)
    module = make()
    x = torch.randn(2, module.in_channels, 9, 9)
    sn, y = _spectral_norm_case(module, x)
    state = {"layer." + k: v for k, v in sn.state_dict().items()}
    folded = fold_spectral_norm(state, dims={"layer": 1} if explicit_dim else None)
    assert set(folded) == {"layer.weight", "layer.bias"}
    assert torch.allclose(folded["layer.weight"], sn.weight.detach(), rtol=1e-6, atol=1e-7)
    plain = make()
    plain.load_state_dict({k[len("layer."):]: v for k, v in folded.items()})
    assert torch.allclose(plain(x), y, atol=1e-6)


def test_fold_spectral_norm_of_a_trained_sn_mecnet_matches_it():
    cfg = get_config("tiny").mecnet
    torch.manual_seed(0)
    sn_model = MECNet(cfg, spectral_norm=True)
    _, gray, hole, edges, _ = _inputs()
    sn_model.train()
    for _ in range(2):
        sn_model(gray, edges, hole)
    sn_model.eval()
    plain = MECNet(cfg)
    plain.load_state_dict(fold_spectral_norm(sn_model.state_dict(), dims={"decoder.0": 1, "decoder.3": 1}))
    plain.eval()
    with torch.no_grad():
        assert torch.allclose(plain(gray, edges, hole), sn_model(gray, edges, hole), atol=1e-5)


@pytest.mark.parametrize("which", ["mecnet", "generator"])
@pytest.mark.parametrize("fault", ["missing", "unexpected", "shape"])
def test_conversion_is_strict(published, which, fault):
    state = dict(published[f"{which}_state"])
    convert = convert_mecnet if which == "mecnet" else convert_edge_lbam
    key = "upsample2.0.bias" if which == "mecnet" else "reverseConv3.activationFuncG_A.mu"
    if fault == "missing":
        del state[key]
    elif fault == "unexpected":
        key = "upsample4.0.weight" if which == "mecnet" else "dc8.conv.weight"
        state[key] = torch.zeros(3)
    else:
        key = "decoder.7.weight" if which == "mecnet" else "edge3.edgeconv.1.running_var"
        state[key] = torch.zeros(7)
    with pytest.raises(WeightsError, match=fault.replace("shape", "wrong shape")) as err:
        convert(state)
    assert key in str(err.value)


def test_incomplete_spectral_norm_triple_is_refused(published):
    state = dict(published["mecnet_state"])
    del state["middle.3.conv_block.5.weight_v"]
    with pytest.raises(WeightsError, match=r"middle\.3\.conv_block\.5\.weight_v"):
        convert_mecnet(state)


class _Payload:
    """An arbitrary object: a weights-only reader must refuse to rebuild it."""

    def __init__(self):
        self.note = "arbitrary pickled object"


def test_published_file_with_pickled_object_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"iteration": 1, "generator": {"w": torch.zeros(2)}, "extra": _Payload()}, path)
    with pytest.raises(WeightsError, match="pickled Python objects") as e:
        load_published(path)
    msg = str(e.value)
    assert "_Payload" in msg and "\n" not in msg  # one line naming what the file holds ...
    assert "weights_only=False" not in msg and "succeed" not in msg and "trust" not in msg  # ... never unsafe advice
    path2 = tmp_path / "evil2.pth"
    torch.save({"w": torch.zeros(2), "x": _Payload()}, path2)
    with pytest.raises(WeightsError, match="pickled"):
        load_published(path2)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsError, match="not a PyTorch tensor checkpoint"):
        load_published(tmp_path / "junk.pth")


def test_weights_folder_round_trip_and_tamper_detection(tmp_path):
    cfg = get_config("tiny")
    torch.manual_seed(0)
    mec, gen = MECNet(cfg.mecnet).state_dict(), EdgeLBAM(cfg.generator).state_dict()
    hashes = write_weights_folder(tmp_path / "w", cfg, mec, gen, extra={"source": "test"})
    assert set(hashes) == {"config.json", "mecnet.safetensors", "generator.safetensors"}
    config, mec2, gen2, meta = read_weights_folder(tmp_path / "w")
    assert config == cfg and meta["source"] == "test"
    assert all(torch.equal(mec[k], mec2[k]) for k in mec) and all(torch.equal(gen[k], gen2[k]) for k in gen)
    p = tmp_path / "w" / "mecnet.safetensors"
    data = bytearray(p.read_bytes())
    data[-1] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256"):
        read_weights_folder(tmp_path / "w")
    with pytest.raises(WeightsError, match="lacks"):
        (tmp_path / "w" / "generator.safetensors").unlink()
        read_weights_folder(tmp_path / "w")
