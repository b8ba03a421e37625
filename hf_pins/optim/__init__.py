"""Optimizers that prune: gRDA / gRDAM, and the composition that lets them share one Trainer with AdamW."""
