"""``python -m pgflow`` is the ``pgflow`` command."""

from pgflow.cli import main

main()
