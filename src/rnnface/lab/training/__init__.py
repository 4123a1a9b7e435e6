"""Training: config, margin heads, identity-balanced sampling, augmentation and the loop."""
