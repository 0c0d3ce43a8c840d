"""Coarse-to-fine inpainting: refinement levels, overlapping tiles and their blend (lbam.tiling.tiles), the
generator's prefill argument, strategy "pyramid" and its choice by "auto"."""
import numpy as np
import pytest
import torch

from lbam import InputError, Inpainter, tiling
from lbam.models import EdgeLBAM, get_config
from lbam.models.edge_lbam import pyramid_fill
from lbam.models.fuse import fuse_for_inference
from lbam.tiling.tiles import MIN_WEIGHT


def test_level_sizes_double_up_to_native():
    assert tiling.level_sizes((1000, 2000), 0.25) == [(500, 1000), (1000, 2000)]
    assert tiling.level_sizes((1000, 1600), 0.32) == [(640, 1024), (1000, 1600)]
    assert tiling.level_sizes((900, 1600), 0.6) == [(900, 1600)]
    assert tiling.level_sizes((900, 1600), 1.0) == []


def test_plan_tiles_cover_every_hole_pixel_with_overlap():
    rng = np.random.default_rng(0)
    hole = np.zeros((700, 1000), bool)
    for _ in range(6):
        y, x = rng.integers(0, 650), rng.integers(0, 950)
        hole[y:y + 40, x:x + 60] = True
    tiles = tiling.plan_tiles(hole, 256, 32)
    covered = np.zeros_like(hole)
    for t in tiles:
        assert t.size == (256, 256) and t.box_size == (256, 256)
        y0, x0, y1, x1 = t.clip(*hole.shape)
        assert (y0, x0, y1, x1) == t.box  # the image is larger than a tile: tiles stay inside
        assert hole[y0:y1, x0:x1].any()  # no tile without a hole pixel
        covered[y0:y1, x0:x1] = True
    assert covered[hole].all()
    starts = sorted({t.box[1] for t in tiles})
    assert all(b - a <= 256 - 32 for a, b in zip(starts, starts[1:]))
    assert tiling.plan_tiles(np.zeros((300, 300), bool), 256, 32) == []


def test_plan_tiles_small_axis_gets_one_centred_tile():
    hole = np.zeros((100, 600), bool)
    hole[40:60, 10:20] = True
    tiles = tiling.plan_tiles(hole, 256, 32)
    assert len(tiles) == 1 and tiles[0].box[0] == (100 - 256) // 2 and tiles[0].box[1] == 0
    with pytest.raises(ValueError):
        tiling.plan_tiles(hole, 256, 256)


def test_tile_weight_ramps_over_the_overlap():
    w = tiling.tile_weight(64, 16)
    assert w.shape == (64, 64) and torch.allclose(w, w.T) and torch.allclose(w, w.flip(0))
    assert float(w.min()) >= MIN_WEIGHT and float(w.max()) == 1.0
    assert float(w[32, 16]) == 1.0 and float(w[32, 0]) < 0.05
    assert bool((w[32, 1:17] >= w[32, :16]).all())  # rising towards the inside
    assert bool((tiling.tile_weight(8, 0) == 1).all())


def test_blend_is_seamless_and_keeps_known_pixels():
    canvas = torch.rand(3, 64, 200)
    hole = np.zeros((64, 200), bool)
    hole[8:56, 20:180] = True
    tiles = [tiling.Crop((0, 0, 64, 64), 64), tiling.Crop((0, 48, 64, 112), 64),
             tiling.Crop((0, 96, 64, 160), 64), tiling.Crop((0, 136, 64, 200), 64)]
    values = [0.0, 1.0, 0.0, 1.0]
    results = torch.stack([torch.full((3, 64, 64), v) for v in values])
    out = tiling.blend(canvas, results, tiles, hole, overlap=16)
    assert torch.equal(out[:, ~torch.from_numpy(hole)], canvas[:, ~torch.from_numpy(hole)])
    row = out[0, 32, 20:180]
    assert float(row.min()) >= 0 and float(row.max()) <= 1
    # the answers jump by 1 from one tile to the next; blended, no step between neighbouring pixels is large
    assert float(row.diff().abs().max()) < 0.25
    assert float(out[0, 32, 30]) == pytest.approx(0.0, abs=1e-3)  # a single tile's own answer where it is alone
    assert float(out[0, 32, 80]) == pytest.approx(1.0, abs=1e-3)
    same = tiling.blend(canvas, results, tiles, hole, overlap=16, inplace=True)
    assert same.data_ptr() == canvas.data_ptr()


def test_generator_prefill_replaces_the_pyramid_fill():
    torch.manual_seed(0)
    cfg = get_config("tiny")
    gen = EdgeLBAM(cfg.generator).eval()
    image, edge = torch.rand(1, 3, 128, 128), torch.zeros(1, 1, 128, 128)
    hole = torch.zeros(1, 1, 128, 128)
    hole[..., 32:96, 32:96] = 1
    with torch.no_grad():
        plain = gen(image, hole, edge)
        same = gen(image, hole, edge, prefill=pyramid_fill(image, 1 - hole))
        other = gen(image, hole, edge, prefill=torch.full_like(image, 0.9))
        fused = fuse_for_inference(gen)(image, hole, edge, prefill=torch.full_like(image, 0.9))
    assert torch.allclose(plain, same, atol=1e-6)
    assert float((other - plain)[..., 40:88, 40:88].abs().mean()) > 0.1
    assert torch.allclose(fused, other, atol=1e-4)
    paper = EdgeLBAM(get_config("tiny-paper").generator).eval()
    with pytest.raises(ValueError, match="prefill"):
        paper(image, hole, edge, prefill=image)


def _large_case():
    rng = np.random.default_rng(1)
    img = (rng.random((600, 900, 3)) * 255).astype(np.uint8)
    hole = np.zeros((600, 900), bool)
    hole[150:400, 300:620] = True
    return img, hole


def test_auto_picks_pyramid_for_large_images_when_the_generator_takes_a_prefill():
    img, hole = _large_case()
    assert tiling.choose_strategy(hole, 256, refine=True) == "pyramid"
    assert tiling.choose_strategy(hole, 256) == "resize"  # without refinement: the single pass as before
    assert tiling.choose_strategy(hole[:400, :500], 256, refine=True) == "full"
    small = np.zeros((2000, 2000), bool)
    small[1000:1010, 1000:1010] = True  # a 256 crop at native resolution: nothing to refine
    assert tiling.choose_strategy(small, 256, refine=True) == "crop"
    assert tiling.plan_crops(hole, 256, strategy="pyramid") == tiling.plan_crops(hole, 256, strategy="resize")


def test_add_detail_keeps_the_coarse_content_and_the_fine_detail():
    torch.manual_seed(0)
    prefill = 0.3 + 0.4 * torch.rand(2, 3, 1, 1).expand(2, 3, 64, 64)
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    fine = 0.05 * ((yy + xx) % 2 * 2 - 1).float()  # a period-2 pattern: above the low-pass cut
    drift = 0.2  # a colour shift of the whole tile: below it
    out = tiling.add_detail(prefill, prefill + drift + fine)
    assert torch.allclose(out[..., 8:-8, 8:-8], (prefill + fine)[..., 8:-8, 8:-8], atol=1e-3)
    assert torch.allclose(tiling.add_detail(prefill, torch.full_like(prefill, 0.9)), prefill, atol=1e-6)


def test_inpainter_pyramid_refines_and_keeps_known_pixels():
    img, hole = _large_case()
    inp = Inpainter.from_config("tiny", device="cpu")
    assert inp.refines and not inp.coarse_to_fine
    assert np.array_equal(inp.inpaint(img, hole), inp.inpaint(img, hole, strategy="resize"))  # auto: one pass
    inp.coarse_to_fine = True
    torch.manual_seed(0)
    out, edges = inp.inpaint(img, hole, return_edges=True)  # auto -> pyramid
    assert np.array_equal(out[~hole], img[~hole]) and edges.shape == hole.shape
    assert np.array_equal(out, inp.inpaint(img, hole, strategy="pyramid"))
    single = inp.inpaint(img, hole, strategy="resize")
    # the refinement passes wrote the hole (a random tiny generator stays close to its prefill: small changes)
    assert (out[hole] != single[hole]).any()
    paper = Inpainter.from_config("tiny-paper", device="cpu")
    with pytest.raises(InputError, match="pyramid"):
        paper.inpaint(img, hole, strategy="pyramid")
    assert np.array_equal(paper.inpaint(img, hole), paper.inpaint(img, hole, strategy="resize"))


def test_prefill_edges_run_mecnet_in_the_coarse_pass_only():
    img, hole = _large_case()
    inp = Inpainter.from_config("tiny", device="cpu")
    calls = []
    run = inp._mecnet_run
    inp._mecnet_run = lambda gray, *a: calls.append(gray.shape[0]) or run(gray, *a)
    mecnet_edges = inp.inpaint(img, hole, strategy="pyramid")
    coarse = len(tiling.plan_crops(hole, 256, strategy="pyramid"))
    assert sum(calls) > coarse  # the refinement tiles ran MECNet too
    calls.clear()
    inp.refine_edges = "prefill"
    out = inp.inpaint(img, hole, strategy="pyramid")
    assert sum(calls) == coarse
    assert np.array_equal(out[~hole], img[~hole]) and not np.array_equal(out, mecnet_edges)
    with pytest.raises(ValueError, match="refine_edges"):  # refused when assigned, not later in a pass
        inp.refine_edges = "canny"
    assert inp.refine_edges == "prefill"


def test_weights_that_say_coarse_to_fine_turn_it_on(tmp_path):
    inp = Inpainter.from_config("tiny", device="cpu")
    inp.save_pretrained(tmp_path / "plain")
    inp.save_pretrained(tmp_path / "refine", extra={"coarse_to_fine": True})
    assert not Inpainter.from_pretrained(str(tmp_path / "plain"), device="cpu").coarse_to_fine
    assert Inpainter.from_pretrained(str(tmp_path / "refine"), device="cpu").coarse_to_fine
    paper = Inpainter.from_config("tiny-paper", device="cpu")
    paper.save_pretrained(tmp_path / "paper", extra={"coarse_to_fine": True})
    assert not Inpainter.from_pretrained(str(tmp_path / "paper"), device="cpu").coarse_to_fine  # cannot refine


def test_small_images_keep_the_full_strategy():
    img, hole = _large_case()
    img, hole = img[:400, :500].copy(), hole[:400, :500].copy()
    inp = Inpainter.from_config("tiny", device="cpu")
    inp.coarse_to_fine = True
    assert np.array_equal(inp.inpaint(img, hole), inp.inpaint(img, hole, strategy="full"))


def test_refinement_memory_is_estimated_before_it_runs():
    from lbam.memory import estimate_bytes, refine_pass_bytes

    img, hole = _large_case()
    hole[:] = False
    hole[200:350, 300:450] = True  # one 300-pixel crop at scale 0.85, then the native pass on 256 tiles
    inp = Inpainter.from_config("tiny", device="cpu")
    coarse = tiling.plan_crops(hole, 256, strategy="pyramid")
    assert [c.size for c in coarse] == [(256, 256)] and coarse[0].scale[0] < 1
    tiles = tiling.plan_tiles(hole, 256, 32)  # the native pass
    assert refine_pass_bytes(len(tiles), 256, hole.shape) >= 16 * len(tiles) * 256 * 256 + 28 * hole.size
    inp.max_memory = estimate_bytes(inp.config, (256, 256), 1, hole.shape) + 1
    assert inp.inpaint(img, hole, strategy="crop").shape == img.shape  # the one pass fits
    with pytest.raises(InputError, match="'pyramid'.*GiB"):
        inp.inpaint(img, hole, strategy="pyramid")
    inp.max_memory = None
    assert inp.inpaint(img, hole, strategy="pyramid").shape == img.shape
