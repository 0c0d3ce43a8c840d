"""A weights folder is checked when it is read: config.json types and bounds, finite tensors (WeightsError)."""
import json

import pytest
import torch

from lbam import Inpainter, WeightsError
from lbam.hub import locate
from lbam.weights_io import CONFIG_FILE, read_weights_folder, write_weights_folder


@pytest.fixture()
def folder(tmp_path):
    inp = Inpainter.from_config("tiny", device="cpu", fuse=False)
    inp.save_pretrained(tmp_path / "w")
    return tmp_path / "w"


def _edit_model(folder, **changes):
    path = folder / CONFIG_FILE
    doc = json.loads(path.read_text())
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        d = doc["model"]
        for p in parents:
            d = d[p]
        d[key] = value
    path.write_text(json.dumps(doc))


def test_the_bundled_and_a_saved_folder_pass(folder):
    read_weights_folder(folder)
    read_weights_folder(locate(None)[0])


@pytest.mark.parametrize("changes, words", [
    (dict(mecnet__base=512, mecnet__n_blocks=8), "mecnet.base"),  # would build GBs of networks
    (dict(mecnet__base=-4), "mecnet.base"),
    (dict(mecnet__base="12"), "mecnet.base"),
    (dict(mecnet__n_blocks=True), "mecnet.n_blocks"),
    (dict(mecnet__n_blocks=1000), "mecnet.n_blocks"),
    (dict(generator__widths=[4, 8, 8, 8, 8, 8, 100000]), "generator.widths[6]"),
    (dict(generator__widths=[4, 8, 8]), "generator.widths"),
    (dict(generator__widths=[4, 8, 8, 8, 8, 8, 8.5]), "generator.widths[6]"),
    (dict(generator__residual="yes"), "residual"),
    (dict(generator__smooth_upsampling=1), "generator.smooth_upsampling"),
    (dict(mecnet__smooth_upsampling="on"), "mecnet.smooth_upsampling"),
    (dict(canny_low="x"), "canny_low"),
    (dict(canny_low=0.5, canny_high=0.2), "canny_low"),
    (dict(canny_high=-1), "canny_high"),
    (dict(canny_sigma=1e9), "canny_sigma"),  # a 1e9-sigma Gaussian kernel: tens of GB
    (dict(canny_sigma=0), "canny_sigma"),
    (dict(canny_sigma=float("nan")), "canny_sigma"),
    (dict(train_size=100), "train_size"),
    (dict(train_size=2**20), "train_size"),
    (dict(edge_threshold=1.5), "edge_threshold"),
    (dict(name=["x"]), "name"),
    (dict(mecnet=[1, 2]), "mecnet"),
])
def test_bad_model_config_is_refused_when_read(folder, changes, words):
    _edit_model(folder, **changes)
    with pytest.raises(WeightsError, match="model config") as e:
        read_weights_folder(folder)
    assert words in str(e.value)
    with pytest.raises(WeightsError):
        Inpainter.from_pretrained(str(folder), device="cpu")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("which", ["mecnet", "generator"])
def test_non_finite_weights_are_refused(tmp_path, value, which):
    inp = Inpainter.from_config("tiny", device="cpu", fuse=False)
    mec, gen = inp.mecnet.state_dict(), inp.generator.state_dict()
    state = mec if which == "mecnet" else gen
    key = next(k for k, t in state.items() if t.is_floating_point() and t.numel() > 1)
    state[key] = state[key].clone()
    state[key].view(-1)[1] = value
    write_weights_folder(tmp_path / "w", inp.config, mec, gen)
    with pytest.raises(WeightsError, match=f"{which}.safetensors.*{key}.*non-finite"):
        read_weights_folder(tmp_path / "w")
    with pytest.raises(WeightsError, match="non-finite"):
        Inpainter.from_pretrained(str(tmp_path / "w"), device="cpu")
