"""Speed and memory benchmark: ``lbam bench`` or ``python benchmarks/run.py`` (same options).

Sections (every JSON field is documented in :data:`FIELD_DOCS` and ``benchmarks/README.md``):

* ``crop_latency`` - one 256 x 256 crop (the training size) through MECNet, the generator, and both
  (``lbam.compose.complete``), for the reference configuration (``paper``) and the default one (``compact``).
  Two modes: ``plain`` is what the reference code does (fp32 eager, autograd on, BatchNorm unfused, NCHW,
  batch 1); ``optimized`` is what lbam does (:func:`lbam.models.fuse.fuse_for_inference`, inference mode,
  channels-last where it helps, crops batched). Every case runs round-robin (A, B, C, A, B, C, ...) after one
  warm-up call each, and the median is kept, so ratios between cases are fair on a busy machine.
* ``throughput`` - crops per second of both networks at each batch size.
* ``fuse_ablation`` - what each rewrite of ``fuse_for_inference`` contributes (batch 1).
* ``end_to_end`` - ``Inpainter.inpaint`` on synthetic photo-like images (2048 x 1536 and 4096 x 3072 by
  default) with 5 % and 25 % free-form holes, against OpenCV Telea on the same inputs in the same process; peak
  resident memory (``VmHWM`` of ``/proc/self/status``) of each, measured in a fresh subprocess per case.
* ``precision`` - fp16 / bf16 autocast against fp32 on the CPU (PSNR of the outputs, untimed): the
  half-precision numerics check that runs without a GPU.
* ``gpu`` - only when CUDA is present: fp32 / fp16 / bf16 (autocast, as ``Inpainter(dtype=...)`` runs) at
  several batch sizes, PSNR of fp16 / bf16 outputs against fp32, and ``inpaint`` end to end.
* ``summary`` - the ratios the project's speed targets are stated in, and whether each is met.

Results: ``<out>/results.json`` and ``<out>/results.md``. ``--quick`` shrinks everything (tiny configurations,
small images, one repeat) so that the whole run takes seconds; its numbers mean nothing.
"""
from __future__ import annotations

from .gpu import gpu_section
from .inputs import synthetic_image, synthetic_mask
from .options import DEFAULT_OUT, SECTIONS, Options, parse_args  # noqa: F401
from .report import FIELD_DOCS, to_markdown, write_results
from .runner import SCHEMA_VERSION, main, run_benchmark  # noqa: F401
from .timing import GB, current_rss_bytes, peak_rss_bytes, reset_peak_rss, time_interleaved  # noqa: F401

__all__ = ["FIELD_DOCS", "Options", "gpu_section", "main", "parse_args", "run_benchmark", "synthetic_image", "synthetic_mask",
           "peak_rss_bytes", "to_markdown", "write_results", "time_interleaved"]
