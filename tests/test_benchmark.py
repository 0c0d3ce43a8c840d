"""lbam.benchmark: a --quick run writes every documented field (no timing assertions)."""
import json
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lbam import benchmark
from lbam.benchmark import FIELD_DOCS, gpu_section, parse_args, synthetic_image, synthetic_mask

ROOT = Path(__file__).resolve().parents[1]


def _lookup(obj, path):
    """All values at a dotted FIELD_DOCS path ('a.b[].c'); raises KeyError when one is missing."""
    values = [obj]
    for part in path.split("."):
        is_list = part.endswith("[]")
        key = part[:-2] if is_list else part
        nxt = []
        for v in values:
            if not isinstance(v, dict) or key not in v:
                raise KeyError(path)
            item = v[key]
            if is_list:
                assert isinstance(item, list), path
                nxt.extend(item)
            else:
                nxt.append(item)
        values = nxt
    return values


def _list_paths_empty(res, path):
    """True when a list on the way to ``path`` is empty (so its items' fields cannot be checked)."""
    parts = path.split(".")
    for i, part in enumerate(parts):
        if part.endswith("[]"):
            prefix = ".".join(parts[: i] + [part[:-2]])
            if any(len(v) == 0 for v in _lookup(res, prefix)):
                return True
    return False


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    # the timeout only guards against a hang: timing belongs to the benchmark, not to unit tests
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.loads((out / "results.json").read_text())


def test_quick_run_writes_json_and_markdown(quick):
    out, res = quick
    md = (out / "results.md").read_text()
    assert "| config | network | mode |" in md and "Telea" in md
    assert res["options"]["quick"] is True
    assert res["schema_version"] == benchmark.SCHEMA_VERSION


def test_every_documented_field_is_written(quick):
    _, res = quick
    for path in FIELD_DOCS:
        if _list_paths_empty(res, path):
            assert path.startswith("gpu."), f"{path}: list unexpectedly empty"
            continue
        _lookup(res, path)  # KeyError if missing


def test_every_written_field_is_documented(quick):
    _, res = quick

    def walk(obj, prefix):
        if isinstance(obj, dict):
            for k, v in obj.items():
                p = f"{prefix}.{k}" if prefix else k
                assert p in FIELD_DOCS, f"undocumented field {p}"
                if prefix != "options":
                    walk(v, p)
        elif isinstance(obj, list) and obj and isinstance(obj[0], dict):
            for item in obj:
                walk(item, prefix + "[]")

    walk(res, "")


def test_quick_run_has_all_sections(quick):
    _, res = quick
    networks = {(r["network"], r["mode"]) for r in res["crop_latency"]}
    assert networks == {(n, m) for n in ("mecnet", "generator", "both") for m in ("plain", "optimized")}
    assert {r["batch"] for r in res["throughput"]} == set(res["options"]["batch_sizes"])
    assert all(r["max_abs_diff"] < 1e-4 for r in res["fuse_ablation"])
    assert len(res["end_to_end"]) == len(res["options"]["sizes"]) * len(res["options"]["holes"])
    # every descendant process has been waited for: the largest peak any of them reached, measured by the kernel
    # independently of the benchmark's /proc reading, bounds the peak a worker reports
    children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    for r in res["end_to_end"]:
        if sys.platform.startswith("linux"):  # /proc/self/status is there: the peak must be measured
            assert r["rss_before_bytes"] > 100 * 2**20  # torch and the networks are loaded
            assert r["rss_before_bytes"] <= r["peak_rss_bytes"] <= children_peak
        assert r["telea_median_s"] > 0 and r["lbam_median_s"] > 0
    assert [t["name"] for t in res["summary"]["targets"]]
    prec = res["precision"]
    assert prec["device"] == "cpu" and [r["dtype"] for r in prec["records"]] == ["float16", "bfloat16"]
    for r in prec["records"]:  # half precision is close to fp32 but not identical
        assert r["psnr_hole_db"] is not None and 20 < r["psnr_hole_db"] < 200 and 0 < r["max_abs_diff"] < 0.5
    cpu_target = [t for t in res["summary"]["targets"] if "CPU autocast" in t["name"]][0]
    assert cpu_target["value"] == min(r["psnr_hole_db"] for r in prec["records"] if r["dtype"] == "float16")


def test_readme_documents_every_field():
    readme = (ROOT / "benchmarks" / "README.md").read_text()
    missing = [p for p in FIELD_DOCS if f"`{p}`" not in readme]
    assert not missing, f"benchmarks/README.md does not document: {missing}"


def test_gpu_section_code_path_on_cpu():
    """The GPU section only runs with CUDA; exercise its code on the CPU with autocast so that it cannot rot."""
    import torch

    opts = parse_args(["--quick"])
    opts.sizes = ((160, 128),)
    opts.holes = (0.1,)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        g = gpu_section(opts, log=lambda m: None, device="cpu")
    finally:
        torch.set_num_threads(n)
    assert g["available"] and g["records"] and g["psnr"] and g["end_to_end"]
    for path in FIELD_DOCS:
        if path.startswith("gpu."):
            _lookup({"gpu": g}, path)
    assert {r["dtype"] for r in g["records"]} == {"float32", "float16", "bfloat16"}


def test_synthetic_inputs_are_deterministic():
    a, b = synthetic_image(96, 128, seed=3), synthetic_image(96, 128, seed=3)
    assert a.shape == (96, 128, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert a.std() > 10  # not flat
    m = synthetic_mask(192, 256, 0.25, seed=1)
    assert m.shape == (192, 256) and m.dtype == bool
    assert np.array_equal(m, synthetic_mask(192, 256, 0.25, seed=1))
    assert 0.15 < m.mean() < 0.35


def test_parse_args():
    o = parse_args(["--batch-sizes", "4,8", "--sizes", "640x480", "--skip", "gpu,ablation"])
    assert o.batch_sizes == (1, 4, 8) and o.sizes == ((640, 480),)
    assert o.sections == ("crops", "e2e", "precision")
    with pytest.raises(SystemExit):
        parse_args(["--only", "nope"])
