"""Contract tests for the network components: encoders, fusions and heads.

Like :mod:`serkit.testing.contracts` (datasets) and :mod:`serkit.testing.extractor_contract`,
this module checks what the engine relies on, beyond "``build`` returns a module":

- every component: ``kind``, snake_case ``name``, ``Params`` with described fields;
- **encoder** (:class:`serkit.Encoder`): the network has ``out_dim`` and maps ``(B, L, d)``
  plus lengths to finite ``(B, out_dim)``; padded frames (past a row's length) do not change
  the output; a row's output does not depend on the other rows of the batch; the output is
  deterministic in eval mode; gradients reach the parameters; on a vector stream
  (``output="vector"``, for ``accepts_vectors`` encoders) it takes ``(B, d)`` with lengths
  ``None``; ``summary()``, when there, is JSON;
- **fusion** (:class:`serkit.Fusion`): the network has ``out_dim`` and returns a
  :class:`serkit.FusionOutput` with a finite ``(B, out_dim)`` representation for every
  domain; the declared extras have their shapes (``gates`` ``(B, M)``, ``penalty`` a
  scalar); rows are independent and eval mode deterministic; every stream and parameter
  gets a gradient; parameters that depend on the domains are stacked over them or live in
  ``gates.<i>``, so that ``init_from`` can add domains;
- **head** (:class:`serkit.Head`): ``(B, in_dim)`` -> finite ``(B, n_classes)`` logits,
  independent rows, deterministic eval mode, gradients to the parameters and the input.

Three ways to use it, as for datasets::

    problems = check_fusion(MyFusion(width=8), {"a": 5, "b": 3})   # [] when clean
    assert_fusion_contract(MyFusion(width=8), {"a": 5, "b": 3})     # AssertionError listing them

    class TestMyFusion(FusionContract):                            # one pytest test per rule
        @pytest.fixture
        def fusion(self):
            return MyFusion(width=8)

Problems are strings (none of these checks has warning-level problems).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from serkit.interfaces.encoder import Encoder, StreamContext
from serkit.interfaces.fusion import GATES, PENALTY, Fusion, FusionOutput
from serkit.interfaces.head import Head
from serkit.testing.contracts import check_declaration_of, contract_broken, contract_fixture

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "ATOL",
    "EncoderContract",
    "FusionContract",
    "HeadContract",
    "assert_encoder_contract",
    "assert_fusion_contract",
    "assert_head_contract",
    "check_encoder",
    "check_fusion",
    "check_head",
    "check_init_from_layout",
]

#: Largest absolute difference accepted between outputs that must be equal (float32 networks).
ATOL = 1e-4

#: The batch the checks feed: lengths of its rows (the first one full length).
LENGTHS = (9, 5, 1, 7)

#: Domain ids the checks build with.
DOMAINS = ("xa", "xb")

_GATE_ROW = re.compile(r"^gates\.(\d+)\.")


def _built(what: str, build: Callable[[], Any]) -> tuple[Any, list[str]]:
    """``(network, [])``, or ``(None, [problem])`` when building fails or gives no ``nn.Module`` with ``out_dim``."""
    from torch import nn

    try:
        net = build()
    except Exception as err:
        return None, [f"{what} raised {type(err).__name__}: {err}"]
    if not isinstance(net, nn.Module):
        return None, [f"{what} returned {type(net).__name__}; expected a torch.nn.Module"]
    out_dim = getattr(net, "out_dim", None)
    if isinstance(out_dim, bool) or not isinstance(out_dim, int) or out_dim < 1:
        return None, [f"{what}: the network's out_dim is {out_dim!r}; expected a positive int"]
    return net, []


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same shape and equal within :data:`ATOL`."""
    if a.shape != b.shape:
        return False
    return a.numel() == 0 or bool((a - b).abs().max() <= ATOL)


def _json_summary(net: nn.Module, what: str) -> list[str]:
    summary = getattr(net, "summary", None)
    if not callable(summary):
        return []
    try:
        json.dumps(summary())
    except Exception as err:
        return [f"{what}: summary() is not JSON-serialisable ({type(err).__name__}: {err})"]
    return []


def _gradients(net: nn.Module, inputs: Sequence[torch.Tensor], what: str, names: Sequence[str]) -> list[str]:
    """Every parameter that trains gets a finite gradient; every input with ``requires_grad`` one too."""
    problems = []
    frozen = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
    if frozen:
        problems.append(f"{what}: no gradient reaches parameter(s) {', '.join(frozen[:5])}")
    bad = [n for n, p in net.named_parameters() if p.grad is not None and not bool(p.grad.isfinite().all())]
    if bad:
        problems.append(f"{what}: non-finite gradients in {', '.join(bad[:5])}")
    unused = [name for name, x in zip(names, inputs, strict=True) if x.grad is None or not bool(x.grad.abs().sum())]
    if unused:
        problems.append(f"{what}: the output does not depend on {', '.join(unused)}")
    return problems


# ------------------------------------------------------------------------------ encoders
def _padded_batch(in_dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(len(LENGTHS), max(LENGTHS), in_dim, generator=gen)
    lengths = torch.tensor(LENGTHS)
    for i, n in enumerate(LENGTHS):
        x[i, n:] = 0.0
    return x, lengths


def _encode(net: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None, domain: str) -> torch.Tensor:
    kwargs = {"domain": domain} if getattr(net, "takes_domain", False) else {}
    return net(x, lengths, **kwargs)  # type: ignore[no-any-return]


def _encoder_outputs(net: nn.Module, in_dim: int, domain: str, seed: int) -> list[str]:
    """Shape, finiteness, padding invariance, independent rows and determinism in eval mode."""
    import torch

    x, lengths = _padded_batch(in_dim, seed)
    net.eval()
    with torch.no_grad():
        try:
            out = _encode(net, x, lengths, domain)
        except Exception as err:
            return [f"forward(x (B, L, {in_dim}), lengths) raised {type(err).__name__}: {err}"]
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (len(LENGTHS), net.out_dim):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            return [f"forward(x (B, L, {in_dim}), lengths) gave {shape}; expected (B, out_dim) = ({len(LENGTHS)}, "
                    f"{net.out_dim})"]
        problems = [] if bool(out.isfinite().all()) else ["the output has non-finite values"]
        noisy = x.clone()
        for i, n in enumerate(LENGTHS):
            noisy[i, n:] = 1e3
        if not _close(_encode(net, noisy, lengths, domain), out):
            problems.append("padded frames (past a row's length) change the output; mask them")
        alone = torch.cat([_encode(net, x[i : i + 1, :n], lengths[i : i + 1], domain) for i, n in enumerate(LENGTHS)])
        if not _close(alone, out):
            problems.append("a row's output depends on the other rows of the batch (or on the padded length)")
        if not _close(_encode(net, x, lengths, domain), out):
            problems.append("the output is not deterministic in eval mode")
    return problems


def _encoder_vectors(net: nn.Module, in_dim: int, domain: str) -> list[str]:
    import torch

    net.eval()
    x = torch.randn(3, in_dim, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        try:
            out = _encode(net, x, None, domain)
        except Exception as err:
            return [f"accepts_vectors, but forward(x (B, {in_dim}), None) raised {type(err).__name__}: {err}"]
    if tuple(out.shape) != (3, net.out_dim):
        return [f"forward(x (B, {in_dim}), None) gave {tuple(out.shape)}; expected (3, {net.out_dim})"]
    return []


def check_encoder(
    encoder: Encoder,
    in_dim: int = 6,
    *,
    layers: int = 1,
    output: str = "sequence",
    domains: Sequence[str] = DOMAINS,
    registry: Any = None,
    seed: int = 0,
) -> list[str]:
    """Every encoder rule (see the module docstring); ``[]`` when the encoder keeps them all.

    Args:
        encoder: the component instance.
        in_dim: the stream width it is built for (``layers`` side by side for layer-aware encoders).
        layers: the stream's layer count (:class:`~serkit.interfaces.encoder.StreamContext`).
        output: ``"sequence"`` or, for ``accepts_vectors`` encoders, ``"vector"``.
        registry: for encoders that build nested encoders (default: the process-wide one).
    """
    import torch

    if not isinstance(encoder, Encoder):
        return [f"expected a serkit.Encoder instance; got {type(encoder).__name__}"]
    problems = check_declaration_of(encoder, "encoder", "my_pooling")
    if registry is None:
        from serkit.plugins import get_registry

        registry = get_registry()
    context = StreamContext(output, layers, tuple(domains), registry)
    torch.manual_seed(seed)  # the network's initial weights too, as in check_fusion and check_head
    net, built = _built(f"build_stream({in_dim}, ...)", lambda: encoder.build_stream(in_dim, context))
    if net is None:
        return problems + built
    if output == "sequence":
        problems += _encoder_outputs(net, in_dim, domains[0], seed)
    if output == "vector":
        if not encoder.accepts_vectors:
            problems.append("checked on a vector stream, but the encoder does not declare accepts_vectors = True")
        problems += _encoder_vectors(net, in_dim, domains[0])
    if output == "sequence":
        x, lengths = _padded_batch(in_dim, seed)
        x.requires_grad_(True)
        net.train()
        try:
            for domain in domains:  # per-domain parameters train on their domain's batches
                _encode(net, x, lengths, domain).square().sum().backward()
            problems += _gradients(net, [x], "training", ["the input"])
        except Exception as err:
            problems.append(f"backward through the encoder raised {type(err).__name__}: {err}")
    return problems + _json_summary(net, "the network")


# ------------------------------------------------------------------------------- fusions
def _streams(stream_dims: Mapping[str, int], batch: int, seed: int) -> dict[str, torch.Tensor]:
    import torch

    gen = torch.Generator().manual_seed(seed)
    return {sid: torch.randn(batch, dim, generator=gen) for sid, dim in stream_dims.items()}


def _fused(net: nn.Module, streams: Mapping[str, torch.Tensor], domain: str, where: str) -> tuple[Any, list[str]]:
    import torch

    try:
        out = net(dict(streams), domain)
    except Exception as err:
        return None, [f"{where}: forward(streams, {domain!r}) raised {type(err).__name__}: {err}"]
    if not isinstance(out, FusionOutput):
        return None, [f"{where}: forward returned {type(out).__name__}; expected a serkit.FusionOutput"]
    batch = next(iter(streams.values())).shape[0]
    rep = out.representation
    if not isinstance(rep, torch.Tensor) or tuple(rep.shape) != (batch, net.out_dim):
        shape = tuple(rep.shape) if isinstance(rep, torch.Tensor) else type(rep).__name__
        return None, [f"{where}: the representation is {shape}; expected (B, out_dim) = ({batch}, {net.out_dim})"]
    return out, []


def _fusion_extras(out: FusionOutput, batch: int, domain: str) -> list[str]:
    import torch

    problems = []
    wrong = [k for k, v in out.extras.items() if not isinstance(v, torch.Tensor)]
    if wrong:
        problems.append(f"domain {domain!r}: extras {wrong} are not tensors")
    gates = out.extras.get(GATES)
    if isinstance(gates, torch.Tensor) and (gates.dim() != 2 or gates.shape[0] != batch):
        problems.append(f"domain {domain!r}: extras[{GATES!r}] is {tuple(gates.shape)}; expected (B, M) with B={batch}")
    penalty = out.extras.get(PENALTY)
    if isinstance(penalty, torch.Tensor) and (penalty.dim() != 0 or not bool(penalty.isfinite())):
        problems.append(f"domain {domain!r}: extras[{PENALTY!r}] must be a finite scalar; got {tuple(penalty.shape)}")
    if not bool(out.representation.isfinite().all()):
        problems.append(f"domain {domain!r}: the representation has non-finite values")
    return problems


def _fusion_rows(net: nn.Module, stream_dims: Mapping[str, int], domains: Sequence[str], seed: int) -> list[str]:
    """Shapes, extras, independent rows and determinism in eval mode, for every domain."""
    import torch

    streams = _streams(stream_dims, 4, seed)
    problems: list[str] = []
    net.eval()
    with torch.no_grad():
        for domain in domains:
            out, wrong = _fused(net, streams, domain, "eval mode")
            if out is None:
                return problems + wrong
            problems += _fusion_extras(out, 4, domain)
            rows = []
            for i in range(4):
                one, wrong = _fused(net, {k: v[i : i + 1] for k, v in streams.items()}, domain, "one row")
                if one is None:
                    return problems + wrong
                rows.append(one.representation)
            if not _close(torch.cat(rows), out.representation):
                problems.append(f"domain {domain!r}: a row's representation depends on the other rows of the batch")
            again, _ = _fused(net, streams, domain, "eval mode")
            if again is None or not _close(again.representation, out.representation):
                problems.append(f"domain {domain!r}: the representation is not deterministic in eval mode")
    return problems


def _fusion_gradients(net: nn.Module, stream_dims: Mapping[str, int], domains: Sequence[str], seed: int) -> list[str]:
    """In training mode, over every domain's batch: every stream and every parameter gets a gradient."""
    streams = _streams(stream_dims, 4, seed + 1)
    for x in streams.values():
        x.requires_grad_(True)
    net.train()
    try:
        for domain in domains:
            out = net(dict(streams), domain)
            loss = out.representation.square().sum()
            if out.penalty is not None:
                loss = loss + out.penalty
            loss.backward()
    except Exception as err:
        return [f"backward through the fusion raised {type(err).__name__}: {err}"]
    return _gradients(net, list(streams.values()), "training", [f"stream {sid!r}" for sid in streams])


def check_init_from_layout(
    fusion: Fusion, stream_dims: Mapping[str, int], domains: Sequence[str] = DOMAINS
) -> list[str]:
    """Parameters that depend on the domains can be extended by ``init_from``.

    The fusion is built for ``domains`` and for ``domains`` plus one more; every tensor of
    the first must be in the second with the same shape, or stacked over the domains (its
    first dimension grows by one), and the second's new tensors must be the new domain's
    entry of a ``gates`` list (``gates.<index of the new domain>.*``).
    """
    more = [*domains, "new_domain"]
    small, built = _built("build(...)", lambda: fusion.build(dict(stream_dims), list(domains)))
    large, built_more = _built("build(... one more domain)", lambda: fusion.build(dict(stream_dims), more))
    if small is None or large is None:
        return built + built_more
    before, after = small.state_dict(), large.state_dict()
    problems = []
    for name, tensor in before.items():
        grown = after.get(name)
        if grown is None:
            problems.append(f"{name} disappears when a domain is added")
        elif grown.shape != tensor.shape and not (
            grown.dim() == tensor.dim() >= 1
            and grown.shape[1:] == tensor.shape[1:]
            and (tensor.shape[0], grown.shape[0]) == (len(domains), len(more))
        ):
            problems.append(
                f"{name} is {tuple(tensor.shape)} for {len(domains)} domains and {tuple(grown.shape)} for "
                f"{len(more)}; per-domain tensors must be stacked over the domains (first dimension)"
            )
    for name in after:
        m = _GATE_ROW.match(name)
        if name not in before and not (m and int(m.group(1)) == len(domains)):
            problems.append(
                f"{name} appears when a domain is added; per-domain modules belong in a ModuleList named 'gates' "
                "(one entry per domain), per-domain tensors stacked over the domains"
            )
    if problems:
        problems = [f"init_from cannot add a domain: {p}" for p in problems]
    return problems


def check_fusion(
    fusion: Fusion, stream_dims: Mapping[str, int] | None = None, domains: Sequence[str] = DOMAINS, *, seed: int = 0
) -> list[str]:
    """Every fusion rule (see the module docstring); ``[]`` when the fusion keeps them all.

    Args:
        fusion: the component instance.
        stream_dims: stream id -> width (default ``{"s1": 5, "s2": 3}``; a fusion whose
            params name streams, e.g. a gate's ``selector``, needs those ids).
        domains: the domain ids it is built for.
    """
    import torch

    if not isinstance(fusion, Fusion):
        return [f"expected a serkit.Fusion instance; got {type(fusion).__name__}"]
    stream_dims = dict(stream_dims or {"s1": 5, "s2": 3})
    problems = check_declaration_of(fusion, "fusion", "my_fusion")
    torch.manual_seed(seed)
    net, built = _built("build(stream_dims, domains)", lambda: fusion.build(stream_dims, list(domains)))
    if net is None:
        return problems + built
    problems += _fusion_rows(net, stream_dims, domains, seed)
    problems += _fusion_gradients(net, stream_dims, domains, seed)
    problems += check_init_from_layout(fusion, stream_dims, domains)
    return problems + _json_summary(net, "the network")


# --------------------------------------------------------------------------------- heads
def check_head(head: Head, in_dim: int = 8, n_classes: Sequence[int] = (2, 5), *, seed: int = 0) -> list[str]:
    """Every head rule (see the module docstring); ``[]`` when the head keeps them all.

    Args:
        head: the component instance.
        in_dim: the width of the fused representation it is built for.
        n_classes: the class counts it is built for (one network each).
    """
    import torch

    if not isinstance(head, Head):
        return [f"expected a serkit.Head instance; got {type(head).__name__}"]
    problems = check_declaration_of(head, "head", "my_head")
    for n in n_classes:
        torch.manual_seed(seed)
        try:
            net = head.build(in_dim, n)
        except Exception as err:
            problems.append(f"build({in_dim}, {n}) raised {type(err).__name__}: {err}")
            continue
        x = torch.randn(4, in_dim, generator=torch.Generator().manual_seed(seed))
        net.eval()
        with torch.no_grad():
            try:
                out = net(x)
            except Exception as err:
                problems.append(f"forward(x (B, {in_dim})) raised {type(err).__name__}: {err}")
                continue
            if not isinstance(out, torch.Tensor) or tuple(out.shape) != (4, n):
                problems.append(f"build({in_dim}, {n}): logits are {getattr(out, 'shape', out)}; expected (4, {n})")
                continue
            if not bool(out.isfinite().all()):
                problems.append(f"build({in_dim}, {n}): the logits have non-finite values")
            if not _close(torch.cat([net(x[i : i + 1]) for i in range(4)]), out):
                problems.append(f"build({in_dim}, {n}): a row's logits depend on the other rows of the batch")
            if not _close(net(x), out):
                problems.append(f"build({in_dim}, {n}): the logits are not deterministic in eval mode")
        net.train()
        x.requires_grad_(True)
        net(x).square().sum().backward()
        problems += _gradients(net, [x], f"build({in_dim}, {n})", ["the input"])
    return problems


# ---------------------------------------------------------------------- assert and pytest
def _raise(problems: list[str], component: Any) -> None:
    if problems:
        raise contract_broken(getattr(type(component), "kind", "") or "component", component, problems)


def assert_encoder_contract(encoder: Encoder, in_dim: int = 6, **kwargs: Any) -> None:
    """:func:`check_encoder`, raising an AssertionError that lists every problem."""
    _raise(check_encoder(encoder, in_dim, **kwargs), encoder)


def assert_fusion_contract(fusion: Fusion, stream_dims: Mapping[str, int] | None = None, **kwargs: Any) -> None:
    """:func:`check_fusion`, raising an AssertionError that lists every problem."""
    _raise(check_fusion(fusion, stream_dims, **kwargs), fusion)


def assert_head_contract(head: Head, in_dim: int = 8, **kwargs: Any) -> None:
    """:func:`check_head`, raising an AssertionError that lists every problem."""
    _raise(check_head(head, in_dim, **kwargs), head)


class EncoderContract:
    """Base class of an encoder's contract tests: override the ``encoder`` fixture (and the
    class attributes ``in_dim``, ``layers``, ``output`` when the encoder needs others)."""

    in_dim: ClassVar[int] = 6
    layers: ClassVar[int] = 1
    output: ClassVar[str] = "sequence"

    @contract_fixture
    def encoder(self) -> Encoder:
        """Override in the subclass: return the encoder instance to check."""
        raise NotImplementedError(f"{type(self).__name__} must override the 'encoder' fixture")

    def test_encoder_contract(self, encoder: Encoder) -> None:
        assert_encoder_contract(encoder, self.in_dim, layers=self.layers, output=self.output)


class FusionContract:
    """Base class of a fusion's contract tests: override the ``fusion`` fixture (and the class
    attribute ``stream_dims`` when its params name streams)."""

    stream_dims: ClassVar[dict[str, int]] = {"s1": 5, "s2": 3}
    domains: ClassVar[tuple[str, ...]] = DOMAINS

    @contract_fixture
    def fusion(self) -> Fusion:
        """Override in the subclass: return the fusion instance to check."""
        raise NotImplementedError(f"{type(self).__name__} must override the 'fusion' fixture")

    def test_fusion_contract(self, fusion: Fusion) -> None:
        assert_fusion_contract(fusion, self.stream_dims, domains=self.domains)


class HeadContract:
    """Base class of a head's contract tests: override the ``head`` fixture."""

    in_dim: ClassVar[int] = 8

    @contract_fixture
    def head(self) -> Head:
        """Override in the subclass: return the head instance to check."""
        raise NotImplementedError(f"{type(self).__name__} must override the 'head' fixture")

    def test_head_contract(self, head: Head) -> None:
        assert_head_contract(head, self.in_dim)
