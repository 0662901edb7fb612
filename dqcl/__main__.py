"""``python -m dqcl`` is the ``dqcl`` command."""

import sys

from .cli import main

sys.exit(main())
