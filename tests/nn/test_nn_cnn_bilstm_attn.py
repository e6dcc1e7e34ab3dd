from __future__ import annotations

import math

import pytest
import torch

from serkit.errors import ModelError
from serkit.nn import CnnBiLstmAttn


def small(**kw: object) -> CnnBiLstmAttn:
    torch.manual_seed(0)
    args = dict(channels=6, kernel_sizes=(3, 5), lstm_hidden=8, attention_dim=10, dropout=0.1)
    args.update(kw)
    return CnnBiLstmAttn(4, **args)  # type: ignore[arg-type]


def test_output_shape_and_out_dim() -> None:
    net = small(lstm_layers=2)
    out = net(torch.randn(3, 9, 4), torch.tensor([9, 4, 1]))
    assert out.shape == (3, 10)
    assert net.out_dim == 10
    assert net.lstm.input_size == 12  # 6 channels x 2 kernel sizes
    assert net.lstm.bidirectional and net.lstm.num_layers == 2


def test_paper_defaults() -> None:
    net = CnnBiLstmAttn(768)
    assert [c.out_channels for c in net.convs] == [64, 64]
    assert [c.kernel_size[0] for c in net.convs] == [3, 5]
    assert net.lstm.hidden_size == 128 and net.lstm.num_layers == 1
    assert net.out_dim == 256


@pytest.mark.parametrize("layers", [1, 2])
def test_padding_never_changes_the_output(layers: int) -> None:
    net = small(lstm_layers=layers).eval()
    torch.manual_seed(1)
    seqs = [torch.randn(n, 4) for n in (7, 3, 1, 12)]
    alone = torch.cat([net(s[None], torch.tensor([len(s)])) for s in seqs])

    batch = torch.randn(4, 15, 4) * 1e3  # garbage everywhere, then the real frames
    batch[1, 10] = float("nan")
    batch[2, 5] = float("inf")
    for i, s in enumerate(seqs):
        batch[i, : len(s)] = s
    together = net(batch, torch.tensor([len(s) for s in seqs]))
    assert torch.isfinite(together).all()
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)


def test_matches_a_hand_computation_of_the_attention() -> None:
    net = small(kernel_sizes=(3,)).eval()
    x = torch.randn(1, 6, 4)
    with torch.no_grad():
        conv = torch.relu(net.convs[0](x.transpose(1, 2))).transpose(1, 2)  # (1, 6, 6)
        out, _ = net.lstm(conv)  # unpacked: the whole sequence is valid
        h = net.lstm.hidden_size
        last = torch.cat([out[0, -1, :h], out[0, 0, h:]])  # final forward, final backward
        q = net.w_q.weight @ last
        keys = out[0] @ net.w_k.weight.T
        values = out[0] @ net.w_v.weight.T
        weights = torch.softmax(keys @ q / math.sqrt(10), dim=0)
        expected = weights @ values
        got = net(x, torch.tensor([6]))[0]
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)


def test_attention_weights_are_zero_on_padding_and_sum_to_one() -> None:
    net = small().eval()
    w = net.attention_weights(torch.randn(2, 5, 4), torch.tensor([5, 2]))
    assert w.shape == (2, 5)
    assert w[1, 2:].abs().max().item() == 0.0
    torch.testing.assert_close(w.sum(dim=1), torch.ones(2))


def test_one_frame_sequence_attends_to_its_only_frame() -> None:
    net = small().eval()
    w = net.attention_weights(torch.randn(2, 4, 4), torch.tensor([1, 4]))
    assert w[0].tolist() == [1.0, 0.0, 0.0, 0.0]


def test_gradients_reach_every_parameter() -> None:
    net = small(lstm_layers=2)
    net(torch.randn(3, 8, 4), torch.tensor([8, 5, 2])).pow(2).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum().item() > 0, name


def test_no_gradient_reaches_padding_frames() -> None:
    net = small()
    x = torch.randn(2, 6, 4, requires_grad=True)
    net(x, torch.tensor([6, 3])).sum().backward()
    assert x.grad[1, 3:].abs().max().item() == 0.0
    assert x.grad[1, :3].abs().max().item() > 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kernel_sizes": ()}, "cnn_bilstm_attn: kernel_sizes must not be empty"),
        (
            {"kernel_sizes": (3, 4)},
            "cnn_bilstm_attn: kernel sizes must be odd (same padding); got 4",
        ),
        ({"channels": 0}, "cnn_bilstm_attn: channels must be a positive int; got 0"),
        ({"dropout": 1.0}, "cnn_bilstm_attn: dropout must be in [0, 1); got 1.0"),
    ],
)
def test_constructor_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ModelError) as info:
        CnnBiLstmAttn(4, **kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_forward_errors_name_the_network() -> None:
    net = small()
    with pytest.raises(ModelError, match=r"^cnn_bilstm_attn: x has feature dimension 3"):
        net(torch.randn(1, 5, 3), torch.tensor([5]))
    with pytest.raises(ModelError, match=r"every length must be in \[1, L=5\]; got min 0"):
        net(torch.randn(2, 5, 4), torch.tensor([5, 0]))
