"""Run the lbam benchmark: ``python benchmarks/run.py [--quick] [--out DIR] ...`` (same as ``lbam bench``).

The implementation lives in :mod:`lbam.benchmark`; see benchmarks/README.md for what is measured.
"""
import sys
from pathlib import Path

if __name__ == "__main__":
    try:
        import lbam  # noqa: F401  (installed)
    except ImportError:  # running from a source checkout without installing
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from lbam.benchmark import main

    sys.exit(main(sys.argv[1:]))
