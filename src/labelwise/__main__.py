"""``python -m labelwise``: the same command line as ``labelwise``."""

from labelwise.cli import main

raise SystemExit(main())
