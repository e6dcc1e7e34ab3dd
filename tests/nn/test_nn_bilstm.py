"""The padded BiLSTM path equals the packed one, item by item and in gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from serkit.errors import ModelError
from serkit.nn import CnnBiLstmAttn
from serkit.nn.bilstm import choose_impl, reverse_within_lengths, run_bilstm
from serkit.nn.masking import lengths_to_mask

LENGTHS = [11, 3, 7, 1, 11, 5]


def _lstm(layers: int, in_dim: int = 5, hidden: int = 7) -> nn.LSTM:
    torch.manual_seed(layers)
    return nn.LSTM(in_dim, hidden, num_layers=layers, bidirectional=True, batch_first=True).double()


def _batch(in_dim: int = 5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    lengths = torch.tensor(LENGTHS)
    x = torch.randn(len(LENGTHS), max(LENGTHS), in_dim, generator=gen, dtype=torch.double)
    x = x.masked_fill(~lengths_to_mask(lengths).unsqueeze(-1), 100.0)  # loud padding
    return x, lengths, lengths_to_mask(lengths)


def test_reverse_within_lengths_by_hand() -> None:
    x = torch.arange(10.0).view(2, 5, 1)
    out = reverse_within_lengths(x, torch.tensor([3, 5]))
    assert out[:, :, 0].tolist() == [[2, 1, 0, 3, 4], [9, 8, 7, 6, 5]]
    torch.testing.assert_close(reverse_within_lengths(out, torch.tensor([3, 5])), x)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_padded_equals_packed_in_outputs_final_states_and_gradients(layers: int) -> None:
    lstm = _lstm(layers)
    x, lengths, mask = _batch()
    results = {}
    for impl in ("packed", "padded"):
        lstm.zero_grad()
        xi = x.clone().requires_grad_(True)
        out, last = run_bilstm(lstm, xi, lengths, mask, impl)
        (out.pow(2).sum() + last.sin().sum()).backward()
        grads = [p.grad.clone() for p in lstm.parameters()]
        results[impl] = (out.detach(), last.detach(), xi.grad, grads)
    (o1, l1, g1, p1), (o2, l2, g2, p2) = results["packed"], results["padded"]
    torch.testing.assert_close(o2, o1, rtol=0, atol=1e-12)
    torch.testing.assert_close(l2, l1, rtol=0, atol=1e-12)
    torch.testing.assert_close(g2, g1, rtol=0, atol=1e-12)
    for a, b in zip(p2, p1, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
    assert (o2[~mask] == 0).all()  # padded outputs are 0, as pad_packed_sequence gives
    assert (g2[~mask] == 0).all()  # and nothing flows into padding


def test_a_ragged_batch_equals_each_item_alone() -> None:
    lstm = _lstm(2)
    x, lengths, mask = _batch()
    out, last = run_bilstm(lstm, x, lengths, mask, "padded")
    for i, n in enumerate(LENGTHS):
        one = x[i : i + 1, :n]
        o, h = run_bilstm(lstm, one, torch.tensor([n]), lengths_to_mask(torch.tensor([n])), "padded")
        torch.testing.assert_close(out[i, :n], o[0], rtol=0, atol=1e-12)
        torch.testing.assert_close(last[i], h[0], rtol=0, atol=1e-12)


def test_final_states_are_the_forward_end_and_backward_start() -> None:
    lstm = _lstm(1)
    x, lengths, mask = _batch()
    out, last = run_bilstm(lstm, x, lengths, mask, "padded")
    h = lstm.hidden_size
    for i, n in enumerate(LENGTHS):
        torch.testing.assert_close(last[i], torch.cat([out[i, n - 1, :h], out[i, 0, h:]]))


def test_dropout_between_layers_only_in_training() -> None:
    lstm = nn.LSTM(5, 7, num_layers=2, bidirectional=True, batch_first=True, dropout=0.5).double()
    x, lengths, mask = _batch()
    lstm.eval()
    a, _ = run_bilstm(lstm, x, lengths, mask, "padded")
    torch.testing.assert_close(a, run_bilstm(lstm, x, lengths, mask, "packed")[0], rtol=0, atol=1e-12)
    lstm.train()
    torch.manual_seed(0)
    b, _ = run_bilstm(lstm, x, lengths, mask, "padded")
    torch.manual_seed(0)
    c, _ = run_bilstm(lstm, x, lengths, mask, "padded")
    assert not torch.allclose(a, b)
    torch.testing.assert_close(b, c)  # seeded: the same masks


def test_choose_impl() -> None:
    assert choose_impl("auto", torch.device("cpu")) == "padded"
    assert choose_impl("auto", torch.device("cuda")) == "packed"
    assert choose_impl("packed", torch.device("cpu")) == "packed"
    with pytest.raises(ModelError, match=r"lstm impl must be one of \['auto', 'padded', 'packed'\]; got 'fast'"):
        choose_impl("fast", torch.device("cpu"))


def test_needs_a_bidirectional_batch_first_lstm() -> None:
    x, lengths, mask = _batch()
    with pytest.raises(ModelError, match="bidirectional=True, batch_first=True"):
        run_bilstm(nn.LSTM(5, 7, batch_first=True).double(), x, lengths, mask)


def test_cnn_bilstm_attn_gives_the_same_numbers_with_either_impl() -> None:
    torch.manual_seed(0)
    packed = CnnBiLstmAttn(4, channels=6, kernel_sizes=(3,), lstm_hidden=8, lstm_layers=2, lstm_impl="packed")
    padded = CnnBiLstmAttn(4, channels=6, kernel_sizes=(3,), lstm_hidden=8, lstm_layers=2, lstm_impl="padded")
    padded.load_state_dict(packed.state_dict())  # same parameter names: checkpoints still load
    x = torch.randn(5, 9, 4)
    lengths = torch.tensor([9, 2, 5, 1, 8])
    packed.eval()
    padded.eval()
    torch.testing.assert_close(padded(x, lengths), packed(x, lengths), rtol=0, atol=1e-6)
    with pytest.raises(ModelError, match="got 'cudnn'"):
        CnnBiLstmAttn(4, lstm_impl="cudnn")
