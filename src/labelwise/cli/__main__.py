"""``python -m labelwise.cli``: the same as the ``labelwise`` command."""

from labelwise.cli import main

raise SystemExit(main())
