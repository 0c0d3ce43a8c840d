"""Where weights come from (lbam.hub): manifest names, local folders and the real Hugging Face download path.

Downloads go through ``huggingface_hub.hf_hub_download`` for real, against a stand-in Hub served on 127.0.0.1
(tests/hub_server.py): HEAD/GET on ``/resolve/``, ``X-Repo-Commit``, ETags, LFS redirects to a "CDN" on another
origin, the Hub's 404 error codes. huggingface_hub reads HF_ENDPOINT, HF_HUB_OFFLINE and the cache location into
``huggingface_hub.constants`` at import, so the tests set the environment variables AND patch those constants.
Every test gets its own empty cache; nothing touches the network or the user's cache.
"""
from __future__ import annotations

import shutil
import sys
import types
from pathlib import Path

import pytest
import torch

pytest.importorskip("huggingface_hub")
from huggingface_hub import constants as hf_constants  # noqa: E402

from lbam import hub  # noqa: E402
from lbam.api import Inpainter  # noqa: E402
from lbam.errors import WeightsError  # noqa: E402
from lbam.models import EdgeLBAM, MECNet, get_config  # noqa: E402
from lbam.weights_io import (CONFIG_FILE, GENERATOR_FILE, MECNET_FILE, read_weights_folder,  # noqa: E402
                             sha256_file, write_weights_folder)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hub_server import FakeHub  # noqa: E402

REPO = "lbam-test/tiny"
FILES = (CONFIG_FILE, MECNET_FILE, GENERATOR_FILE)


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Two different tiny weights folders: "main" and "v1" (and "bundled" for the manifest default)."""
    cfg = get_config("tiny")
    out = {}
    for seed, tag in enumerate(("main", "v1", "bundled")):
        torch.manual_seed(seed)
        folder = tmp_path_factory.mktemp(f"weights_{tag}")
        write_weights_folder(folder, cfg, MECNet(cfg.mecnet).state_dict(), EdgeLBAM(cfg.generator).state_dict(),
                             extra={"source": f"test-{tag}"})
        out[tag] = folder
    a, b = read_weights_folder(out["main"])[1], read_weights_folder(out["v1"])[1]
    assert any(not torch.equal(a[k], b[k]) for k in a), "the two revisions must hold different weights"
    return out


def _files(folder: Path, names=FILES) -> dict:
    return {name: (folder / name).read_bytes() for name in names}


def _entry_files(folder: Path) -> list:
    return [{"path": f"weights/x/{name}", "sha256": sha256_file(folder / name)} for name in FILES]


@pytest.fixture
def manifest(weights):
    """What lbam.hub.load_manifest returns in these tests (patched; the real one is lru_cached and shipped)."""
    return {
        "default": "tiny-bundled",
        "weights": {
            "tiny-bundled": {"bundled": True, "folder": "weights/tiny", "files": _entry_files(weights["bundled"])},
            "tiny-hub": {"repo_id": REPO, "revision": "v1", "files": _entry_files(weights["v1"])},
        },
    }


@pytest.fixture(autouse=True)
def hf_env(tmp_path, monkeypatch, manifest):
    """An empty default HF cache under tmp_path, online, the test manifest; no real endpoint reachable."""
    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    # huggingface_hub fetches and caches an "agent harnesses" registry (user-agent telemetry) under HF_HOME,
    # a path it also read at import: keep that file out of the user's home too.
    monkeypatch.setattr(hf_constants, "AGENT_HARNESSES_PATH", str(home / ".agent_harnesses.json"), raising=False)
    # Anything that escapes the stand-in Hub fails fast instead of reaching out.
    _point_at(monkeypatch, "http://127.0.0.1:9")
    monkeypatch.setattr(hub, "load_manifest", lambda: manifest)
    return home / "hub"


def _point_at(monkeypatch, endpoint: str) -> None:
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setattr(hf_constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(hf_constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        endpoint + "/{repo_id}/resolve/{revision}/{filename}")


def _go_offline(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # what lbam.hub reads
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)  # what huggingface_hub read at import


@pytest.fixture
def fake_hub(weights, monkeypatch):
    server = FakeHub()
    server.main_commit = server.add_commit(REPO, _files(weights["main"]), refs=("main",))
    server.v1_commit = server.add_commit(REPO, _files(weights["v1"]), refs=("v1",))
    server.add_commit("lbam-test/incomplete", _files(weights["main"], (CONFIG_FILE, MECNET_FILE)))
    server.start()
    _point_at(monkeypatch, server.endpoint)
    yield server
    if server.running:
        server.stop()


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def assert_weights(inp: Inpainter, folder: Path) -> None:
    """Every tensor of the loaded networks equals the one in ``folder``."""
    _, mec, gen, _ = read_weights_folder(folder)
    for net, state in ((inp.mecnet, mec), (inp.generator, gen)):
        loaded = net.state_dict()
        assert set(loaded) == set(state)
        for key, value in state.items():
            assert torch.equal(loaded[key].cpu(), value.to(loaded[key].dtype)), key


def _repo_requests(server: FakeHub) -> list:
    """Requests for repo files (leaves out huggingface_hub's side calls such as /api/agent-harnesses)."""
    return [r for r in server.requests if "/resolve/" in r[2] or r[2].startswith("/blobs/")]


def _gets(server: FakeHub) -> list:
    return [r for r in _repo_requests(server) if r[1] == "GET"]


# ------------------------------------------------------------------------------------------ Hub downloads
def test_download_from_hub_and_load(fake_hub, weights, cache):
    inp = Inpainter.from_pretrained(REPO, device="cpu", cache_dir=str(cache))
    assert_weights(inp, weights["main"])
    assert inp.name == REPO

    # huggingface_hub's cache layout: refs/main -> commit, snapshots/<commit>/<file> -> blobs/<etag>
    repo_dir = cache / "models--lbam-test--tiny"
    assert (repo_dir / "refs" / "main").read_text() == fake_hub.main_commit
    snapshot = repo_dir / "snapshots" / fake_hub.main_commit
    assert sorted(p.name for p in snapshot.iterdir()) == sorted(FILES)
    assert hub.resolve(REPO, cache_dir=str(cache)) == snapshot
    assert (snapshot / MECNET_FILE).resolve().parent == repo_dir / "blobs"

    # metadata from the Hub for each file; the LFS files' bytes from the CDN after the redirect
    heads = {path.rsplit("/", 1)[-1] for role, method, path in _repo_requests(fake_hub) if method == "HEAD"}
    assert heads == set(FILES)
    cdn_gets = [r for r in _gets(fake_hub) if r[0] == "cdn"]
    assert len(cdn_gets) == 2 and len(_gets(fake_hub)) == 3

    # a second load only re-checks metadata: nothing is downloaded again
    n_gets = len(_gets(fake_hub))
    assert_weights(Inpainter.from_pretrained(REPO, device="cpu", cache_dir=str(cache)), weights["main"])
    assert len(_gets(fake_hub)) == n_gets


def test_revision_selects_other_weights(fake_hub, weights, cache):
    inp = Inpainter.from_pretrained(REPO, device="cpu", revision="v1", cache_dir=str(cache))
    assert_weights(inp, weights["v1"])
    repo_dir = cache / "models--lbam-test--tiny"
    assert (repo_dir / "refs" / "v1").read_text() == fake_hub.v1_commit
    # a full commit hash works as a revision too, and main is still main
    inp = Inpainter.from_pretrained(REPO, device="cpu", revision=fake_hub.v1_commit, cache_dir=str(cache))
    assert_weights(inp, weights["v1"])
    assert_weights(Inpainter.from_pretrained(REPO, device="cpu", cache_dir=str(cache)), weights["main"])


def test_default_cache_is_the_shared_hf_cache(fake_hub, weights, hf_env):
    assert_weights(Inpainter.from_pretrained(REPO, device="cpu"), weights["main"])
    assert (hf_env / "models--lbam-test--tiny" / "refs" / "main").read_text() == fake_hub.main_commit


def test_offline_loads_from_cache_with_server_stopped(fake_hub, weights, cache, monkeypatch):
    Inpainter.from_pretrained(REPO, device="cpu", cache_dir=str(cache))
    Inpainter.from_pretrained(REPO, device="cpu", revision="v1", cache_dir=str(cache))
    fake_hub.stop()
    n_requests = len(fake_hub.requests)  # the server is down: nothing more can arrive

    # server gone but still "online": huggingface_hub falls back to the cache after the connection error
    assert_weights(Inpainter.from_pretrained(REPO, device="cpu", cache_dir=str(cache)), weights["main"])

    _go_offline(monkeypatch)
    assert_weights(Inpainter.from_pretrained(REPO, device="cpu", cache_dir=str(cache)), weights["main"])
    assert_weights(Inpainter.from_pretrained(REPO, device="cpu", revision="v1", cache_dir=str(cache)),
                   weights["v1"])
    assert len(fake_hub.requests) == n_requests


def test_offline_with_empty_cache_raises(fake_hub, cache, monkeypatch):
    _go_offline(monkeypatch)
    with pytest.raises(WeightsError) as info:
        Inpainter.from_pretrained(REPO, device="cpu", cache_dir=str(cache))
    message = str(info.value)
    assert "HF_HUB_OFFLINE" in message and "not in the Hugging Face cache" in message and REPO in message
    assert fake_hub.requests == []  # offline means no request at all, not even side calls


def test_unreachable_hub_with_empty_cache_raises(fake_hub, cache, monkeypatch):
    fake_hub.stop()
    # With nothing cached huggingface_hub retries the connection with backoff (1+2+4+8+8 s): skip the waits,
    # only in its HTTP module (a stand-in for that module's `time`, whose only use is time.sleep).
    import huggingface_hub.utils._http as hf_http
    monkeypatch.setattr(hf_http, "time", types.SimpleNamespace(sleep=lambda seconds: None))
    with pytest.raises(WeightsError, match="cannot download"):
        Inpainter.from_pretrained(REPO, device="cpu", cache_dir=str(cache))


def test_unknown_repo_revision_or_file_raises(fake_hub, cache):
    with pytest.raises(WeightsError, match="lbam-test/no-such-repo"):
        Inpainter.from_pretrained("lbam-test/no-such-repo", device="cpu", cache_dir=str(cache))
    with pytest.raises(WeightsError, match="no-such-branch"):
        Inpainter.from_pretrained(REPO, device="cpu", revision="no-such-branch", cache_dir=str(cache))
    with pytest.raises(WeightsError, match=GENERATOR_FILE):
        Inpainter.from_pretrained("lbam-test/incomplete", device="cpu", cache_dir=str(cache))
    # the server really answered with the Hub's error codes (not a connection failure)
    assert any("no-such-repo" in path for _, _, path in fake_hub.requests)


# ------------------------------------------------------------------------------------------ manifest names
def test_manifest_hub_entry_is_downloaded_and_verified(fake_hub, weights, cache):
    inp = Inpainter.from_pretrained("tiny-hub", device="cpu", cache_dir=str(cache))
    assert_weights(inp, weights["v1"])  # the entry pins revision v1
    assert inp.name == "tiny-hub"


def test_manifest_hub_entry_with_wrong_sha256_raises(fake_hub, weights, cache, manifest):
    entry = manifest["weights"]["tiny-hub"]
    entry["files"][1] = {"path": MECNET_FILE, "sha256": "0" * 64}
    with pytest.raises(WeightsError, match="sha256"):
        Inpainter.from_pretrained("tiny-hub", device="cpu", cache_dir=str(cache))
    # the right file of the wrong revision fails the check too
    entry["files"] = _entry_files(weights["v1"])
    with pytest.raises(WeightsError, match="sha256"):
        hub.resolve("tiny-hub", revision="main", cache_dir=str(cache))


def test_bundled_default(weights, tmp_path, monkeypatch):
    root = tmp_path / "pkg"
    shutil.copytree(weights["bundled"], root / "weights" / "tiny")
    monkeypatch.setattr(hub, "package_root", lambda: root)
    inp = Inpainter.from_pretrained(device="cpu")
    assert_weights(inp, weights["bundled"])
    assert inp.name == "tiny-bundled"
    (root / "weights" / "tiny" / GENERATOR_FILE).write_bytes(b"corrupted")
    with pytest.raises(WeightsError, match="sha256"):
        hub.resolve(None)


def test_from_pretrained_hashes_each_weight_file_once(weights, tmp_path, monkeypatch, manifest):
    import lbam.weights_io as wio

    root = tmp_path / "pkg"
    shutil.copytree(weights["bundled"], root / "weights" / "tiny")
    monkeypatch.setattr(hub, "package_root", lambda: root)
    hashed = []

    def counting(path, _real=sha256_file):
        hashed.append(Path(path).name)
        return _real(path)

    monkeypatch.setattr(hub, "sha256_file", counting)
    monkeypatch.setattr(wio, "sha256_file", counting)
    Inpainter.from_pretrained(device="cpu")  # manifest name: checked against the manifest only
    assert sorted(hashed) == sorted(FILES)
    assert hub.locate(None) == (root / "weights" / "tiny", True)
    hashed.clear()
    Inpainter.from_pretrained(str(weights["v1"]), device="cpu")  # a folder: checked against its config.json
    assert sorted(hashed) == sorted((MECNET_FILE, GENERATOR_FILE))
    assert hub.locate(str(weights["v1"])) == (weights["v1"], False)
    # an entry that lists only some files leaves the rest to config.json's digests
    manifest["weights"]["tiny-bundled"]["files"] = manifest["weights"]["tiny-bundled"]["files"][:2]
    assert hub.locate(None)[1] is False


def test_unknown_name_lists_known_names():
    with pytest.raises(WeightsError) as info:
        Inpainter.from_pretrained("no-such-weights", device="cpu")
    assert "tiny-bundled" in str(info.value) and "tiny-hub" in str(info.value)


# ------------------------------------------------------------------------------------------ local paths
def test_local_folder(weights):
    assert hub.resolve(str(weights["v1"])) == weights["v1"]
    assert_weights(Inpainter.from_pretrained(str(weights["v1"]), device="cpu"), weights["v1"])
    assert_weights(Inpainter.from_pretrained(weights["main"], device="cpu"), weights["main"])  # a Path too


def test_file_path_is_not_a_weights_folder(weights):
    with pytest.raises(WeightsError, match="is a file"):
        Inpainter.from_pretrained(str(weights["main"] / MECNET_FILE), device="cpu")


# ------------------------------------------------------------------------------------------ hand-made cache
def _populate_cache(cache_root: Path, repo_id: str, commit: str, folder: Path, ref: str = "main") -> Path:
    """The layout huggingface_hub writes, by hand: models--owner--name/{refs/<ref>, snapshots/<commit>/...}."""
    repo_dir = cache_root / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name in FILES:
        shutil.copyfile(folder / name, snapshot / name)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / ref).write_text(commit)
    return snapshot


def test_hand_made_cache_layout_offline(weights, cache, hf_env, monkeypatch):
    commit = "1234567890abcdef1234567890abcdef12345678"
    snapshot = _populate_cache(cache, "someone/cached-model", commit, weights["v1"])
    _go_offline(monkeypatch)
    inp = Inpainter.from_pretrained("someone/cached-model", device="cpu", cache_dir=str(cache))
    assert_weights(inp, weights["v1"])
    assert hub.resolve("someone/cached-model", cache_dir=str(cache)) == snapshot
    assert hub.resolve("someone/cached-model", revision=commit, cache_dir=str(cache)) == snapshot
    with pytest.raises(WeightsError, match="HF_HUB_OFFLINE"):
        hub.resolve("someone/cached-model", revision="v9", cache_dir=str(cache))
    # without cache_dir: the shared cache (HF_HUB_CACHE)
    _populate_cache(hf_env, "someone/shared", commit, weights["main"])
    assert_weights(Inpainter.from_pretrained("someone/shared", device="cpu"), weights["main"])
