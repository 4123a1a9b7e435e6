"""Scoring a sequence of crops: each frame by the window of up to `length` frames that ends at it.

That is what a camera sees at run time (the last few frames), and it gives every frame one score whatever the
window length, so single-frame and sequence models are compared on the same presentations. A recurrent model
runs its cell over the window from a fresh state; the per-frame model averages its frames' live probabilities
(the "mean of per-frame scores" ablation).
"""

from __future__ import annotations

import numpy as np
import torch

from rnnface.liveness.model import LivenessNet

#: The window lengths the detector is calibrated for (frames); a longer sequence is scored by 16-frame windows.
WINDOWS = (1, 2, 4, 8, 16)


def frame_stats(net: LivenessNet, frames: np.ndarray, batch: int = 64) -> torch.Tensor:
    """(N, S, S) uint8 crops -> (N, 128) texture statistics (the frozen part; the same for every model)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).float().div_(255.0)[:, None]
    with torch.inference_mode():
        return torch.cat([net.stats(x[i : i + batch]) for i in range(0, len(x), batch)])


def window_scores(net: LivenessNet, frames: np.ndarray, length: int) -> np.ndarray:
    """(N, S, S) uint8 crops in time order -> (N,) live probabilities, frame i from frames max(0, i-length+1)..i."""
    if len(frames) == 0:
        return np.zeros(0)
    return stats_window_scores(net, frame_stats(net, frames), length)


def stats_window_scores(net: LivenessNet, stats: torch.Tensor, length: int) -> np.ndarray:
    """`window_scores` from the frames' texture statistics (N, 128)."""
    n = len(stats)
    if n == 0:
        return np.zeros(0)
    with torch.inference_mode():
        if not net.recurrent:
            probs = torch.sigmoid(net.integrate(stats[None])[0]).numpy()
            sums = np.cumsum(np.concatenate([[0.0], probs]))
            lo = np.maximum(0, np.arange(n) - length + 1)
            return (sums[1:] - sums[lo]) / (np.arange(n) + 1 - lo)
        offsets = np.arange(length)[::-1][None]
        starts = np.arange(n)[:, None] - offsets  # (N, length): the frames of each window, oldest first
        sizes = (starts >= 0).sum(1)
        out = np.empty(n)
        for size in np.unique(sizes):  # windows of one true length run together
            rows = np.flatnonzero(sizes == size)
            windows = stats[torch.from_numpy(starts[rows][:, length - size :])]
            out[rows] = torch.sigmoid(net.integrate(windows)[:, -1]).numpy()
        return out


def captures_window_scores(net: LivenessNet, stats: torch.Tensor, lengths: np.ndarray, length: int) -> np.ndarray:
    """`stats_window_scores` of every capture of a set whose frames (N, D) lie capture after capture, `lengths`
    frames each: (N,) scores, each window within its own capture. A per-frame model scores all frames at once."""
    if net.recurrent:
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        return np.concatenate(
            [stats_window_scores(net, stats[a:b], length) for a, b in zip(bounds[:-1], bounds[1:])] + [np.zeros(0)]
        )
    if len(stats) == 0:
        return np.zeros(0)
    with torch.inference_mode():
        probs = torch.sigmoid(net.integrate(stats[None])[0]).double().numpy()
    first = np.repeat(np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)  # each frame's capture start
    index = np.arange(len(probs))
    lo = np.maximum(first, index - length + 1)
    sums = np.concatenate([[0.0], np.cumsum(probs)])
    return (sums[index + 1] - sums[lo]) / (index + 1 - lo)


def calibrated_window(thresholds: dict[int, float], count: int) -> int:
    """The longest calibrated window that `count` frames fill (1 for a single photo)."""
    return max(w for w in thresholds if w <= max(1, count))
