"""``python -m tfhub.cli``: the ``tfhub`` command (the hub server's tests and
``tfhub.testing.start_hub_server`` start it this way)."""

import sys

from tfhub.cli import main

sys.exit(main())
