"""``python -m paymodel`` runs the command-line interface."""

from paymodel.cli import main

raise SystemExit(main())
