"""Structured pruning: whole FFN units and attention heads removed, leaving a smaller dense model."""
