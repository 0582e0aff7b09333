"""``python -m tfhub.cli``: the ``tfhub`` command."""

import sys

from tfhub.cli import main

sys.exit(main())
