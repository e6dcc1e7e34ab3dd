"""The simplest fusion network, concatenation, and the stream checks every fusion network shares.

:class:`~serkit.interfaces.fusion.FusionOutput`, what every fusion network returns, is
re-exported here (and from :mod:`serkit` and :mod:`serkit.interfaces`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from serkit.errors import ModelError
from serkit.interfaces.fusion import FusionOutput

__all__ = ["ConcatFusionNet", "FusionOutput", "check_streams"]


def check_streams(streams: Mapping[str, Tensor], stream_dims: Mapping[str, int], where: str) -> int:
    """Check that ``streams`` holds exactly the streams of ``stream_dims``, as ``(B, k_i)``.

    Returns:
        The batch size ``B``.

    Raises:
        ModelError: a stream is missing or unexpected, is not 2-D, has the wrong width or
            a batch size different from the others.
    """
    missing = [sid for sid in stream_dims if sid not in streams]
    if missing:
        raise ModelError(
            f"{where}: missing stream(s) {', '.join(map(repr, missing))}; "
            f"expected {', '.join(map(repr, stream_dims))}"
        )
    extra = [sid for sid in streams if sid not in stream_dims]
    if extra:
        raise ModelError(
            f"{where}: unexpected stream(s) {', '.join(map(repr, extra))}; "
            f"expected {', '.join(map(repr, stream_dims))}"
        )
    batch: int | None = None
    for sid, dim in stream_dims.items():
        tensor = streams[sid]
        if tensor.dim() != 2 or tensor.shape[1] != dim:
            raise ModelError(
                f"{where}: stream {sid!r} must be (B, {dim}); got shape {tuple(tensor.shape)}"
            )
        if batch is None:
            batch = tensor.shape[0]
        elif tensor.shape[0] != batch:
            raise ModelError(
                f"{where}: stream {sid!r} has batch size {tensor.shape[0]}; the first stream "
                f"has {batch}"
            )
    return batch or 0


class ConcatFusionNet(nn.Module):
    """Concatenate the stream vectors, in the order of ``stream_dims``; no parameters.

    ``forward(streams, domain)``: ``streams[sid]: (B, k_sid)`` -> representation
    ``(B, sum_sid k_sid)``. The representation is the same for every domain; ``domain`` is
    checked against ``domains`` when they are given.

    Args:
        stream_dims: stream id -> width ``k``; its order is the concatenation order.
        domains: the domain ids the model knows (optional).
    """

    def __init__(
        self, stream_dims: Mapping[str, int], domains: Sequence[str] | None = None
    ) -> None:
        super().__init__()
        if not stream_dims:
            raise ModelError("concat fusion: stream_dims is empty; at least one stream is needed")
        for sid, dim in stream_dims.items():
            if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
                raise ModelError(
                    f"concat fusion: stream {sid!r} has width {dim!r}; expected a positive int"
                )
        self.stream_dims: dict[str, int] = dict(stream_dims)
        self.domains: tuple[str, ...] | None = tuple(domains) if domains is not None else None
        self.out_dim: int = sum(self.stream_dims.values())

    def forward(self, streams: Mapping[str, Tensor], domain: str) -> FusionOutput:
        if self.domains is not None and domain not in self.domains:
            raise ModelError(
                f"concat fusion: unknown domain {domain!r}; known: {', '.join(self.domains)}"
            )
        check_streams(streams, self.stream_dims, "concat fusion")
        return FusionOutput(torch.cat([streams[sid] for sid in self.stream_dims], dim=1))

    def extra_repr(self) -> str:
        return f"stream_dims={self.stream_dims}, out_dim={self.out_dim}"
