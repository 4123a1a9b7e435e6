"""Datasets: identity-folder trees (LFW layout) and the aligned-face cache built from them."""
