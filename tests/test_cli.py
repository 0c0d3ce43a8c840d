"""The `lbam` command: single image, folder mode, edges, weights list, clean errors without tracebacks."""
import os
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ladybird.jpg"
EXAMPLE_MASK = ROOT / "examples" / "ladybird_mask.png"


def lbam(*args, cwd=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "lbam", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def assert_clean_error(proc, *words):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("lbam: error:"), proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_inpaint_single_image_keeps_known_pixels(tmp_path):
    out = tmp_path / "out.png"
    proc = lbam("inpaint", EXAMPLE, EXAMPLE_MASK, "-o", out, "--save-edges", tmp_path / "edges.png")
    assert proc.returncode == 0, proc.stderr
    src = np.asarray(Image.open(EXAMPLE).convert("RGB"))
    res = np.asarray(Image.open(out))
    hole = np.asarray(Image.open(EXAMPLE_MASK)) >= 128
    assert res.shape == src.shape
    assert np.array_equal(res[~hole], src[~hole])
    assert not np.array_equal(res[hole], src[hole])
    assert Image.open(tmp_path / "edges.png").size == (src.shape[1], src.shape[0])


def test_inpaint_folder_mode_matches_by_name(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    img = Image.open(EXAMPLE).convert("RGB")
    for name, size in (("a", (160, 100)), ("b", (200, 130))):
        img.resize(size).save(images / f"{name}.jpg")
        m = np.zeros(size[::-1], np.uint8)
        m[30:60, 40:90] = 255
        Image.fromarray(m).save(masks / (f"{name}_mask.png" if name == "b" else f"{name}.png"))
    img.resize((50, 50)).save(images / "orphan.png")  # no mask: skipped with a warning
    proc = lbam("inpaint", "--images", images, "--masks", masks, "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    assert "orphan" in proc.stderr


def test_inpaint_dilate_grows_the_hole(tmp_path):
    out = tmp_path / "out.png"
    proc = lbam("inpaint", EXAMPLE, EXAMPLE_MASK, "-o", out, "--dilate", "6", "-q")
    assert proc.returncode == 0, proc.stderr
    src = np.asarray(Image.open(EXAMPLE).convert("RGB"))
    res = np.asarray(Image.open(out))
    hole = np.asarray(Image.open(EXAMPLE_MASK)) >= 128
    from lbam.io import grow_hole

    grown = grow_hole(hole, 6)
    assert np.array_equal(res[~grown], src[~grown])
    assert not np.array_equal(res[grown & ~hole], src[grown & ~hole])
    assert_clean_error(lbam("inpaint", EXAMPLE, EXAMPLE_MASK, "-o", out, "--dilate", "-1"), "dilate")


def test_inpaint_dtype_option(tmp_path):
    # a small image keeps the half-precision CPU run short; known pixels stay exact, the fill is close to fp32
    img = Image.open(EXAMPLE).convert("RGB").resize((128, 96))
    m = np.zeros((96, 128), np.uint8)
    m[30:60, 40:90] = 255
    img.save(tmp_path / "a.png")
    Image.fromarray(m).save(tmp_path / "m.png")
    outs = {}
    for dt in ("float32", "bfloat16"):
        proc = lbam("inpaint", tmp_path / "a.png", tmp_path / "m.png", "-o", tmp_path / f"{dt}.png", "--dtype", dt,
                    "--device", "cpu", "-q")
        assert proc.returncode == 0, proc.stderr
        outs[dt] = np.asarray(Image.open(tmp_path / f"{dt}.png")).astype(np.int16)
    hole = m >= 128
    src = np.asarray(img).astype(np.int16)
    assert np.array_equal(outs["bfloat16"][~hole], src[~hole])
    assert np.abs(outs["bfloat16"][hole] - outs["float32"][hole]).mean() < 3
    bad = lbam("inpaint", tmp_path / "a.png", tmp_path / "m.png", "-o", tmp_path / "x.png", "--dtype", "int8")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "dtype" in bad.stderr


def test_weights_list_names_the_default():
    proc = lbam("weights", "list")
    assert proc.returncode == 0, proc.stderr
    assert any(line.startswith("*") for line in proc.stdout.splitlines())


def test_missing_image_is_a_clean_error(tmp_path):
    assert_clean_error(lbam("inpaint", tmp_path / "nope.jpg", EXAMPLE_MASK, "-o", tmp_path / "o.png"), "nope.jpg")


def test_mask_size_mismatch_is_a_clean_error(tmp_path):
    Image.new("L", (10, 10), 255).save(tmp_path / "m.png")
    assert_clean_error(lbam("inpaint", EXAMPLE, tmp_path / "m.png", "-o", tmp_path / "o.png"), "size")


def test_truncated_image_is_a_clean_error(tmp_path):
    data = EXAMPLE.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    assert_clean_error(lbam("inpaint", tmp_path / "cut.jpg", EXAMPLE_MASK, "-o", tmp_path / "o.png"))


def test_unavailable_device_is_a_clean_error(tmp_path):
    proc = lbam("inpaint", EXAMPLE, EXAMPLE_MASK, "-o", tmp_path / "o.png", "--device", "cuda:99")
    assert_clean_error(proc, "cuda:99", "not available")
    assert not (tmp_path / "o.png").exists()


def test_convert_official_refusing_a_pickle_prints_one_line(tmp_path):
    import torch

    torch.save({"w": torch.zeros(2), "code": print}, tmp_path / "evil.pth")  # a pickled global
    proc = lbam("convert-official", "--edge", tmp_path / "evil.pth", "--inpaint", tmp_path / "evil.pth",
                "--out", tmp_path / "w")
    assert_clean_error(proc, "pickled Python objects")
    assert "weights_only=False" not in proc.stderr and not (tmp_path / "w").exists()


def test_unknown_weights_is_a_clean_error(tmp_path):
    proc = lbam("inpaint", EXAMPLE, EXAMPLE_MASK, "-o", tmp_path / "o.png", "--weights", "nope")
    assert_clean_error(proc, "known")


def test_export_and_evaluate_from_the_command_line(tmp_path):
    from lbam.training.config import make_config
    from lbam.training.trainer import Trainer

    photos = ROOT / "tests" / "fixtures" / "photos"
    Trainer(make_config("fast", model="tiny", data=str(photos), out=str(tmp_path / "run"),
                        batch_size=2, size=128, max_steps=1)).run()
    proc = lbam("export", tmp_path / "run", "--out", tmp_path / "w")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.split()) == 6  # three "sha256  path" lines
    val = tmp_path / "val"
    val.mkdir()
    shutil.copy(sorted(photos.iterdir())[0], val)
    proc = lbam("evaluate", "--data", val, "--weights", tmp_path / "w", "--per-image", "1", "--json", tmp_path / "e.json",
                "--telea-radius", "3", "5")
    assert proc.returncode == 0, proc.stderr
    assert "40-50" in proc.stdout and (tmp_path / "e.json").exists()
    assert "telea5 PSNR" in proc.stdout and "| ours | all |" in proc.stdout and "haze" in proc.stdout
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["telea_radii"] == {"telea": 3, "telea5": 5}
    defect_keys = {"sharpness", "edge_step", "grid2", "blotch", "edge_f1", "haze", "hatch", "stray"}
    assert defect_keys <= set(report["metrics"]["ours"]["all"])
    assert report["edges"] == "mecnet"
    proc = lbam("evaluate", "--data", val, "--weights", tmp_path / "w", "--per-image", "1", "--json", tmp_path / "t.json",
                "--edges", "truth")
    assert proc.returncode == 0, proc.stderr
    truth = json.loads((tmp_path / "t.json").read_text())
    assert truth["edges"] == "truth" and "edge_f1" not in truth["metrics"]["ours"]["all"]
    assert_clean_error(lbam("evaluate", "--data", val, "--native", "--edges", "truth"), "--edges truth")


def test_train_options_reach_the_config(tmp_path):
    from lbam.cli import _train_config, build_parser

    base = ["train", "joint", "--data", str(tmp_path), "--out", str(tmp_path / "run")]
    args = build_parser().parse_args(base + ["--pixel-loss", "l1", "--scale", "1", "2", "--edge-lr", "1e-4",
                                             "--lr", "2e-4", "--hole-range", "0.25", "0.6"])
    cfg = _train_config(args, args.stage, args.init, args.config)
    assert (cfg.pixel_loss, cfg.scale, cfg.edge_lr, cfg.lr) == ("l1", (1.0, 2.0), 1e-4, 2e-4)
    assert cfg.hole_range == (0.25, 0.6)
    args = build_parser().parse_args(base)  # nothing given: the fast recipe of the bundled weights
    cfg = _train_config(args, args.stage, args.init, args.config)
    assert (cfg.pixel_loss, cfg.scale, cfg.edge_lr, cfg.lr) == ("l2", (1.0, 1.5), 5e-4, 5e-4)
    assert cfg.hole_range == (0.05, 0.6)
    two = ["train", "joint", "--data", str(tmp_path), str(tmp_path / "textures"), "--out", str(tmp_path / "run")]
    args = build_parser().parse_args(two + ["--w-grad", "0.1", "--w-grid", "0.5", "--edge-pos-weight", "4",
                                            "--val-every", "100"])
    cfg = _train_config(args, args.stage, args.init, args.config)
    assert cfg.data == [str(tmp_path), str(tmp_path / "textures")]
    assert (cfg.w_grad, cfg.w_grid, cfg.edge_pos_weight, cfg.val_every) == (0.1, 0.5, 4.0, 100)
    assert cfg.true_edge_share == 0
    args = build_parser().parse_args(two + ["--true-edge-share", "0.5"])
    assert _train_config(args, args.stage, args.init, args.config).true_edge_share == 0.5
    assert (cfg.critic, cfg.critic_width, cfg.w_fm, cfg.disc_lr_ratio) == ("two_column", 64, 0.0, 0.1)  # defaults
    args = build_parser().parse_args(two + ["--w-adv", "0.01", "--critic", "patch", "--critic-width", "32",
                                            "--w-fm", "0.5", "--disc-lr-ratio", "1"])
    cfg = _train_config(args, args.stage, args.init, args.config)
    assert (cfg.w_adv, cfg.critic, cfg.critic_width, cfg.w_fm, cfg.disc_lr_ratio) == (0.01, "patch", 32, 0.5, 1.0)
    from lbam.training.config import CRITICS

    for critic in CRITICS:  # the command line offers every critic the configuration knows, and no other
        assert build_parser().parse_args(two + ["--critic", critic]).critic == critic
    with pytest.raises(SystemExit):
        build_parser().parse_args(two + ["--critic", "three_column"])
    from lbam.training.config import EDGE_LOSSES

    for loss in EDGE_LOSSES:  # likewise for MECNet's losses
        assert build_parser().parse_args(two + ["--edge-loss", loss]).edge_loss == loss
    with pytest.raises(SystemExit):
        build_parser().parse_args(two + ["--edge-loss", "focal"])
    args = build_parser().parse_args(two + ["--edge-loss", "gan", "--edge-disc-width", "16", "--edge-bce-weight", "3"])
    cfg = _train_config(args, args.stage, args.init, args.config)
    assert (cfg.edge_loss, cfg.edge_disc_width, cfg.edge_bce_weight) == ("gan", 16, 3.0)
    args = build_parser().parse_args(two)
    cfg = _train_config(args, args.stage, args.init, args.config)
    assert (cfg.edge_loss, cfg.edge_disc_width, cfg.edge_bce_weight) == ("bce", 64, 0.0)  # the fast recipe's
    assert not cfg.cpu_bf16 and not cfg.freeze_edges
    args = build_parser().parse_args(two + ["--cpu-bf16", "--freeze-edges"])
    cfg = _train_config(args, args.stage, args.init, args.config)
    assert cfg.cpu_bf16 and cfg.freeze_edges
    args = build_parser().parse_args(["train", "edge", "--data", str(tmp_path), "--out", str(tmp_path / "e"),
                                      "--freeze-edges"])
    with pytest.raises(ValueError, match="freeze_edges"):  # only the joint stage has edges to keep fixed
        _train_config(args, args.stage, args.init, args.config)
    args = build_parser().parse_args(base + ["--hole-range", "0.6", "0.2"])
    with pytest.raises(ValueError, match="hole_range"):
        _train_config(args, args.stage, args.init, args.config)


def test_inpaint_prints_the_path_it_wrote_unless_quiet(tmp_path):
    out = tmp_path / "out.png"
    proc = lbam("inpaint", EXAMPLE, EXAMPLE_MASK, "-o", out, "--save-edges", tmp_path / "e.png", "--threads", "1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [str(tmp_path / "e.png"), str(out)]
    proc = lbam("inpaint", EXAMPLE, EXAMPLE_MASK, "-o", out, "-q")
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout


@pytest.mark.parametrize("command", [["inpaint", str(EXAMPLE), str(EXAMPLE_MASK), "-o", "never.png"],
                                     ["evaluate", "--data", str(ROOT / "tests" / "fixtures" / "photos")]])
def test_threads_option_sets_torch_threads_first(command, monkeypatch, capsys):
    import torch

    import lbam.training.evaluate
    from lbam import Inpainter
    from lbam.cli import main

    from lbam.errors import LbamError

    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)

    def stop(*a, **k):
        raise LbamError("stopped after the thread setting")

    monkeypatch.setattr(Inpainter, "from_pretrained", classmethod(stop))
    monkeypatch.setattr(lbam.training.evaluate, "evaluate_weights", stop)
    assert main(command + ["--threads", "3"]) == 2
    assert calls == [3] and "stopped after" in capsys.readouterr().err
    assert main(command + ["--threads", "0"]) == 2
    assert calls == [3] and "--threads must be at least 1" in capsys.readouterr().err


def test_evaluate_on_a_missing_folder_says_it_does_not_exist(tmp_path):
    proc = lbam("evaluate", "--data", tmp_path / "no-such-folder", "--per-image", "1")
    assert_clean_error(proc, "no-such-folder", "does not exist")
    (tmp_path / "empty").mkdir()
    assert_clean_error(lbam("evaluate", "--data", tmp_path / "empty", "--per-image", "1"), "no images")


def test_refine_edges_option_reaches_the_inpainter(monkeypatch):
    from lbam import api
    from lbam.cli import _inpainter, build_parser

    monkeypatch.setattr(api.Inpainter, "from_pretrained",
                        classmethod(lambda cls, *a, **k: api.Inpainter.from_config("tiny", device="cpu")))
    args = build_parser().parse_args(["inpaint", "a.png", "m.png", "-o", "o.png", "--refine-edges", "prefill"])
    assert _inpainter(args).refine_edges == "prefill"
    assert _inpainter(build_parser().parse_args(["inpaint", "a.png", "m.png", "-o", "o.png"])).refine_edges == "mecnet"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["inpaint", "a.png", "m.png", "-o", "o.png", "--refine-edges", "canny"])


def test_detail_options_reach_the_inpainter(monkeypatch):
    from lbam import api
    from lbam.cli import _inpainter, build_parser
    from lbam.detail import DETAILS

    monkeypatch.setattr(api.Inpainter, "from_pretrained",
                        classmethod(lambda cls, *a, **k: api.Inpainter.from_config("tiny", device="cpu")))
    base = ["inpaint", "a.png", "m.png", "-o", "o.png"]
    inp = _inpainter(build_parser().parse_args(base + ["--detail", "context", "--detail-strength", "0.5"]))
    assert (inp.detail, inp.detail_strength) == ("context", 0.5)
    inp = _inpainter(build_parser().parse_args(base))
    assert (inp.detail, inp.detail_strength) == ("none", 1.0)
    for d in DETAILS:
        assert build_parser().parse_args(["evaluate", "--data", "x", "--detail", d]).detail == d
    with pytest.raises(SystemExit):
        build_parser().parse_args(base + ["--detail", "sharp"])
    with pytest.raises(ValueError, match="detail_strength"):
        _inpainter(build_parser().parse_args(base + ["--detail-strength", "-1"]))
