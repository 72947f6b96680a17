from __future__ import annotations

import weakref

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from monai.data import MetaTensor

from t2d_monai.inferers import ThickSliceInferer
from t2d_monai.networks import GroupCacheNetwork
from t2d_monai.utils import window_starts


@pytest.fixture(scope="session")
def counting(stand_in_esm):
    class Counting(stand_in_esm):
        """Counts f1 passes and windows, and how many of its own results are still alive at each call."""

        def __init__(self, **kwargs) -> None:
            super().__init__(**kwargs)
            self.f1_rows = self.windows = 0
            self.max_f1_rows_alive = self.max_outputs_alive = 0
            self._features: list[tuple[int, list[weakref.ref]]] = []
            self._outputs: list[weakref.ref] = []

        def encode_group(self, x_group):
            # rows of encode results still alive (a result counts while any of its scales is alive)
            self._features = [(rows, refs) for rows, refs in self._features if any(r() is not None for r in refs)]
            self.max_f1_rows_alive = max(self.max_f1_rows_alive, sum(rows for rows, _ in self._features))
            out = super().encode_group(x_group)
            self._features.append((x_group.shape[0], [weakref.ref(scale) for scale in out]))
            self.f1_rows += x_group.shape[0]
            return out

        def decode(self, features, out_size):
            self._outputs = [r for r in self._outputs if r() is not None]
            self.max_outputs_alive = max(self.max_outputs_alive, len(self._outputs))
            out = super().decode(features, out_size)
            self._outputs.append(weakref.ref(out))
            self.windows += out.shape[0]
            return out

    return Counting


def naive(inputs: torch.Tensor, net, num_slices: int, stride: int) -> torch.Tensor:
    """One window at a time through net.forward, with the documented padding and averaging."""
    n, _, h, w, depth = inputs.shape
    missing = max(num_slices - depth, 0)
    before, after = missing // 2, missing - missing // 2
    x = torch.cat([inputs[..., :1]] * before + [inputs] + [inputs[..., -1:]] * after, dim=-1)
    total, count = None, torch.zeros(x.shape[-1])
    starts = list(range(0, x.shape[-1] - num_slices + 1, stride))
    if starts[-1] != x.shape[-1] - num_slices:
        starts.append(x.shape[-1] - num_slices)
    for s in starts:
        logits = net(x[:, 0, :, :, s : s + num_slices].permute(0, 3, 1, 2))
        c = logits.shape[1] // num_slices
        p = logits.reshape(n, num_slices, c, h, w)
        p = torch.sigmoid(p) if c == 1 else torch.softmax(p, 2)
        if total is None:
            total = torch.zeros(n, c, h, w, x.shape[-1])
        total[..., s : s + num_slices] += p.permute(0, 2, 3, 4, 1)
        count[s : s + num_slices] += 1
    assert count.min() >= 1
    return (total / count)[..., before : before + depth]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    depth=st.integers(1, 23),
    num_slices=st.integers(1, 8),
    stride_frac=st.floats(0, 1),
    batch_size=st.integers(1, 5),
    out_channels=st.integers(1, 3),
    hw=st.tuples(st.integers(3, 9), st.integers(3, 9)),
    cache=st.booleans(),
    n=st.integers(1, 2),
)
def test_matches_naive_loop(stand_in_esm, depth, num_slices, stride_frac, batch_size, out_channels, hw, cache, n):
    torch.manual_seed(0)
    stride = 1 + int(stride_frac * (num_slices - 1))
    net = stand_in_esm(num_slices, out_channels, group_size=min(3, num_slices)).eval()
    x = torch.randn(n, 1, *hw, depth)
    inferer = ThickSliceInferer(num_slices, stride=stride, batch_size=batch_size, cache_f1=cache)
    out = inferer(x, net)
    assert out.shape == (n, out_channels, *hw, depth)
    with torch.no_grad():
        torch.testing.assert_close(out, naive(x, net, num_slices, stride), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("num_slices,depth,stride,batch_size", [(15, 40, 1, 4), (14, 33, 2, 3), (6, 20, 3, 1)])
def test_cache_reuses_f1_and_equals_plain_forward(counting, num_slices, depth, stride, batch_size):
    torch.manual_seed(0)
    net = counting(num_slices=num_slices, out_channels=2).eval()
    x = torch.randn(1, 1, 12, 10, depth)
    cached = ThickSliceInferer(num_slices, stride, batch_size, cache_f1=True)(x, net)
    starts = window_starts(depth, num_slices, stride)
    assert net.f1_rows == len({s + g for s in starts for g in net.group_starts})
    net.f1_rows = 0
    plain = ThickSliceInferer(num_slices, stride, batch_size, cache_f1=False)(x, net)
    assert net.f1_rows == len(starts) * len(net.group_starts)
    assert (cached - plain).abs().max() < 1e-5


def test_fifteen_slices_stride_one_five_times_fewer_f1_passes(counting):
    net = counting().eval()
    ThickSliceInferer(15, batch_size=8)(torch.randn(1, 1, 6, 6, 400), net)
    windows = 400 - 15 + 1
    assert net.windows == windows and net.f1_rows == 400 - 2  # every group start once vs 5 per window
    assert windows * 5 / net.f1_rows > 4.8


@pytest.mark.parametrize("batch_size,stride", [(1, 1), (4, 1), (3, 4)])
def test_memory_bounded_on_long_volume(counting, batch_size, stride):
    peaks = []
    for depth in (120, 480):
        net = counting().eval()
        ThickSliceInferer(15, stride=stride, batch_size=batch_size)(torch.randn(1, 1, 4, 4, depth), net)
        assert net.max_outputs_alive == 0  # the previous window batch is released before the next one runs
        assert net.max_f1_rows_alive <= 2 * ((batch_size - 1) * stride + 15)  # the docstring's bound
        peaks.append(net.max_f1_rows_alive)
    assert peaks[0] == peaks[1] >= 4  # independent of the volume's length (and the counting works)


def test_plain_network_and_wrappers(counting):
    torch.manual_seed(0)
    x = torch.randn(2, 1, 8, 9, 11)
    conv = torch.nn.Conv2d(5, 15, 3, padding=1).eval()  # no split forward, out_channels = 15 / 5 = 3
    out = ThickSliceInferer(5, batch_size=2)(x, conv)
    assert out.shape == (2, 3, 8, 9, 11)
    torch.testing.assert_close(out.sum(1), torch.ones(2, 8, 9, 11))  # softmax over 3 classes
    net = counting(num_slices=5, group_size=3).eval()
    wrapped = torch.nn.DataParallel(net)
    out = ThickSliceInferer(5)(x, wrapped)
    assert net.f1_rows == 2 * len({s + g for s in range(7) for g in net.group_starts})  # cache seen through .module
    torch.testing.assert_close(out, ThickSliceInferer(5, cache_f1=False)(x, net), atol=1e-5, rtol=1e-5)


def test_inplane_divisor_pads_and_crops():
    class Down8(torch.nn.Module):  # output H, W shrink unless divisible by 8
        def __init__(self):
            super().__init__()
            self.down = torch.nn.Conv2d(3, 8, 8, stride=8)
            self.up = torch.nn.ConvTranspose2d(8, 3, 8, stride=8)

        def forward(self, x):
            return self.up(self.down(x))

    x = torch.randn(1, 1, 13, 20, 6)
    with pytest.raises(ValueError, match="inplane_divisor"):
        ThickSliceInferer(3)(x, Down8())
    out = ThickSliceInferer(3, inplane_divisor=8)(x, Down8())
    assert out.shape == (1, 1, 13, 20, 6)
    aligned = ThickSliceInferer(3, inplane_divisor=(8, 6), activation="none")(x, torch.nn.Identity())
    torch.testing.assert_close(aligned, x)  # padding and cropping line up


def test_metatensor_devices_progress_and_grad(stand_in_esm):
    x = MetaTensor(torch.randn(1, 1, 6, 7, 9), affine=torch.diag(torch.tensor([2.0, 2.0, 3.0, 1.0])))
    net = stand_in_esm(num_slices=3)
    out = ThickSliceInferer(3, sw_device="cpu", device="cpu", progress=True)(x, net)
    assert isinstance(out, MetaTensor) and torch.equal(out.affine, x.affine)
    assert not out.requires_grad and out.device.type == "cpu"


@pytest.mark.parametrize("depth", [2, 6])
def test_activation_none_averages_logits(depth):
    x = torch.randn(1, 1, 4, 5, depth)
    out = ThickSliceInferer(3, activation="none")(x, torch.nn.Identity())  # each slice's "logit" is the slice
    torch.testing.assert_close(out, x)
    torch.testing.assert_close(ThickSliceInferer(3, activation="sigmoid")(x, torch.nn.Identity()), torch.sigmoid(x))


def test_ill_arg(stand_in_esm):
    for kwargs in ({"num_slices": 0}, {"stride": 0}, {"batch_size": 0}, {"num_slices": 3, "stride": 4},
                   {"inplane_divisor": 0}, {"activation": "relu"}, {"pad_mode": "wrap"}, {"batch_size": 1.5}):
        with pytest.raises(ValueError):
            ThickSliceInferer(**kwargs)
    net = stand_in_esm(num_slices=5)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W, D\)"):
        ThickSliceInferer(5)(torch.zeros(1, 5, 5, 5), net)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W, D\)"):
        ThickSliceInferer(5)(torch.zeros(1, 2, 5, 5, 5), net)
    with pytest.raises(ValueError, match="num_slices=5"):
        ThickSliceInferer(7)(torch.zeros(1, 1, 5, 5, 9), net)
    with pytest.raises(ValueError, match="out_channels"):
        ThickSliceInferer(4)(torch.zeros(1, 1, 5, 5, 9), torch.nn.Conv2d(4, 6, 1))


def test_group_cache_contract_is_checked(stand_in_esm):
    assert isinstance(stand_in_esm(num_slices=3), GroupCacheNetwork)

    class ClaimsCache(torch.nn.Conv2d):
        supports_group_cache = True  # but no encode_group / decode / group_starts

    with pytest.raises(TypeError, match=r"GroupCacheNetwork.*decode.*encode_group"):
        ThickSliceInferer(3)(torch.zeros(1, 1, 5, 5, 4), ClaimsCache(3, 3, 1))
    out = ThickSliceInferer(3, cache_f1=False)(torch.zeros(1, 1, 5, 5, 4), ClaimsCache(3, 3, 1))
    assert out.shape == (1, 1, 5, 5, 4)


def test_encode_group_must_return_a_list(stand_in_esm):
    class OneTensor(stand_in_esm):  # the contract before decoder="unet": one tensor per group
        def encode_group(self, x_group):
            return super().encode_group(x_group)[1]

    net = OneTensor(num_slices=3).eval()
    with pytest.raises(TypeError, match="list of tensors"):
        ThickSliceInferer(3)(torch.zeros(1, 1, 5, 5, 4), net)
