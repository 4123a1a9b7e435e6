"""Grouping faces nobody has named: a k-NN graph, average linkage over it, incremental joins, and the metrics."""

from rnnface.clustering.linkage import Clustering, cluster_embeddings

__all__ = ["Clustering", "cluster_embeddings"]
