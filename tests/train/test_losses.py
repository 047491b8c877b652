"""Hand-computed values for every loss."""

import math

import pytest
import torch

from mmreward.train.losses import IGNORE, bt_loss, centering_loss, labels_tensor, regression_loss


def nls(x):  # -log sigmoid(x)
    return math.log1p(math.exp(-x))


def test_bt_loss_two_pairs_by_hand():
    r_a, r_b = torch.tensor([2.0, 0.5]), torch.tensor([1.0, 1.5])
    label = torch.tensor([1, -1])  # A wins pair 0 (Δ = 1), B wins pair 1 (Δ = 1.5 - 0.5 = 1)
    assert bt_loss(r_a, r_b, label).item() == pytest.approx(nls(1.0))
    label = torch.tensor([-1, 1])  # both wrong way round: Δ = -1 each
    assert bt_loss(r_a, r_b, label).item() == pytest.approx(nls(-1.0))


def test_bt_loss_margin_and_ties_dropped():
    r_a, r_b = torch.tensor([3.0, 0.0, 9.0]), torch.tensor([1.0, 0.0, 0.0])
    label = torch.tensor([1, 0, IGNORE])
    # Only pair 0 counts: Δ = 2, margin 0.5 -> -log σ(1.5).
    loss = bt_loss(r_a, r_b, label, margin=torch.tensor([0.5, 0.0, 0.0]))
    assert loss.item() == pytest.approx(nls(1.5))


def test_bt_loss_with_no_decided_pair_is_zero_but_differentiable():
    r_a = torch.tensor([1.0], requires_grad=True)
    loss = bt_loss(r_a, torch.tensor([0.0]), torch.tensor([0]))
    assert loss.item() == 0.0
    loss.backward()
    assert r_a.grad is not None


def test_rao_kupper_ties_by_hand():
    k = 5.0
    lk = math.log(k)
    r_a, r_b = torch.tensor([1.0, 0.2]), torch.tensor([0.0, 0.2])
    label = torch.tensor([1, 0])
    win = nls(1.0 - lk)
    tie = nls(0.0 - lk) + nls(0.0 - lk) - math.log(k * k - 1)
    loss = bt_loss(r_a, r_b, label, ties="rao_kupper", tie_k=k)
    assert loss.item() == pytest.approx((win + tie) / 2)
    # The tie loss is symmetric in A and B.
    swapped = bt_loss(r_b, r_a, torch.tensor([-1, 0]), ties="rao_kupper", tie_k=k)
    assert swapped.item() == pytest.approx(loss.item())


def test_rao_kupper_probabilities_sum_to_one():
    # P(A≻B) + P(B≻A) + P(tie) = 1, checked through the losses: exp(-loss) of each outcome.
    r_a, r_b = torch.tensor([0.7]), torch.tensor([-0.4])
    total = sum(math.exp(-bt_loss(r_a, r_b, torch.tensor([v]), ties="rao_kupper").item()) for v in (1, -1, 0))
    assert total == pytest.approx(1.0)


def test_multi_dimension_with_mask():
    r_a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    r_b = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    label = torch.tensor([[1, IGNORE], [IGNORE, -1]])
    # Entries (0,0): Δ = 1; (1,1): B preferred, Δ = 0 - 2 = -2.
    assert bt_loss(r_a, r_b, label).item() == pytest.approx((nls(1.0) + nls(-2.0)) / 2)
    # A (B,) margin broadcasts across dimensions.
    loss = bt_loss(r_a, r_b, label, margin=torch.tensor([1.0, 0.0]))
    assert loss.item() == pytest.approx((nls(0.0) + nls(-2.0)) / 2)


def test_centering_and_regression_by_hand():
    assert centering_loss(torch.tensor([1.0, -1.0]), torch.tensor([1.0, 2.0])).item() == pytest.approx(2.5)
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    target = torch.tensor([[2.0, float("nan")], [3.0, 1.0]])
    assert regression_loss(pred, target).item() == pytest.approx((1.0 + 0.0 + 9.0) / 3)


def test_labels_tensor_packs_dimensions_and_overall():
    out = labels_tensor([{"VQ": "A", "MQ": "tie"}, None], ["VQ", "MQ", "overall"], overall=["B", "A"])
    assert out.tolist() == [[1, 0, -1], [IGNORE, IGNORE, 1]]
    assert labels_tensor([{}], ["quality"], overall=["tie"]).tolist() == [[0]]


def test_bad_tie_mode_is_an_error():
    with pytest.raises(ValueError, match="ties must be"):
        bt_loss(torch.zeros(1), torch.zeros(1), torch.tensor([1]), ties="davidson")
