"""Checkpoints shipped with the package (see MODEL_CARD.md here once one is trained)."""
