"""The lab: what makes and measures models (data sets and caches, training, evaluation, benchmarks, the demo).

It may import the product (`rnnface`); the product never imports it, except the CLI's lab commands, lazily.
"""
