"""Several images or video frames of one person -> one embedding: mean pooling or a trained recurrent aggregator."""

from rnnface.aggregation.model import (
    AggregatorConfig,
    RecurrentAggregator,
    load_aggregator,
    mean_pool,
    save_aggregator,
)

__all__ = ["AggregatorConfig", "RecurrentAggregator", "load_aggregator", "mean_pool", "save_aggregator"]
