"""A built wheel carries the manifest and the default weights: install it in a fresh venv and inpaint offline."""
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    dist = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{proc.stdout}\n{proc.stderr}")
    (whl,) = dist.glob("lbam-*.whl")
    return whl


def test_wheel_contains_manifest_weights_and_no_tests(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "lbam/weights_manifest.json" in names
    assert any(n.endswith("generator.safetensors") for n in names)
    assert any(n.endswith("mecnet.safetensors") for n in names)
    assert {"lbam/app/static/index.html", "lbam/app/static/app.js", "lbam/app/static/app.css"} <= set(names)
    assert not any(n.startswith("tests/") for n in names)


def test_wheel_in_a_fresh_venv_inpaints_offline(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    # The fresh venv gets the wheel itself; its third-party dependencies (torch, numpy, ...) are borrowed from
    # this environment's site-packages through a path file, so no multi-GB download is needed. Path files
    # inside that borrowed folder are not processed, so an editable lbam there stays invisible.
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "borrowed_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True,
                   timeout=300)
    script = (
        "import lbam, numpy as np\n"
        "from PIL import Image\n"
        "assert 'site-packages' in lbam.__file__ and str(%r) in lbam.__file__, lbam.__file__\n"
        "inp = lbam.Inpainter.from_pretrained(device='cpu')\n"
        "img = np.asarray(Image.open(%r).convert('RGB'))\n"
        "mask = np.asarray(Image.open(%r))\n"
        "out = inp.inpaint(img, mask)\n"
        "known = mask < 128\n"
        "assert out.shape == img.shape and np.array_equal(out[known], img[known])\n"
        "print('ok', inp.name)\n"
    ) % (str(venv), str(ROOT / "examples" / "ladybird.jpg"), str(ROOT / "examples" / "ladybird_mask.png"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.run([str(py), "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok")
