from __future__ import annotations

import pytest
import torch
from monai.losses import DiceCELoss, DiceLoss

from t2d_monai.losses import SlabDiceLoss, SlabLoss


def _hand_dice_loss(prob: torch.Tensor, target: torch.Tensor, smooth: float = 1e-5) -> torch.Tensor:
    """The paper's formula, one value per sample over the whole slab, then averaged."""
    dims = tuple(range(1, prob.ndim))
    inter = (prob * target).sum(dims)
    denom = prob.sum(dims) + target.sum(dims)
    return (1.0 - (2.0 * inter + smooth) / (denom + smooth)).mean()


def test_matches_paper_formula_over_whole_slab():
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 9, 7)
    target = (torch.rand(2, 6, 9, 7) > 0.7).float()
    target[:, 2] = 0  # an empty slice weighs nothing on its own
    loss = SlabDiceLoss(sigmoid=True)(logits, target)
    expected = _hand_dice_loss(torch.sigmoid(logits), target)
    torch.testing.assert_close(loss, expected)
    # a per-slice DiceLoss is a different objective: the slab loss must not silently be that one
    per_slice = DiceLoss(sigmoid=True)(logits, target)
    assert not torch.allclose(loss, per_slice)


def test_multiclass_channels_are_regrouped_by_slice():
    torch.manual_seed(1)
    k, c = 3, 2
    logits = torch.randn(1, k * c, 5, 5)
    labels = torch.randint(0, c, (1, k, 5, 5))
    loss = SlabDiceLoss(num_classes=c, softmax=True, to_onehot_y=True)(logits, labels)
    # the same computed by hand: (N, C, k, H, W) softmax over classes
    grouped = logits.reshape(1, k, c, 5, 5).transpose(1, 2)
    expected = DiceLoss(softmax=True, to_onehot_y=True)(grouped, labels[:, None])
    torch.testing.assert_close(loss, expected)


def test_gradient_flows():
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    SlabDiceLoss(sigmoid=True)(logits, (torch.rand(2, 3, 8, 8) > 0.5).float()).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_ill_arg():
    with pytest.raises(ValueError, match="num_classes"):
        SlabDiceLoss(num_classes=0)
    with pytest.raises(ValueError, match=r"\(N, k \* 2, H, W\)"):
        SlabDiceLoss(num_classes=2, softmax=True)(torch.randn(1, 3, 4, 4), torch.zeros(1, 3, 4, 4))


def test_slab_loss_wraps_any_loss_as_one_3d_block():
    torch.manual_seed(2)
    logits = torch.randn(2, 4, 6, 6)
    target = (torch.rand(2, 4, 6, 6) > 0.8).float()
    wrapped = SlabLoss(DiceCELoss(sigmoid=True))(logits, target)
    expected = DiceCELoss(sigmoid=True)(logits[:, None], target[:, None])
    torch.testing.assert_close(wrapped, expected)
    with pytest.raises(ValueError, match="num_classes"):
        SlabLoss(DiceLoss(), num_classes=0)


def test_margin_leaves_the_end_slices_out():
    torch.manual_seed(3)
    logits = torch.randn(2, 6, 5, 4, requires_grad=True)
    target = (torch.rand(2, 6, 5, 4) > 0.7).float()
    loss = SlabLoss(DiceCELoss(sigmoid=True), margin=1)
    expected = SlabLoss(DiceCELoss(sigmoid=True))(logits[:, 1:5], target[:, 1:5])
    value = loss(logits, target)
    torch.testing.assert_close(value, expected)
    value.backward()
    assert logits.grad[:, [0, 5]].abs().sum() == 0 and logits.grad[:, 1:5].abs().sum() > 0
    # the end slices' predictions do not change the loss; an inner slice's do
    changed = logits.detach().clone()
    changed[:, 0] += 5.0
    torch.testing.assert_close(loss(changed, target), value.detach())
    changed[:, 2] += 5.0
    assert not torch.allclose(loss(changed, target), value.detach())


def test_margin_is_capped_so_the_centre_slice_stays():
    torch.manual_seed(4)
    one = torch.randn(1, 1, 4, 4)
    target = (torch.rand(1, 1, 4, 4) > 0.5).float()
    torch.testing.assert_close(SlabLoss(DiceLoss(sigmoid=True), margin=2)(one, target),
                               SlabLoss(DiceLoss(sigmoid=True))(one, target))
    three = torch.randn(1, 3, 4, 4)
    target3 = (torch.rand(1, 3, 4, 4) > 0.5).float()
    torch.testing.assert_close(SlabLoss(DiceLoss(sigmoid=True), margin=5)(three, target3),
                               SlabLoss(DiceLoss(sigmoid=True))(three[:, 1:2], target3[:, 1:2]))


@pytest.mark.parametrize("margin", [-1, 1.5, True])
def test_margin_must_be_a_non_negative_int(margin):
    with pytest.raises(ValueError, match="margin must be an int >= 0"):
        SlabLoss(DiceLoss(sigmoid=True), margin=margin)


def test_slab_dice_loss_takes_the_margin():
    torch.manual_seed(5)
    logits, target = torch.randn(2, 6, 5, 4), (torch.rand(2, 6, 5, 4) > 0.7).float()
    torch.testing.assert_close(SlabDiceLoss(sigmoid=True, margin=1)(logits, target),
                               SlabLoss(DiceLoss(sigmoid=True), margin=1)(logits, target))
    assert SlabDiceLoss(sigmoid=True).margin == 0
