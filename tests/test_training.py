"""Training subpackage: masks, data, loss goes down, exact resume, evaluate, export round trip."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from lbam.training.config import make_config
from lbam.training.data import TrainImages, collate
from lbam.training.masks import PAPER_BUCKETS, FreeFormMasks, MaskFolder, hole_ratio

PHOTOS = Path(__file__).resolve().parent / "fixtures" / "photos"  # synthetic, see make_photos.py
TRAIN = VAL = PHOTOS


@pytest.fixture(scope="module")
def two_images(tmp_path_factory):
    d = tmp_path_factory.mktemp("val2")
    for p in sorted(VAL.iterdir())[:2]:
        shutil.copy(p, d / p.name)
    return d


def tiny_config(out, data, **kw):
    base = dict(model="tiny", data=str(data), out=str(out), batch_size=2, size=128, log_every=1,
                checkpoint_minutes=1e9, workers=0)
    base.update(kw)
    return make_config("fast", **base)


@pytest.mark.parametrize("bucket", PAPER_BUCKETS)
def test_free_form_masks_land_in_requested_bucket(bucket):
    gen = FreeFormMasks(seed=7)
    ratios = [hole_ratio(gen.sample(128, bucket)) for _ in range(12)]
    assert all(bucket[0] < r <= bucket[1] for r in ratios), ratios


def test_free_form_masks_are_seeded_and_varied():
    a = [FreeFormMasks(3).sample(64) for _ in range(2)]
    b = FreeFormMasks(3).sample(64)
    assert np.array_equal(a[0], b)
    ratios = [hole_ratio(m) for m in (FreeFormMasks(s).sample(128) for s in range(30))]
    assert max(ratios) > 0.3 and min(ratios) < 0.2 and max(ratios) <= 0.6


def test_mask_folder_reads_white_as_hole(tmp_path):
    import cv2

    m = np.zeros((40, 60), np.uint8)
    m[10:20, 10:30] = 255
    cv2.imwrite(str(tmp_path / "m.png"), m)
    sample = MaskFolder(tmp_path).sample(80)
    assert sample.shape == (80, 80)
    assert 0 < sample.mean() < 0.5


def test_train_images_are_deterministic_per_index():
    ds = TrainImages(TRAIN, size=64, short_side=96, seed=1)
    a, b, c = ds[5], ds[5], ds[6]
    assert set(a) == {"image", "hole", "gray", "edges", "edges_full"}
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["hole"], c["hole"])
    # no Canny edge is reported inside the hole of the known-region edges
    assert float((a["edges"] * a["hole"]).sum()) == 0


def test_refinement_samples_hold_the_truth_scaled_down_and_up():
    from lbam.tiling import resize

    ds = TrainImages(TRAIN, size=64, short_side=96, seed=1, prefill_factors=(2, 4))
    a = ds[5]
    assert set(a) == {"image", "hole", "gray", "edges", "edges_full", "prefill", "refine"}
    assert torch.equal(a["image"], TrainImages(TRAIN, size=64, short_side=96, seed=1)[5]["image"])  # same crops
    image, prefill = a["image"], a["prefill"]
    found = [f for f in (2, 4) if torch.allclose(prefill, resize(resize(image[None], (64 // f,) * 2), (64, 64))[0]
                                                 .clamp(0, 1))]
    assert len(found) == 1
    # same colours, less detail
    assert abs(float(prefill.mean() - image.mean())) < 0.01
    detail = lambda x: float((x[:, :, 1:] - x[:, :, :-1]).abs().mean())  # noqa: E731
    assert detail(prefill) < 0.8 * detail(image)
    factors = {f for i in range(40) for f in (2, 4)
               if torch.allclose(ds[i]["prefill"], resize(resize(ds[i]["image"][None], (64 // f,) * 2), (64, 64))[0]
                                 .clamp(0, 1))}
    assert factors == {2, 4}
    with pytest.raises(ValueError, match="prefill factors"):
        TrainImages(TRAIN, size=64, prefill_factors=(3,))


def _found_at_full_size(crop: torch.Tensor) -> bool:
    """Whether the (3, S, S) crop in [0, 1] is a pixel-exact piece (either way round) of a fixture photo at its
    own size."""
    import cv2

    from lbam.training.data import read_rgb

    patch = crop.numpy().transpose(1, 2, 0).astype(np.float32)
    for path in sorted(TRAIN.iterdir()):
        full = read_rgb(path).astype(np.float32) / 255
        for p in (patch, np.ascontiguousarray(patch[:, ::-1])):
            if cv2.minMaxLoc(cv2.matchTemplate(full, p, cv2.TM_SQDIFF_NORMED))[0] < 1e-6:
                return True
    return False


def test_a_share_of_samples_refine_at_the_photos_own_size():
    from lbam.training.data import coarse_copy

    ds = TrainImages(TRAIN, size=64, short_side=96, seed=2, prefill_factors=(2,), prefill_share=0.5,
                     prefill_short_side=1000)
    samples = [ds[i] for i in range(24)]
    flags = [float(s["refine"]) for s in samples]
    assert set(flags) == {0.0, 1.0} and all(s["refine"].shape == (1, 1, 1) for s in samples)
    for s, f in zip(samples[:8], flags):
        if f:  # the truth scaled down and up, cut from the photo at its own size (never enlarged: <= 1000)
            assert torch.allclose(s["prefill"], coarse_copy(s["image"], 2))
            assert _found_at_full_size(s["image"])
        else:  # a plain sample: short side 96, so not a piece of the full-size photo; its prefill is unused
            assert torch.equal(s["prefill"], s["image"])
            assert not _found_at_full_size(s["image"])
    # all samples refine by default, with the earlier crops
    old = TrainImages(TRAIN, size=64, short_side=96, seed=2, prefill_factors=(2,))
    assert float(old[3]["refine"]) == 1.0
    with pytest.raises(ValueError, match="prefill_share"):
        TrainImages(TRAIN, size=64, prefill_factors=(2,), prefill_share=0)
    with pytest.raises(ValueError, match="prefill_short_side"):
        TrainImages(TRAIN, size=64, prefill_factors=(2,), prefill_short_side=32)


def test_a_mixed_batch_gives_each_sample_the_output_of_its_pass():
    from lbam.models import EdgeLBAM, get_config
    from lbam.tiling import add_detail
    from lbam.training.steps import generator_output

    torch.manual_seed(0)
    gen = EdgeLBAM(get_config("tiny").generator).eval()
    batch = collate([TrainImages(TRAIN, size=128, seed=0, prefill_factors=(2,))[i] for i in range(2)])
    image, hole, edge, prefill = batch["image"], batch["hole"], batch["edges"], batch["prefill"]
    with torch.no_grad():
        plain = gen(image, hole, edge)
        refined = add_detail(prefill, gen(image, hole, edge, prefill=prefill))
        mixed = generator_output(gen, image, hole, edge, prefill, torch.tensor([1.0, 0.0]).view(2, 1, 1, 1))
        assert torch.allclose(mixed[0], refined[0], atol=1e-6)
        assert torch.allclose(mixed[1], plain[1], atol=1e-6)
        assert not torch.allclose(refined[1], plain[1], atol=1e-3)  # the two passes differ
        assert torch.equal(generator_output(gen, image, hole, edge, prefill), refined)
        assert torch.equal(generator_output(gen, image, hole, edge), plain)


def test_the_texture_term_can_be_kept_to_refinement_samples(tmp_path):
    from lbam.training.steps import train_step
    from lbam.training.trainer import Trainer

    batch = collate([TrainImages(TRAIN, size=128, seed=0, prefill_factors=(2,), prefill_share=0.5)[i]
                     for i in range(2)])
    logs = {}
    for on, flags in (("all", (0.0, 0.0)), ("refine", (0.0, 0.0)), ("refine", (1.0, 0.0))):
        torch.manual_seed(0)
        tr = Trainer(tiny_config(tmp_path / on, TRAIN, refine_factors=(2,), w_grad=1.0, w_grad_on=on))
        batch["refine"] = torch.tensor(flags).view(2, 1, 1, 1)
        logs[on, flags] = train_step(tr.cfg, tr.nets, batch, tr._autocast)["grad"]
    assert logs["refine", (0.0, 0.0)] == 0 < logs["all", (0.0, 0.0)]
    assert logs["refine", (1.0, 0.0)] > 0
    with pytest.raises(ValueError, match="w_grad_on"):
        tiny_config(tmp_path / "x", TRAIN, w_grad_on="coarse")
    with pytest.raises(ValueError, match="refine_factors"):  # nothing to keep it to
        tiny_config(tmp_path / "x", TRAIN, w_grad_on="refine")


def test_refinement_training_runs_and_exports_coarse_to_fine(tmp_path):
    from lbam import Inpainter
    from lbam.cli import main
    from lbam.training.export import export_run
    from lbam.training.steps import train_step
    from lbam.training.trainer import Trainer

    torch.manual_seed(0)
    tr = Trainer(tiny_config(tmp_path / "t", TRAIN, refine_factors=(2,)))
    batch = collate([TrainImages(TRAIN, size=128, seed=0, prefill_factors=(2,))[i] for i in range(2)])
    logs = train_step(tr.cfg, tr.nets, batch, tr._autocast)
    assert np.isfinite(logs["loss"])
    assert main(["train", "joint", "--data", str(TRAIN), "--out", str(tmp_path / "run"), "--config", "tiny",
                 "--refine-factors", "2", "4", "--short-side", "160", "--max-steps", "1", "--batch-size", "2",
                 "--size", "128", "--refine-share", "0.5", "--refine-short-side", "200"]) == 0
    export_run(str(tmp_path / "run"), str(tmp_path / "w"))
    inp = Inpainter.from_pretrained(str(tmp_path / "w"), device="cpu")
    assert inp.coarse_to_fine
    import json

    training = json.loads((tmp_path / "w" / "config.json").read_text())["training"]
    assert (training["refine_factors"], training["refine_share"], training["refine_short_side"]) == ([2, 4], 0.5, 200)
    # a generator without a prefill (the paper's) cannot be trained to refine
    with pytest.raises(ValueError, match="prefill"):
        Trainer(tiny_config(tmp_path / "p", TRAIN, model="tiny-paper", refine_factors=(2,), max_steps=1)).run()


def test_several_folders_are_sampled_equally_often(tmp_path):
    one, many = tmp_path / "one", tmp_path / "many"
    one.mkdir(), many.mkdir()
    photos = sorted(PHOTOS.iterdir())
    shutil.copy(photos[0], one / "a.png")
    for i in range(6):
        shutil.copy(photos[1], many / f"b{i}.png")
    ds = TrainImages([one, many], size=64, short_side=96, seed=3)
    assert len(ds.files) == 7
    picks = [ds.image_index(i) for i in range(400)]  # index into ds.files
    share_one = np.mean([p == 0 for p in picks])
    assert 0.4 < share_one < 0.6, share_one  # one image of seven, yet half of the samples
    assert TrainImages(one, size=64, short_side=96).files == [one / "a.png"]


def test_sharpness_grid_and_edge_options_train(tmp_path):
    from lbam.training.trainer import Trainer
    from lbam.training.steps import train_step

    torch.manual_seed(0)
    tr = Trainer(tiny_config(tmp_path, TRAIN, w_grad=0.1, w_grid=0.5, edge_pos_weight=4.0))
    ds = TrainImages(TRAIN, size=128, seed=0)
    batch = collate([ds[i] for i in range(2)])
    logs = train_step(tr.cfg, tr.nets, batch, tr._autocast, "nms", 0.5)
    assert {"grad", "grid", "edge_bce"} <= set(logs) and all(np.isfinite(v) for v in logs.values())
    plain = Trainer(tiny_config(tmp_path / "plain", TRAIN))
    assert not {"grad", "grid"} & set(train_step(plain.cfg, plain.nets, batch, plain._autocast))


def test_patch_critic_trains_with_feature_matching(tmp_path):
    from lbam.training.discriminators import PatchDiscriminator
    from lbam.training.trainer import Trainer
    from lbam.training.steps import train_step

    with pytest.raises(ValueError, match="critic"):
        tiny_config(tmp_path, TRAIN, critic="three_column")
    with pytest.raises(ValueError, match="w_fm"):
        tiny_config(tmp_path, TRAIN, w_fm=1.0)  # feature matching needs the patch critic's layers
    torch.manual_seed(0)
    tr = Trainer(tiny_config(tmp_path, TRAIN, critic="patch", critic_width=4, w_adv=0.01, w_fm=0.5,
                             disc_lr_ratio=1.0))
    assert isinstance(tr.nets.critic, PatchDiscriminator) and tr.nets.critic.blocks[0][0].in_channels == 4
    ds = TrainImages(TRAIN, size=128, seed=0)
    batch = collate([ds[i] for i in range(2)])
    before = [p.detach().clone() for p in tr.nets.critic.parameters()]
    logs = train_step(tr.cfg, tr.nets, batch, tr._autocast)
    assert {"critic", "adv", "fm"} <= set(logs) and all(np.isfinite(v) for v in logs.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.nets.critic.parameters()))  # the critic stepped
    # the critic's weights are frozen for the generator's terms and thawed for its own next update
    again = [p.detach().clone() for p in tr.nets.critic.parameters()]
    train_step(tr.cfg, tr.nets, batch, tr._autocast)
    assert any(not torch.equal(a, b) for a, b in zip(again, tr.nets.critic.parameters()))
    fm_only = Trainer(tiny_config(tmp_path / "fm", TRAIN, critic="patch", critic_width=4, w_fm=0.5))
    assert fm_only.nets.critic is not None and "fm" in train_step(fm_only.cfg, fm_only.nets, batch,
                                                                  fm_only._autocast)


def test_edge_stage_trains_mecnet_against_a_patch_discriminator(tmp_path):
    from lbam.training.config import EDGE_LOSSES
    from lbam.training.discriminators import PatchDiscriminator
    from lbam.training.steps import train_step
    from lbam.training.trainer import Trainer

    assert EDGE_LOSSES == ("bce", "gan")
    with pytest.raises(ValueError, match="edge_loss"):
        tiny_config(tmp_path, TRAIN, edge_loss="focal")
    with pytest.raises(ValueError, match="edge_disc_width"):
        tiny_config(tmp_path, TRAIN, edge_loss="gan", edge_disc_width=0)
    torch.manual_seed(0)
    tr = Trainer(tiny_config(tmp_path, TRAIN, stage="edge", edge_loss="gan", edge_disc_width=4))
    disc = tr.nets.edge_disc
    assert isinstance(disc, PatchDiscriminator) and tr.nets.critic is None
    assert disc.blocks[0][0].out_channels == 4 and disc.blocks[0][0].in_channels == 2  # (edge, gray) pairs
    ds = TrainImages(TRAIN, size=128, seed=0)
    batch = collate([ds[i] for i in range(2)])
    disc_before = [p.detach().clone() for p in disc.parameters()]
    mec_before = [p.detach().clone() for p in tr.nets.mecnet.parameters()]
    gen_before = [p.detach().clone() for p in tr.nets.generator.parameters()]
    logs = train_step(tr.cfg, tr.nets, batch, tr._autocast)
    assert {"edge_d", "edge_adv", "edge_fm"} <= set(logs) and "edge_bce" not in logs
    assert all(np.isfinite(v) for v in logs.values())
    assert any(not torch.equal(a, b) for a, b in zip(disc_before, disc.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(mec_before, tr.nets.mecnet.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(gen_before, tr.nets.generator.parameters()))  # edge stage only


def test_cpu_bf16_autocasts_the_step_and_keeps_float32_weights(tmp_path):
    from lbam.training.steps import train_step
    from lbam.training.trainer import Trainer

    with Trainer(tiny_config(tmp_path / "a", TRAIN))._autocast():
        assert not torch.is_autocast_enabled("cpu")  # float32 unless asked
    tr = Trainer(tiny_config(tmp_path / "b", TRAIN, cpu_bf16=True))
    with tr._autocast():
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    ds = TrainImages(TRAIN, size=128, seed=0)
    before = [p.detach().clone() for p in tr.nets.generator.parameters()]
    logs = train_step(tr.cfg, tr.nets, collate([ds[i] for i in range(2)]), tr._autocast)
    assert all(np.isfinite(v) for v in logs.values())
    assert all(p.dtype == torch.float32 for p in tr.nets.generator.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.nets.generator.parameters()))


def test_edge_gan_loss_takes_a_bce_anchor(tmp_path):
    from lbam.training.steps import train_step
    from lbam.training.trainer import Trainer

    with pytest.raises(ValueError, match="edge_bce_weight"):
        tiny_config(tmp_path, TRAIN, edge_loss="gan", edge_bce_weight=-1)
    with pytest.raises(ValueError, match="edge_bce_weight"):  # the fast recipe's loss is BCE already
        tiny_config(tmp_path, TRAIN, edge_loss="bce", edge_bce_weight=1)
    torch.manual_seed(0)
    tr = Trainer(tiny_config(tmp_path, TRAIN, stage="edge", edge_loss="gan", edge_disc_width=4, edge_bce_weight=2.5))
    ds = TrainImages(TRAIN, size=128, seed=0)
    logs = train_step(tr.cfg, tr.nets, collate([ds[i] for i in range(2)]), tr._autocast)
    assert logs["edge_bce"] > 0
    want = logs["edge_adv"] + tr.cfg.edge_fm_weight * logs["edge_fm"] + 2.5 * logs["edge_bce"]
    assert logs["loss"] == pytest.approx(want, rel=1e-4)


def test_few_steps_lower_the_loss(tmp_path):
    from lbam.training.trainer import Trainer
    from lbam.training.steps import train_step

    torch.manual_seed(0)
    tr = Trainer(tiny_config(tmp_path, TRAIN, lr=2e-3, edge_lr=2e-3))
    ds = TrainImages(TRAIN, size=128, seed=0)
    batch = collate([ds[i] for i in range(2)])
    losses = [train_step(tr.cfg, tr.nets, batch, tr._autocast)["loss"] for _ in range(12)]
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3]), losses


def test_pixel_loss_l2_trains_and_is_logged(tmp_path):
    from lbam.training.trainer import Trainer
    from lbam.training.steps import train_step

    with pytest.raises(ValueError, match="pixel_loss"):
        tiny_config(tmp_path, TRAIN, pixel_loss="l3")
    torch.manual_seed(0)
    tr = Trainer(tiny_config(tmp_path, TRAIN, stage="inpaint", pixel_loss="l2", lr=1e-2))
    ds = TrainImages(TRAIN, size=128, seed=0)
    batch = collate([ds[i] for i in range(2)])
    logs = [train_step(tr.cfg, tr.nets, batch, tr._autocast) for _ in range(10)]
    assert "l2" in logs[0] and "l1" not in logs[0]
    assert logs[-1]["l2"] < 0.7 * logs[0]["l2"], [r["l2"] for r in logs]


def test_resume_reproduces_the_next_step(tmp_path):
    from lbam.training.trainer import CHECKPOINT, Trainer

    a = Trainer(tiny_config(tmp_path / "a", TRAIN, max_steps=2))
    a.run()
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / CHECKPOINT, tmp_path / "b" / CHECKPOINT)
    a.cfg.max_steps = 3
    a.run()
    b = Trainer(tiny_config(tmp_path / "b", TRAIN, max_steps=3), resume=True)
    assert b.step == 2
    b.run()
    for name in ("mecnet", "generator", "ema_generator"):
        sa, sb = a._modules()[name].state_dict(), b._modules()[name].state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), name
    # and the step really changed the weights
    first = torch.load(tmp_path / "b" / CHECKPOINT, weights_only=True)
    assert first["step"] == 3


def test_an_edge_stage_run_goes_on_as_a_joint_run(tmp_path):
    from lbam.training.trainer import CHECKPOINT, Trainer

    edge = Trainer(tiny_config(tmp_path / "e", TRAIN, stage="edge", edge_loss="gan", edge_disc_width=4, max_steps=2))
    edge.run()
    (tmp_path / "j").mkdir()
    shutil.copy(tmp_path / "e" / CHECKPOINT, tmp_path / "j" / CHECKPOINT)
    joint = Trainer(tiny_config(tmp_path / "j", TRAIN, stage="joint", edge_loss="gan", edge_disc_width=4,
                                max_steps=3), resume=True)
    assert joint.step == 2
    for name in ("mecnet", "edge_disc"):  # MECNet and its discriminator carry over
        sa, sb = edge._modules()[name].state_dict(), joint._modules()[name].state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), name
    gen_before = [p.detach().clone() for p in joint.nets.generator.parameters()]
    joint.run()
    assert joint.step == 3
    assert any(not torch.equal(a, b) for a, b in zip(gen_before, joint.nets.generator.parameters()))


def test_frozen_edges_train_only_the_generator_on_mecnets_edges(tmp_path):
    from lbam.training.trainer import CHECKPOINT, Trainer

    for stage in ("edge", "inpaint"):
        with pytest.raises(ValueError, match="freeze_edges"):
            tiny_config(tmp_path, TRAIN, stage=stage, freeze_edges=True)
    edge = Trainer(tiny_config(tmp_path / "e", TRAIN, stage="edge", edge_loss="gan", edge_disc_width=4, max_steps=2))
    edge.run()
    (tmp_path / "j").mkdir()
    shutil.copy(tmp_path / "e" / CHECKPOINT, tmp_path / "j" / CHECKPOINT)
    joint = Trainer(tiny_config(tmp_path / "j", TRAIN, edge_loss="gan", edge_disc_width=4, max_steps=4,
                                freeze_edges=True), resume=True)
    gen_before = [p.detach().clone() for p in joint.nets.generator.parameters()]
    joint.run()
    assert joint.step == 4 and not joint.nets.mecnet.training
    # MECNet (weights and spectral-norm vectors) and its discriminator are as the edge stage left them
    for name in ("mecnet", "edge_disc"):
        sa, sb = edge._modules()[name].state_dict(), joint._modules()[name].state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), name
    assert any(not torch.equal(a, b) for a, b in zip(gen_before, joint.nets.generator.parameters()))
    header = (tmp_path / "j" / "train_log.csv").read_text().splitlines()[0].split(",")
    assert "l2" in header and not any(k.startswith("edge_") for k in header)
    from lbam.training.export import export_run

    export_run(str(tmp_path / "j"), str(tmp_path / "w"))  # exported weights say how their last leg trained
    assert json.loads((tmp_path / "w" / "config.json").read_text())["training"]["freeze_edges"] is True


def test_a_share_of_samples_give_the_generator_the_truths_edges(tmp_path):
    from lbam.training.config import TrainConfig
    from lbam.training.steps import train_step
    from lbam.training.trainer import Trainer

    plain = TrainImages(TRAIN, size=64, seed=3)
    mixed = TrainImages(TRAIN, size=64, seed=3, true_edge_share=0.5)
    flags = [float(mixed[i]["true_edges"]) for i in range(24)]
    assert set(flags) == {0.0, 1.0} and "true_edges" not in plain[0]
    for i in range(4):  # the flag is drawn last: the same crops and holes as without it
        assert all(torch.equal(plain[i][k], mixed[i][k]) for k in plain[i])
    with pytest.raises(ValueError, match="true_edge_share"):
        TrainImages(TRAIN, size=64, true_edge_share=1.5)
    for stage in ("edge", "inpaint"):
        with pytest.raises(ValueError, match="true_edge_share"):
            tiny_config(tmp_path, TRAIN, stage=stage, true_edge_share=0.5)
    with pytest.raises(ValueError, match="true_edge_share"):
        tiny_config(tmp_path, TRAIN, true_edge_share=-0.1)
    # the step hands the flagged sample the truth's Canny edges and the other MECNet's completion
    tr = Trainer(tiny_config(tmp_path / "r", TRAIN, freeze_edges=True, max_steps=1, true_edge_share=0.5))
    batch = collate([TrainImages(TRAIN, size=128, seed=3, true_edge_share=0.5)[i] for i in range(2)])
    batch["true_edges"] = torch.tensor([1.0, 0.0]).view(2, 1, 1, 1)
    seen = []
    forward = tr.nets.generator.forward
    tr.nets.generator.forward = lambda image, hole, edge, *a, **k: seen.append(edge) or forward(image, hole, edge,
                                                                                                 *a, **k)
    train_step(tr.cfg, tr.nets, batch, tr._autocast)
    edge = seen[0]
    assert torch.equal(edge[0], batch["edges_full"][0])
    assert not torch.equal(edge[1], batch["edges_full"][1])
    assert torch.equal(edge[1] * (1 - batch["hole"][1]), batch["edges"][1] * (1 - batch["hole"][1]))
    assert TrainConfig().true_edge_share == 0
    tr.run()
    from lbam.training.export import export_run

    export_run(str(tmp_path / "r"), str(tmp_path / "w"))
    assert json.loads((tmp_path / "w" / "config.json").read_text())["training"]["true_edge_share"] == 0.5


def test_cosine_decay_schedule_and_resume_takes_the_configured_rate(tmp_path):
    from lbam.training.trainer import Trainer

    cfg = tiny_config(tmp_path, TRAIN, lr=1e-3, edge_lr=2e-3, max_steps=10, decay_from=4, min_lr_ratio=0.1)
    assert [round(cfg.lr_factor(s), 6) for s in (0, 4, 7, 10, 12)] == [1.0, 1.0, 0.55, 0.1, 0.1]
    assert tiny_config(tmp_path, TRAIN).lr_factor(10**6) == 1.0  # no schedule: constant
    with pytest.raises(ValueError, match="decay_from"):
        tiny_config(tmp_path, TRAIN, max_steps=10, decay_from=10)
    tr = Trainer(tiny_config(tmp_path / "a", TRAIN, lr=1e-3, edge_lr=2e-3, max_steps=7, decay_from=4))
    tr.run()
    # the last step ran at step index 6: factor 0.1 + 0.9 * 0.5 * (1 + cos(pi * 2/3)) = 0.325
    assert tr.nets.opt_generator.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.325)
    assert tr.nets.opt_mecnet.param_groups[0]["lr"] == pytest.approx(2e-3 * 0.325)
    # resuming with another rate uses the new rate, not the one stored with the optimiser state
    re = Trainer(tiny_config(tmp_path / "a", TRAIN, lr=5e-4, edge_lr=5e-4, max_steps=8), resume=True)
    re.run()
    assert re.nets.opt_generator.param_groups[0]["lr"] == pytest.approx(5e-4)
    rows = (tmp_path / "a" / "train_log.csv").read_text().splitlines()
    assert rows[0].split(",")[:3] == ["step", "minutes", "lr"] and len(rows) == 9


def test_evaluate_runs_on_two_images(two_images):
    from lbam.models import EdgeLBAM, MECNet, get_config
    from lbam.training.evaluate import evaluate, format_table

    cfg = get_config("tiny")
    report = evaluate(MECNet(cfg.mecnet), EdgeLBAM(cfg.generator), two_images, cfg, per_image=1)
    assert set(report) == {"ours", "telea"}
    assert set(report["ours"]) == {"10-20", "20-30", "30-40", "40-50", "all"}
    assert report["telea"]["all"]["n"] == 8
    t = report["telea"]
    assert t["10-20"]["psnr"] > t["40-50"]["psnr"]  # bigger holes are harder
    assert "gain dB" in format_table(report)
    o = report["ours"]["all"]
    assert 0 <= o["hatch"] <= 1 and 0 <= o["hatch_true"] <= 1 and "hatch" not in t["all"]
    assert 0 <= o["stray"] <= 1 and "stray" not in t["all"]
    assert o["fringe"] > 0 and t["all"]["fringe"] > 0  # every method's fill
    mecnet, generator = MECNet(cfg.mecnet), EdgeLBAM(cfg.generator)
    plain, textured = (evaluate(mecnet, generator, two_images, cfg, per_image=1, with_telea=False, detail=d)["ours"]
                       for d in ("none", "context"))
    assert textured["all"]["sharpness"] > plain["all"]["sharpness"]  # the photo's own texture was added
    with pytest.raises(ValueError, match="detail"):
        evaluate(mecnet, generator, two_images, cfg, per_image=1, detail="sharp")
    # the generator can read the truth's edges instead (the edge scores are then left out)
    seen = []  # the edge maps the generator reads, as in the true_edge_share test
    forward = generator.forward
    generator.forward = lambda image, hole, edge, *a, **k: seen.append((edge, hole)) or forward(image, hole, edge,
                                                                                                 *a, **k)
    truth = evaluate(mecnet, generator, two_images, cfg, per_image=1, with_telea=False, gt_edges=True)
    truth = truth["ours"]["all"]
    assert "edge_f1" not in truth and "haze" not in truth and "edge_f1" in plain["all"]
    assert truth["n"] == plain["all"]["n"]
    edge, hole = seen[0]  # binary Canny lines inside the hole too, not MECNet's probabilities
    assert set(edge.unique().tolist()) == {0.0, 1.0} and float((edge * hole).sum()) > 0


def test_export_round_trips_bit_exactly(tmp_path):
    from lbam.api import Inpainter
    from lbam.training.export import export_run
    from lbam.training.trainer import CHECKPOINT, Trainer

    Trainer(tiny_config(tmp_path / "run", TRAIN, max_steps=1)).run()
    hashes = export_run(tmp_path / "run", tmp_path / "w")
    assert set(hashes) == {"config.json", "mecnet.safetensors", "generator.safetensors"}
    import json

    recorded = json.loads((tmp_path / "w" / "config.json").read_text())["training"]
    assert recorded["steps"] == 1 and recorded["pixel_loss"] == "l2" and recorded["scale"] == [1.0, 1.5]
    inp = Inpainter.from_pretrained(str(tmp_path / "w"), device="cpu")
    state = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)
    for key, model in (("ema_mecnet", inp.mecnet), ("ema_generator", inp.generator)):
        sd = model.state_dict()
        assert set(sd) == set(state[key])
        assert all(torch.equal(sd[k], state[key][k]) for k in sd), key


def test_init_from_a_named_weight_starts_from_those_weights(tmp_path):
    from lbam.api import Inpainter
    from lbam.hub import load_manifest
    from lbam.training.trainer import Trainer

    name = load_manifest()["default"]
    tr = Trainer(make_config("fast", model="compact", data=str(TRAIN), out=str(tmp_path), init=name))
    ref = Inpainter.from_pretrained(name, device="cpu", fuse=False).generator.state_dict()
    got = tr._modules()["generator"].state_dict()
    assert all(torch.equal(got[k], ref[k]) for k in ref)


def test_validation_logs_buckets_and_writes_a_sample_grid(tmp_path, two_images):
    import csv

    from lbam.training.trainer import Trainer

    Trainer(tiny_config(tmp_path, TRAIN, val=str(two_images), max_steps=1, val_every=1, val_per_image=1)).run()
    rows = list(csv.DictReader((tmp_path / "val_log.csv").open()))
    assert rows and {"ours_10-20_psnr", "telea_40-50_ssim"} <= set(rows[0])
    assert (tmp_path / "samples" / "step_0000001.png").stat().st_size > 0


def test_sample_grid_rows_cycle_the_buckets_and_columns_hold_telea_and_truth(tmp_path, two_images):
    import cv2

    from lbam.models import EdgeLBAM, MECNet, get_config
    from lbam.training.evaluate import GRID_COLUMNS, save_samples, telea
    from lbam.training.data import ValImages

    cfg = get_config("tiny")
    torch.manual_seed(0)
    path = save_samples(MECNet(cfg.mecnet), EdgeLBAM(cfg.generator), two_images, cfg, "cpu", tmp_path / "g.png", n=2)
    grid = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    s = cfg.train_size
    assert grid.shape == (2 * s, len(GRID_COLUMNS) * s, 3)
    ds = ValImages(two_images, s, per_image=1)
    for row, index in enumerate((0, len(ds.crops) + 1)):  # crop 0 in bucket 0, crop 1 in bucket 1
        sample = ds[index]
        truth = (sample["image"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        expected_telea = (telea(sample["image"][None], sample["hole"][None])[0].permute(1, 2, 0).numpy() * 255)
        tiles = [grid[row * s:(row + 1) * s, c * s:(c + 1) * s] for c in range(len(GRID_COLUMNS))]
        assert np.array_equal(tiles[4], truth)
        assert np.array_equal(tiles[1], expected_telea.round().astype(np.uint8))
        hole = sample["hole"][0].numpy() > 0.5
        assert (tiles[0][hole] == 255).all() and np.array_equal(tiles[2][~hole], truth[~hole])
    # compared networks get a column each between Telea and ours; the same networks give the same tiles
    mec, gen = MECNet(cfg.mecnet), EdgeLBAM(cfg.generator)
    path = save_samples(mec, gen, two_images, cfg, "cpu", tmp_path / "c.png", n=2, compare=[(mec, gen, cfg)])
    grid = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert grid.shape == (2 * s, (len(GRID_COLUMNS) + 1) * s, 3)
    assert np.array_equal(grid[:, 2 * s:3 * s], grid[:, 3 * s:4 * s])
    assert not np.array_equal(grid[:, 1 * s:2 * s], grid[:, 2 * s:3 * s])
