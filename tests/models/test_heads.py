"""Pooling and heads on hand-made hidden states."""

import pytest
import torch

from mmreward.models.heads import HEADS, POOLS, LinearHead, TwoLayerHead, apply_head

# (B=2, T=4, H=2): row 0 right-padded (2 real tokens), row 1 left-padded (3 real tokens).
HIDDEN = torch.tensor([
    [[1.0, 2.0], [3.0, 4.0], [9.0, 9.0], [9.0, 9.0]],
    [[8.0, 8.0], [5.0, 6.0], [7.0, 8.0], [1.0, 0.0]],
])
MASK = torch.tensor([[1, 1, 0, 0], [0, 1, 1, 1]])


def test_last_token_handles_left_and_right_padding():
    out = POOLS["last"](HIDDEN, attention_mask=MASK)
    assert torch.equal(out, torch.tensor([[3.0, 4.0], [1.0, 0.0]]))


def test_mean_over_real_tokens_and_over_response_tokens():
    out = POOLS["mean"](HIDDEN, attention_mask=MASK)
    expected = torch.tensor([[2.0, 3.0], [13.0 / 3, 14.0 / 3]])
    assert torch.allclose(out, expected)
    response = torch.tensor([[0, 1, 1, 0], [0, 0, 0, 0]])
    out = POOLS["mean"](HIDDEN, attention_mask=MASK, response_mask=response)
    # Row 0: only position 1 is both response and real; row 1 has no response tokens -> all real tokens.
    assert torch.allclose(out, torch.tensor([[3.0, 4.0], [13.0 / 3, 14.0 / 3]]))


def test_special_tokens_pick_each_token_position():
    ids = torch.tensor([[5, 100, 101, 0], [100, 7, 8, 101]])
    out = POOLS["special"](HIDDEN, input_ids=ids, reward_token_ids=[101, 100])
    assert out.shape == (2, 2, 2)
    assert torch.equal(out[0], torch.tensor([[9.0, 9.0], [3.0, 4.0]]))
    assert torch.equal(out[1], torch.tensor([[1.0, 0.0], [8.0, 8.0]]))


def test_special_tokens_missing_is_a_clear_error():
    ids = torch.tensor([[5, 100, 3, 0], [100, 7, 8, 101]])
    with pytest.raises(ValueError, match="reward token id 101 must occur exactly once per sequence"):
        POOLS["special"](HIDDEN, input_ids=ids, reward_token_ids=[101])


def test_two_layer_head_is_linear_silu_linear():
    head = TwoLayerHead(2, n_dims=1, inner_size=2)
    with torch.no_grad():
        head.fc1.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
        head.fc1.bias.zero_()
        head.fc2.weight.copy_(torch.tensor([[1.0, 1.0]]))
        head.fc2.bias.fill_(0.5)
    x = torch.tensor([[2.0, 3.0]])
    # fc1 -> (2, -3); SiLU(z) = z * sigmoid(z); fc2 sums and adds 0.5.
    silu = lambda z: z / (1 + torch.exp(torch.tensor(-z)))  # noqa: E731
    expected = silu(2.0) + silu(-3.0) + 0.5
    assert torch.allclose(head(x), expected.reshape(1, 1))


def test_registry_and_shapes():
    assert set(HEADS) == {"two_layer", "linear"}
    for cls in HEADS.values():
        head = cls(8, n_dims=3)
        assert head(torch.randn(5, 8)).shape == (5, 3)
    assert isinstance(HEADS["linear"](4), LinearHead)


def test_apply_head_takes_the_diagonal_for_per_dimension_tokens():
    head = LinearHead(2, n_dims=2)
    with torch.no_grad():
        head.fc.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        head.fc.bias.zero_()
    pooled = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # (B=1, K=2, H=2)
    # Token 0 feeds output 0 (=1.0), token 1 feeds output 1 (=4.0).
    assert torch.equal(apply_head(head, pooled), torch.tensor([[1.0, 4.0]]))
    assert apply_head(head, pooled[:, 0]).shape == (1, 2)
