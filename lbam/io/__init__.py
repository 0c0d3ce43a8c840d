"""Image and mask coercion and validation at lbam's public boundary (``lbam.io``).

Every public entry point turns what the user passes into one internal form,

* image: ``numpy.ndarray`` of shape ``(N, H, W, 3)``, float32, values in [0, 1];
* hole mask: ``numpy.ndarray`` of shape ``(N, H, W)``, bool, **True = hole** (pixel to fill),

and turns the result back into the kind the user passed (:func:`from_rgb_float`).  Anything
unusable raises :class:`lbam.errors.InputError` with a message naming the problem.

Accepted images (:func:`to_rgb_float`)
--------------------------------------
* a path (``str`` or ``os.PathLike``), opened with :func:`load_image`;
* a ``PIL.Image.Image`` in any mode:

  - ``RGB``: used as is; ``L``: gray replicated to three channels; ``1``: black/white, as L;
  - ``RGBA``, ``LA``, ``RGBa``, ``La``, ``PA``: the alpha channel is **dropped**, not
    composited (the color values under transparent pixels are used as they are);
  - ``P`` (palette): converted to RGB (palette transparency is ignored);
  - ``I;16`` / ``I;16L`` / ``I;16B`` / ``I;16N`` (16-bit gray): divided by 65535;
  - ``I`` (32-bit integer gray, what 16-bit PNGs used to open as): read as 16-bit, divided by
    65535; values outside [0, 65535] are an error;
  - ``F`` (32-bit float gray): must already be in [0, 1];
  - any other mode (``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, ...): ``image.convert("RGB")``.
* a ``numpy.ndarray`` ``(H, W, 3)`` RGB, ``(H, W, 4)`` RGBA (alpha dropped), ``(H, W)`` or
  ``(H, W, 1)`` gray; dtype uint8 (divided by 255), uint16 (divided by 65535) or floating
  point with values in [0, 1];
* a ``torch.Tensor`` ``(3, H, W)`` or ``(B, 3, H, W)``, floating point in [0, 1] or uint8, on
  any device.

Float images must be finite and within [0, 1]; values up to 1e-3 outside are clipped (rounding
noise), anything further is an error.  bool, complex, signed and other integer dtypes are
rejected for images.

Accepted masks (:func:`to_hole_mask`)
-------------------------------------
White / non-zero marks the hole, as in OpenCV's ``inpaint`` and simple-lama:

* bool: True = hole;
* uint8 (and PIL modes ``L``, ``RGB``, ``1``, ``P``, ...): hole where the value >= 128
  (robust to JPEG noise; note that a 0/1 uint8 mask therefore has **no** hole: pass bool or
  0/255);
* uint16 (PIL ``I;16``): hole where >= 32768;
* other integer dtypes (int8..int64, uint32, uint64, PIL ``I``): values must lie in
  [0, 255], hole where >= 128 (the uint8 rule);
* floating point (PIL ``F``): hole where > 0.5; NaN is an error;
* several channels (``(H, W, 3)``, ``(H, W, 4)``, PIL RGB/RGBA): alpha is ignored and a pixel
  is a hole when any color channel says hole.

Shapes: numpy ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)``, ``(H, W, 4)``; torch ``(H, W)``,
``(1, H, W)``, ``(B, H, W)``, ``(B, 1, H, W)``; a mask with batch 1 applies to every image of
a batch.  The mask's size must equal the image's.

Modules: :mod:`~lbam.io.files` (reading files), :mod:`~lbam.io.images` (images in), :mod:`~lbam.io.masks`
(masks in; :func:`grow_hole`), :mod:`~lbam.io.results` (results out), :mod:`~lbam.io.save` (checking output paths,
writing files atomically); this package re-exports their public names.
"""

from __future__ import annotations

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_PIXELS",
    "FLOAT_TOLERANCE",
    "ImageKind",
    "load_image",
    "to_rgb_float",
    "to_hole_mask",
    "grow_hole",
    "from_rgb_float",
    "result_mode",
    "check_output",
    "save_image",
    "atomic_path",
]

#: Largest image, in pixels, that :func:`load_image` opens (decompression-bomb guard); read at every call,
#: so assigning ``lbam.io.MAX_PIXELS`` changes it. 2**27 is about 134 megapixels (e.g. 11585 x 11585); it
#: is below Pillow's own hard limit (2 * ``Image.MAX_IMAGE_PIXELS``, about 179 megapixels by default), so
#: this value decides.
MAX_PIXELS = 2**27

from ._util import FLOAT_TOLERANCE, IMAGE_SUFFIXES  # noqa: E402
from .files import load_image  # noqa: E402
from .images import ImageKind, to_rgb_float  # noqa: E402
from .masks import grow_hole, to_hole_mask  # noqa: E402
from .results import from_rgb_float, result_mode  # noqa: E402
from .save import atomic_path, check_output, save_image  # noqa: E402
