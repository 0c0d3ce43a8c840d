"""``python -m lbam.benchmark`` (also how the end-to-end section starts its worker subprocesses)."""
import sys

from .runner import main

sys.exit(main())
