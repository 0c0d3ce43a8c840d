"""Reading image files: :func:`load_image` (EXIF orientation, decompression-bomb guard, clear errors)."""

from __future__ import annotations

import os
import struct
import sys
import warnings

from PIL import Image, ImageOps

from ..errors import InputError
from ._util import is_path


def load_image(path) -> Image.Image:
    """Open an image file fully and apply its EXIF orientation.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    PIL.Image.Image, fully decoded (no file handle kept open), in the file's own mode, turned
    upright according to its EXIF ``Orientation`` tag (the tag is then removed).

    Raises
    ------
    InputError
        naming the file, when it does not exist, is not a file, cannot be read, is not an
        image Pillow can decode, is truncated or corrupt, or has more than :data:`MAX_PIXELS`
        pixels (decompression bomb).
    """
    if not is_path(path):
        raise InputError(f"expected a file path (str or os.PathLike), got {type(path).__name__}")
    name = os.fspath(path)
    if isinstance(name, bytes):  # os.PathLike may return bytes
        name = os.fsdecode(name)
    if not os.path.exists(name):
        raise InputError(f"image file not found: {name!r}")
    if not os.path.isfile(name):
        raise InputError(f"not a regular file: {name!r}")
    try:
        with warnings.catch_warnings():
            # our own MAX_PIXELS check below decides; Pillow's warning would only be noise
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(name) as img:
                w, h = img.size
                max_pixels = sys.modules[__package__].MAX_PIXELS  # lbam.io.MAX_PIXELS, read now
                if w * h > max_pixels:
                    raise InputError(
                        f"image {name!r} is {w}x{h} = {w * h} pixels, more than the limit of "
                        f"{max_pixels} (lbam.io.MAX_PIXELS); refusing it as a possible "
                        "decompression bomb"
                    )
                img.load()  # force a full decode: truncated/corrupt files fail here
                try:
                    out = ImageOps.exif_transpose(img)
                except Exception:  # broken EXIF data must not make a decodable image unusable
                    out = None
                if out is None or out is img:
                    out = img.copy()
    except InputError:
        raise
    except Image.DecompressionBombError as e:
        raise InputError(f"image {name!r} is too large, refusing it as a possible decompression bomb: {e}") from e
    except Image.UnidentifiedImageError as e:
        raise InputError(f"cannot read {name!r}: not an image file Pillow can decode") from e
    except PermissionError as e:
        raise InputError(f"cannot read {name!r}: permission denied") from e
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, struct.error) as e:
        # Pillow reports truncated / corrupt data as OSError ("image file is truncated"),
        # SyntaxError (broken headers) and a few others depending on the plugin
        raise InputError(f"cannot decode image {name!r} (truncated or corrupt file?): {e}") from e
    return out

