"""Extract, transform with a map step (one task per record), load with a fan-in step."""
