"""Writing files: :func:`check_output` (is an output path writable in that format, before any work),
:func:`save_image` and :func:`atomic_path` (write beside the target, then ``os.replace``: a reader or a second
writer never sees a half-written file)."""

from __future__ import annotations

import io as _bytes_io
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from PIL import Image

from ..errors import InputError

#: Mode of a file created by :func:`atomic_path` before the umask is applied (the usual 0666 & ~umask).
FILE_MODE = 0o666


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a fresh temporary path in ``path``'s folder to write to; on a normal exit it gets the usual file mode
    (0666 minus the umask) and replaces ``path`` with ``os.replace`` (atomic on one file system), on an exception
    it is removed and ``path`` is left as it was. Every call gets its own temporary name, so concurrent writers
    of the same ``path`` never mix their bytes: the last one to finish wins, whole.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE & ~_umask())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def check_output(path, mode: Optional[str] = None) -> str:
    """Check that an image can be written to ``path`` (in PIL ``mode`` when given); return Pillow's format name.

    Raises InputError naming the problem when ``path`` is an existing folder, has no or an unknown extension,
    or when the format cannot hold images of ``mode`` (e.g. RGBA or 16-bit as JPEG). Nothing is written.
    """
    p = Path(path)
    if p.is_dir():
        raise InputError(f"output {str(p)!r} is a folder; give a file name such as {str(p / 'result.png')!r}")
    fmt = Image.registered_extensions().get(p.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        known = sorted(e for e, f in Image.registered_extensions().items() if f in Image.SAVE)
        common = [e for e in (".png", ".jpg", ".webp", ".tif", ".bmp") if e in known]
        what = f"{p.suffix!r} is not an image format Pillow can write" if p.suffix else "the name has no extension"
        raise InputError(f"cannot write an image to {str(p)!r}: {what} (use one of {', '.join(common)}, ...)")
    if mode is not None:
        try:
            Image.new(mode, (1, 1)).save(_bytes_io.BytesIO(), format=fmt)
        except (OSError, ValueError, KeyError) as e:
            hint = ".tif" if mode in ("I", "F") else ".png or .tif"
            raise InputError(f"cannot write a {mode} image as {fmt} to {str(p)!r} ({e}); use {hint}") from None
    return fmt


def save_image(image: Image.Image, path) -> None:
    """Write a PIL image to ``path`` in the format its extension names, atomically (:func:`atomic_path`).

    The parent folder is created if needed. Raises InputError as :func:`check_output` does."""
    fmt = check_output(path, image.mode)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt)
