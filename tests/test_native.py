"""Native-resolution evaluation (lbam.training.native, ``lbam evaluate --native``): object holes, the in-hole
scores, the report and the command line."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lbam import Inpainter
from lbam.training import native

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT / "tests" / "fixtures" / "photos"


@pytest.mark.parametrize("seed", range(6))
def test_object_hole_is_object_sized_and_seeded(seed):
    hole = native.object_hole((300, 480), np.random.default_rng([0, seed]))
    assert hole.dtype == bool and hole.shape == (300, 480)
    assert 0.03 * 0.9 <= hole.mean() <= 0.15 * 1.1
    assert np.array_equal(hole, native.object_hole((300, 480), np.random.default_rng([0, seed])))


def test_hole_scores_look_at_the_hole_only():
    truth = np.full((40, 50, 3), 100, np.uint8)
    hole = np.zeros((40, 50), bool)
    hole[10:20, 10:30] = True
    out = truth.copy()
    out[hole] = 100 + 51  # an error of 0.2 on every hole pixel: 10 log10(1 / 0.04) = 13.98 dB
    out[0, 0] = 0  # outside the hole: not counted
    assert native.hole_psnr(out, truth, hole) == pytest.approx(13.979, abs=1e-3)
    assert native.hole_ssim(truth, truth, hole) == pytest.approx(1.0)
    assert native.hole_ssim(out, truth, hole) < 0.99


def test_evaluate_native_scores_every_method():
    inp = Inpainter.from_config("tiny", device="cpu")
    methods = native.methods_for(inp, ("auto", "single"), (3,))
    report = native.evaluate_native(methods, PHOTOS, max_side=320, images=1)
    assert set(report["metrics"]) == {"auto", "single", "telea3"}
    photo = report["photos"][0]
    assert max(photo["size"]) == 320 and 0.02 < photo["hole"] < 0.17
    for r in report["metrics"].values():
        assert r["n"] == 1 and 0 < r["psnr"] < 60 and 0 < r["ssim"] <= 1 and r["sharpness"] > 0 and r["edge_step"] >= 0
        assert r["stripes"] >= 0 and r["fringe"] > 0
        assert "lattice2" not in r and "blotch" not in r  # left out of the whole-photo protocol
    assert "| telea3 |" in native.format_native(report) and "| fringe |" in native.format_native(report)


def test_evaluate_native_from_the_command_line(tmp_path):
    Inpainter.from_config("tiny", device="cpu").save_pretrained(tmp_path / "w")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "lbam", "evaluate", "--native", "--data", str(PHOTOS), "--weights",
                           str(tmp_path / "w"), "--images", "1", "--max-side", "300", "--json",
                           str(tmp_path / "n.json"), "--threads", "1", "--refine-edges", "prefill"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "| pyramid |" in proc.stdout and "| telea5 |" in proc.stdout
    report = json.loads((tmp_path / "n.json").read_text())
    assert report["max_side"] == 300 and set(report["metrics"]) == {"pyramid", "single", "telea3", "telea5"}
    assert report["refine_edges"] == "prefill"
