"""The smallest flow: two steps, the second one using the first one's output."""
