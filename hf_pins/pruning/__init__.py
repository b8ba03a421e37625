"""Pruning: which weights, how they are scored, the schedule and the masks."""
