"""Training runs as a user meets them: a log from the first step, a progress bar, Ctrl-C keeps a checkpoint,
`lbam finetune` stops by default."""
import csv
from pathlib import Path

import pytest

import lbam.training.trainer as trainer_module
from lbam.cli import FINETUNE_STEPS, main
from lbam.training.config import make_config
from lbam.training.export import export_run
from lbam.training.trainer import CHECKPOINT, Trainer

PHOTOS = Path(__file__).resolve().parent / "fixtures" / "photos"


def tiny(out, **kw):
    base = dict(model="tiny", data=str(PHOTOS), out=str(out), batch_size=2, size=128, checkpoint_minutes=1e9,
                workers=0)
    base.update(kw)
    return make_config("fast", **base)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_short_run_logs_its_first_and_last_step(tmp_path):
    Trainer(tiny(tmp_path, max_steps=3, log_every=50)).run()
    assert [r["step"] for r in _rows(tmp_path / "train_log.csv")] == ["1", "3"]


def test_progress_bar_shows_step_loss_and_rate(tmp_path, capsys):
    Trainer(tiny(tmp_path, max_steps=2)).run(progress=True)
    err = capsys.readouterr().err
    assert "2/2" in err and "loss=" in err and ("it/s" in err or "s/step" in err or "step/s" in err)


def test_ctrl_c_saves_a_checkpoint_that_exports(tmp_path, monkeypatch):
    real_step = trainer_module.train_step
    calls = []

    def step_then_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "train_step", step_then_interrupt)
    tr = Trainer(tiny(tmp_path / "run", max_steps=100))
    tr.run()
    assert tr.interrupted and tr.step == 2
    assert (tmp_path / "run" / CHECKPOINT).exists()
    assert [r["step"] for r in _rows(tmp_path / "run" / "train_log.csv")][-1] == "2"
    hashes = export_run(str(tmp_path / "run"), str(tmp_path / "w"))
    assert len(hashes) == 3


def test_finetune_has_a_finite_default_and_ends_cleanly_on_ctrl_c(tmp_path, monkeypatch, capsys):
    seen = {}

    class FakeTrainer:
        def __init__(self, cfg, resume=False):
            seen["cfg"] = cfg
            self.step, self.interrupted = 7, True

        def run(self, progress=False):
            seen["progress"] = progress

    monkeypatch.setattr(trainer_module, "Trainer", FakeTrainer)
    assert main(["finetune", "--data", str(PHOTOS), "--out", str(tmp_path / "ft")]) == 0
    assert seen["cfg"].max_steps == FINETUNE_STEPS and seen["progress"]
    assert "interrupted at step 7" in capsys.readouterr().err
    assert main(["finetune", "--data", str(PHOTOS), "--out", str(tmp_path / "ft"), "--max-minutes", "5"]) == 0
    assert seen["cfg"].max_steps > FINETUNE_STEPS and seen["cfg"].max_minutes == 5


def test_finetune_keeps_the_edge_decoding_of_the_weights_it_starts_from(tmp_path):
    import dataclasses

    import torch

    from lbam.models import EdgeLBAM, MECNet, get_config
    from lbam.weights_io import read_weights_folder, write_weights_folder

    tiny_cfg = get_config("tiny")
    cfg = dataclasses.replace(tiny_cfg.with_smooth_upsampling(True), edge_decode="nms", edge_threshold=0.4)
    # the named configuration decodes nothing and does not smooth
    assert tiny_cfg.edge_decode == "none" and not tiny_cfg.generator.smooth_upsampling
    torch.manual_seed(0)
    write_weights_folder(tmp_path / "start", cfg, MECNet(cfg.mecnet).state_dict(), EdgeLBAM(cfg.generator).state_dict())
    assert main(["finetune", "--data", str(PHOTOS), "--out", str(tmp_path / "ft"), "--weights", str(tmp_path / "start"),
                 "--max-steps", "1", "--batch-size", "2", "--size", "128"]) == 0
    export_run(str(tmp_path / "ft"), str(tmp_path / "w"))
    out = read_weights_folder(tmp_path / "w")[0]
    assert (out.edge_decode, out.edge_threshold) == ("nms", 0.4)
    assert out.mecnet.smooth_upsampling and out.generator.smooth_upsampling


@pytest.mark.parametrize("switch", ["on", "off"])
def test_train_init_accepts_weights_trained_with_the_other_smoothing(tmp_path, switch):
    """--init loads weights whose only difference is the parameter-free smooth_upsampling; the run trains and
    exports with the switch it was given."""
    import dataclasses

    import torch

    from lbam.models import EdgeLBAM, MECNet, get_config
    from lbam.weights_io import read_weights_folder, write_weights_folder

    tiny_cfg = get_config("tiny")
    start = tiny_cfg.with_smooth_upsampling(switch == "off")
    torch.manual_seed(0)
    write_weights_folder(tmp_path / "start", start, MECNet(start.mecnet).state_dict(),
                         EdgeLBAM(start.generator).state_dict())
    assert main(["train", "joint", "--data", str(PHOTOS), "--out", str(tmp_path / "run"), "--config", "tiny",
                 "--init", str(tmp_path / "start"), "--smooth-upsampling", switch, "--edge-decode", "nms",
                 "--max-steps", "1", "--batch-size", "2", "--size", "128"]) == 0
    export_run(str(tmp_path / "run"), str(tmp_path / "w"))
    out = read_weights_folder(tmp_path / "w")[0]
    assert out.generator.smooth_upsampling == out.mecnet.smooth_upsampling == (switch == "on")
    assert out.edge_decode == "nms"
    # a different layout is still refused
    other = dataclasses.replace(tiny_cfg, generator=dataclasses.replace(tiny_cfg.generator, residual=False))
    write_weights_folder(tmp_path / "other", other, MECNet(other.mecnet).state_dict(),
                         EdgeLBAM(other.generator).state_dict())
    with pytest.raises(ValueError, match="--init weights"):
        Trainer(tiny(tmp_path / "run2", init=str(tmp_path / "other"), max_steps=1))


def test_train_takes_an_adversarial_weight(tmp_path):
    assert main(["train", "joint", "--data", str(PHOTOS), "--out", str(tmp_path / "run"), "--config", "tiny",
                 "--w-adv", "0.01", "--max-steps", "1", "--batch-size", "2", "--size", "128"]) == 0
    import math

    row = _rows(tmp_path / "run" / "train_log.csv")[-1]
    assert math.isfinite(float(row["critic"])) and math.isfinite(float(row["adv"]))  # the critic trained, logged
