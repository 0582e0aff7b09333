"""`python -m tfhub.cli`: the `tfhub` command."""

from tfhub.cli import main

raise SystemExit(main())
