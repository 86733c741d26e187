"""``python -m chainrule``: the command line (see :mod:`chainrule.cli`)."""

from chainrule.cli import main

raise SystemExit(main())
