"""Runnable examples of pgflow for Python; each is run end to end by tests/examples."""
