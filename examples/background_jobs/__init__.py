"""Plain background work: jobs enqueued now, after a delay, or at a given time."""
