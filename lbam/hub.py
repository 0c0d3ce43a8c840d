"""Where weights come from: the manifest of named weights, bundled folders, local folders and the Hugging Face Hub.

``resolve(name_or_path)`` turns what a user passes to ``Inpainter.from_pretrained`` into a local weights folder
(``config.json`` + ``mecnet.safetensors`` + ``generator.safetensors``):

- ``None``: the default named in ``weights_manifest.json``, bundled inside the package;
- a name listed in the manifest: bundled, or downloaded from its Hub repo, and checked against its sha256;
- a path to a local folder;
- a Hugging Face Hub repo id ``owner/name``: downloaded with ``huggingface_hub`` (shared cache, ``revision``,
  ``HF_HUB_OFFLINE=1`` honoured).
"""
from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from .errors import WeightsError
from .weights_io import CONFIG_FILE, GENERATOR_FILE, MECNET_FILE, sha256_file

MANIFEST = "weights_manifest.json"
WEIGHT_FILES = (CONFIG_FILE, MECNET_FILE, GENERATOR_FILE)
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


@lru_cache(maxsize=1)
def load_manifest() -> Dict[str, Any]:
    """The manifest shipped inside the package: {"default": name, "weights": {name: entry}}."""
    text = resources.files("lbam").joinpath(MANIFEST).read_text(encoding="utf-8")
    return json.loads(text)


def known_names() -> list:
    return sorted(load_manifest()["weights"])


def package_root() -> Path:
    return Path(str(resources.files("lbam")))


def _verify(folder: Path, entry: Dict[str, Any]) -> None:
    """Check every file the manifest lists for this entry against its sha256."""
    for f in entry.get("files", []):
        path = folder / Path(f["path"]).name
        digest = sha256_file(path)
        if digest != f["sha256"]:
            raise WeightsError(f"{path} has sha256 {digest}, the manifest expects {f['sha256']}")


def _offline() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.is_offline_mode()) if hasattr(constants, "is_offline_mode") else constants.HF_HUB_OFFLINE
    except ImportError:  # pragma: no cover
        return False


def download(repo_id: str, revision: Optional[str] = None, cache_dir: Optional[str] = None) -> Path:
    """Fetch the three files of a weights folder from a Hub repo (or the cache); returns the snapshot folder."""
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import (EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                            RevisionNotFoundError)
    except ImportError as e:  # pragma: no cover - huggingface_hub is a dependency
        raise WeightsError("huggingface_hub is needed to download weights: pip install huggingface-hub") from e
    paths = []
    for name in WEIGHT_FILES:
        try:
            paths.append(Path(hf_hub_download(repo_id, name, revision=revision, cache_dir=cache_dir)))
        except LocalEntryNotFoundError as e:
            if _offline():
                raise WeightsError(f"{repo_id}: {name} is not in the Hugging Face cache and HF_HUB_OFFLINE is set; "
                                   "download it once while online or pass a local folder") from e
            raise WeightsError(f"{repo_id}: cannot download {name} (no connection to the Hub?) and it is not "
                               f"in the cache: {e}") from e
        except RevisionNotFoundError as e:
            raise WeightsError(f"{repo_id} has no revision {revision!r}") from e
        except RepositoryNotFoundError as e:
            raise WeightsError(f"{repo_id}: repository not found on the Hub (or private/gated: log in)") from e
        except EntryNotFoundError as e:
            raise WeightsError(f"{repo_id}@{revision or 'main'} has no {name}: {e}") from e
        except OSError as e:
            raise WeightsError(f"{repo_id}: cannot download {name}: {e}") from e
    folders = {p.parent for p in paths}
    if len(folders) != 1:
        raise WeightsError(f"{repo_id}: the downloaded files are not in one snapshot folder")
    return folders.pop()


def resolve(name_or_path: Optional[str] = None, revision: Optional[str] = None,
            cache_dir: Optional[str] = None) -> Path:
    """Local weights folder for a manifest name, a folder path or a Hub repo id (None = the default)."""
    return locate(name_or_path, revision, cache_dir)[0]


def locate(name_or_path: Optional[str] = None, revision: Optional[str] = None,
           cache_dir: Optional[str] = None) -> Tuple[Path, bool]:
    """``(folder, checked)``: the folder :func:`resolve` returns, and whether its weight files were just checked
    against the manifest's sha256 digests (manifest names: True; folders and Hub repo ids: False), so that the
    caller need not hash them a second time."""
    manifest = load_manifest()
    name = manifest["default"] if name_or_path is None else os.fspath(name_or_path)
    entry = manifest["weights"].get(name)
    if entry is not None:
        if entry.get("bundled"):
            folder = package_root() / entry["folder"]
        else:
            folder = download(entry["repo_id"], revision or entry.get("revision"), cache_dir)
        _verify(folder, entry)
        listed = {Path(f["path"]).name for f in entry.get("files", [])}
        return folder, set(WEIGHT_FILES) <= listed
    path = Path(name).expanduser()
    if path.is_dir():
        return path, False
    if path.exists():
        raise WeightsError(f"{path} is a file; a weights folder (config.json + *.safetensors) is expected")
    if _REPO_ID.match(name) and not name.startswith((".", "/")):
        return download(name, revision, cache_dir), False
    raise WeightsError(f"unknown weights {name!r}: not a folder, not a Hub repo id, and not a known name "
                       f"(known: {', '.join(known_names())})")
