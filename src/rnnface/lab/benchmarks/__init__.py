"""Benchmarks behind `rnnface bench`: each prints a table and writes a JSON report (speed and memory targets are
checked here, never by timed unit tests).

- `pipeline`: detect+align per image, each backbone and the shipped model per face, per runtime.
- `gallery`: index kinds at 10k-1M faces on a population fitted to real embeddings (`population`).
- `service`: a bounded load test of `rnnface serve` on loopback.
- `video`: frames per second of `rnnface video` on a synthetic clip.
"""
