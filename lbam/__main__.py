"""``python -m lbam`` runs the ``lbam`` command line."""
import sys

from .cli import main

sys.exit(main())
