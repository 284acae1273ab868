"""``python -m ecg_model``: the command line."""

import sys

from .cli import main

sys.exit(main())
