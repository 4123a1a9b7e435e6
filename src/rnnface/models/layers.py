"""Building blocks: a cell factory, 2-D bidirectional sweeps over feature maps, and a PReLU that exports fast."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: The recurrent cells every backbone can be built with.
RNN_CELLS: dict[str, type[nn.RNN] | type[nn.LSTM] | type[nn.GRU]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def last_output(network: str, outputs: tuple[str, ...], known: tuple[str, ...]) -> int:
    """Where in `known` (a network's outputs in the order it computes them) the last of `outputs` lies, so that
    the forward pass stops there; ValueError naming the known ones for an output the network does not have."""
    unknown = set(outputs) - set(known)
    if unknown:
        raise ValueError(f"{network} has no output {sorted(unknown)}; known: {', '.join(known)}")
    return max(known.index(o) for o in outputs)


class PReLU(nn.PReLU):
    """`nn.PReLU` (same parameter, same answers) that an ONNX export writes as two per-channel 1 x 1 convolutions,
    `a * x + (1 - a) * relu(x)`: onnxruntime's PRelu op on feature maps ran at a third of a convolution's speed
    and made it convert the map's memory layout around each one (42 % of MobileFaceNet's time)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.onnx.is_in_onnx_export() or x.dim() != 4 or self.num_parameters == 1:
            return super().forward(x)
        slope = self.weight.view(-1, 1, 1, 1)
        groups = self.num_parameters
        return F.conv2d(x, slope, groups=groups) + F.conv2d(torch.relu(x), 1 - slope, groups=groups)


def make_rnn(
    cell: str, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False
) -> nn.RNNBase:
    """A batch-first recurrent layer of the named cell type ('rnn', 'lstm' or 'gru')."""
    try:
        cls = RNN_CELLS[cell]
    except KeyError:
        raise ValueError(f"unknown cell {cell!r}; choose one of {sorted(RNN_CELLS)}") from None
    return cls(input_size, hidden_size, num_layers=num_layers, bidirectional=bidirectional, batch_first=True)


class Sweep2D(nn.Module):
    """ReNet layer: a bidirectional sweep along each row, then one along each column.

    Every output position therefore sees the whole map: the horizontal pass gathers its row, the
    vertical pass gathers those row summaries down its column.
    Input (B, C, H, W) -> output (B, 2 * hidden, H, W).
    """

    def __init__(self, in_channels: int, hidden: int, cell: str) -> None:
        super().__init__()
        self.horizontal = make_rnn(cell, in_channels, hidden, bidirectional=True)
        self.vertical = make_rnn(cell, 2 * hidden, hidden, bidirectional=True)
        self.out_channels = 2 * hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        rows = x.permute(0, 2, 3, 1).reshape(b * h, w, c)
        rows, _ = self.horizontal(rows)  # (B*H, W, 2h)
        cols = rows.reshape(b, h, w, -1).permute(0, 2, 1, 3).reshape(b * w, h, -1)
        cols, _ = self.vertical(cols)  # (B*W, H, 2h)
        return cols.reshape(b, w, h, -1).permute(0, 3, 2, 1)


def reduction(channels: int, out: int) -> nn.Sequential:
    """The 1x1 convolution (with batch norm and PReLU) that narrows a CNN's feature map before the sweeps."""
    return nn.Sequential(nn.Conv2d(channels, out, 1, bias=False), nn.BatchNorm2d(out), PReLU(out))


def sweep_layers(channels: int, hidden: tuple[int, ...], cell: str) -> tuple[nn.ModuleList, nn.ModuleList, int]:
    """Stacked `Sweep2D` layers (one per entry of `hidden`), a GroupNorm after each, and the channels they output."""
    sweeps, norms = [], []
    for size in hidden:
        sweeps.append(Sweep2D(channels, size, cell))
        norms.append(nn.GroupNorm(1, 2 * size))
        channels = 2 * size
    return nn.ModuleList(sweeps), nn.ModuleList(norms), channels


def run_sweeps(x: torch.Tensor, sweeps: nn.ModuleList, norms: nn.ModuleList) -> torch.Tensor:
    """Apply the sweep layers in turn; a layer whose output keeps the shape is residual."""
    for sweep, norm in zip(sweeps, norms):
        y = norm(sweep(x))
        x = x + y if y.shape == x.shape else y
    return x


class AttentionPool(nn.Module):
    """Softmax-weighted average of the positions of a feature map (one learned scorer per head)."""

    def __init__(self, channels: int, heads: int = 1) -> None:
        super().__init__()
        self.score = nn.Conv2d(channels, heads, kernel_size=1)
        self.out_channels = channels * heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.score(x).flatten(2).softmax(dim=-1)  # (B, heads, HW)
        return torch.einsum("bkn,bcn->bkc", weights, x.flatten(2)).flatten(1)


class EmbeddingHead(nn.Module):
    """Linear projection + BatchNorm (as in insightface) + L2 normalisation."""

    def __init__(self, in_features: int, embed_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, embed_dim, bias=False)
        self.bn = nn.BatchNorm1d(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.bn(self.fc(self.dropout(x))), dim=-1)


def recurrent_share(model: nn.Module) -> float:
    """Fraction of the model's parameters that sit in recurrent layers."""
    total = sum(p.numel() for p in model.parameters())
    recurrent = sum(p.numel() for m in model.modules() if isinstance(m, nn.RNNBase) for p in m.parameters())
    return recurrent / total if total else 0.0
