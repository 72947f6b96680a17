from __future__ import annotations

import math
import weakref

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from monai.data import MetaTensor

from t2d_monai.inferers import ThickSliceInferer, slab_weights
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


def gaussian_weights(num_slices: int, sigma_scale: float = 0.125) -> list[float]:
    """The documented Gaussian over a window's positions, written out: centred, sigma = sigma_scale * k, >= 1e-3."""
    sigma = sigma_scale * num_slices
    raw = [math.exp(-((j - (num_slices - 1) / 2) ** 2) / (2 * sigma**2)) for j in range(num_slices)]
    return [max(v, min(raw), 1e-3) for v in raw]


def naive(inputs: torch.Tensor, net, num_slices: int, stride: int, weights: list[float] | None = None) -> torch.Tensor:
    """One window at a time through net.forward, with the documented padding and (weighted) averaging."""
    weights = [1.0] * num_slices if weights is None else weights
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
        for j in range(num_slices):  # slice s + j is at position j of this window
            total[..., s + j] += weights[j] * p[:, j]
            count[s + j] += weights[j]
    assert count.min() > 0
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
    gaussian=st.booleans(),
)
def test_matches_naive_loop(stand_in_esm, depth, num_slices, stride_frac, batch_size, out_channels, hw, cache, n, gaussian):
    torch.manual_seed(0)
    stride = 1 + int(stride_frac * (num_slices - 1))
    net = stand_in_esm(num_slices, out_channels, group_size=min(3, num_slices)).eval()
    x = torch.randn(n, 1, *hw, depth)
    weighting = "gaussian" if gaussian else "uniform"
    inferer = ThickSliceInferer(num_slices, stride=stride, batch_size=batch_size, cache_f1=cache, weighting=weighting)
    out = inferer(x, net)
    assert out.shape == (n, out_channels, *hw, depth)
    weights = gaussian_weights(num_slices) if gaussian else None
    with torch.no_grad():
        torch.testing.assert_close(out, naive(x, net, num_slices, stride, weights), atol=1e-5, rtol=1e-5)


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


def test_inplane_min_size_pads_and_crops():
    seen = []

    class Record(torch.nn.Module):  # the identity that remembers the window size it was given
        def forward(self, x):
            seen.append(tuple(x.shape[2:]))
            return x

    x = torch.randn(1, 1, 1, 12, 4)  # slices one pixel high: a single slice seen from another view
    out = ThickSliceInferer(3, inplane_min_size=32, activation="none")(x, Record())
    assert set(seen) == {(32, 32)}
    torch.testing.assert_close(out, x)  # padding and cropping line up
    seen.clear()
    ThickSliceInferer(3, inplane_min_size=(4, 5), inplane_divisor=4, activation="none")(torch.randn(1, 1, 1, 9, 4), Record())
    assert set(seen) == {(4, 12)}  # at least (4, 5), then multiples of 4; a side above the minimum is kept
    with pytest.raises(ValueError, match="inplane_min_size"):
        ThickSliceInferer(3, inplane_min_size=0)


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
                   {"inplane_divisor": 0}, {"activation": "relu"}, {"pad_mode": "wrap"}, {"batch_size": 1.5},
                   {"weighting": "triangle"}, {"sigma_scale": 0}, {"sigma_scale": -0.1}, {"sigma_scale": "0.1"},
                   {"sigma_scale": True}, {"sigma_scale": float("inf")}):
        with pytest.raises(ValueError):
            ThickSliceInferer(**kwargs)
    with pytest.raises(ValueError, match="gaussian"):
        ThickSliceInferer(weighting="gauss ")
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


@pytest.mark.parametrize("num_slices", [1, 2, 4, 5, 15])
@pytest.mark.parametrize("sigma_scale", [0.125, 0.3])
def test_slab_weights(num_slices, sigma_scale):
    gauss = slab_weights(num_slices, "gaussian", sigma_scale)
    assert gauss.shape == (num_slices,) and bool((gauss > 0).all())
    torch.testing.assert_close(gauss, gauss.flip(0))  # symmetric
    centre = (num_slices - 1) // 2
    assert gauss[centre] == gauss.max() and (num_slices % 2 == 0 or gauss[centre] == 1.0)
    assert bool((gauss[: centre + 1].diff() >= 0).all())  # rises up to the centre
    torch.testing.assert_close(gauss, torch.tensor(gaussian_weights(num_slices, sigma_scale)))
    assert torch.equal(slab_weights(num_slices), torch.ones(num_slices))  # uniform


# (num_slices, depth, stride, batch_size): overlap, stride > 1, D < num_slices (padding), one window, tail window
GAUSSIAN_CASES = [(5, 17, 1, 3), (6, 20, 2, 4), (7, 4, 1, 2), (6, 6, 1, 1), (4, 11, 3, 2)]


@pytest.mark.parametrize("cache", [True, False])
@pytest.mark.parametrize("num_slices,depth,stride,batch_size", GAUSSIAN_CASES)
def test_gaussian_weighting_matches_naive_weighted_loop(stand_in_esm, num_slices, depth, stride, batch_size, cache):
    torch.manual_seed(0)
    net = stand_in_esm(num_slices, 2, group_size=min(3, num_slices)).eval()
    x = torch.randn(2, 1, 7, 6, depth)
    inferer = ThickSliceInferer(num_slices, stride, batch_size, cache_f1=cache, weighting="gaussian", sigma_scale=0.2)
    out = inferer(x, net)
    with torch.no_grad():
        expected = naive(x, net, num_slices, stride, gaussian_weights(num_slices, 0.2))
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
        uniform = ThickSliceInferer(num_slices, stride, batch_size, cache_f1=cache, weighting="uniform")(x, net)
        torch.testing.assert_close(uniform, naive(x, net, num_slices, stride), atol=1e-5, rtol=1e-5)
        assert torch.equal(uniform, ThickSliceInferer(num_slices, stride, batch_size, cache_f1=cache)(x, net))
        if len(window_starts(max(depth, num_slices), num_slices, stride)) == 1:  # every slice in one window
            torch.testing.assert_close(out, uniform)
        else:
            assert not torch.allclose(out, uniform, atol=1e-4)


class WindowStart(torch.nn.Module):
    """Stand-in network for stride-1 windows run in order: every output value is the window's start slice."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):  # (B, k, H, W) windows in order -> every value = the window's start
        out = torch.arange(self.calls, self.calls + x.shape[0], dtype=x.dtype).reshape(-1, 1, 1, 1)
        self.calls += x.shape[0]
        return out.expand_as(x).clone()


def test_gaussian_weighting_favours_the_window_centre():
    """activation="none" and an identity network whose output marks the window: each slice's value is the
    weighted mean of the starts of the windows that cover it, pulled towards the window centred on it."""

    x = torch.zeros(1, 1, 2, 2, 13)
    out = ThickSliceInferer(5, activation="none", weighting="gaussian")(x, WindowStart())[0, 0, 0, 0]
    # slice 6 is covered by windows 2..6 (its centred window starts at 4): a symmetric mean, 4
    torch.testing.assert_close(out[6], torch.tensor(4.0))
    plain = ThickSliceInferer(5, activation="none")(x, WindowStart())[0, 0, 0, 0]
    centred = torch.arange(13.0) - 2  # start of the window centred on each slice
    inner = slice(2, 11)
    assert bool(((out - centred)[inner].abs() <= (plain - centred)[inner].abs() + 1e-6).all())
    assert abs(out[2] - centred[2]) < abs(plain[2] - centred[2]) - 0.5  # slice 2: windows 0-2, uniform mean 1


def test_position_weights_given_as_numbers(stand_in_esm):
    """A sequence of weights is used as given: the same as "gaussian" when it is the Gaussian's weights, and an
    almost one-hot sequence gives each slice (away from the volume's ends) its value at that window position."""
    torch.manual_seed(5)
    net = stand_in_esm(5)
    x = torch.rand(1, 1, 6, 7, 11)
    gauss = slab_weights(5, "gaussian")
    torch.testing.assert_close(ThickSliceInferer(5, weighting=gauss.tolist())(x, net),
                               ThickSliceInferer(5, weighting="gaussian")(x, net))
    out = ThickSliceInferer(5, activation="none", weighting=[1e-9, 1e-9, 1.0, 1e-9, 1e-9])(x, WindowStart())
    # WindowStart predicts, for every slice, the start of its window: position 2 means start = slice - 2
    torch.testing.assert_close(out[0, 0, 0, 0, 2:-2], torch.arange(0.0, 7.0), atol=1e-6, rtol=0)


@pytest.mark.parametrize("weights", [[1, 1, 1], [1, 1, 0, 1, 1], [1, 1, -1, 1, 1], [1, 1, float("inf"), 1, 1],
                                     [1, 1, True, 1, 1]])
def test_position_weights_must_be_positive_and_one_per_position(weights):
    with pytest.raises(ValueError, match="weighting must be"):
        ThickSliceInferer(5, weighting=weights)
    with pytest.raises(ValueError, match="5 positive numbers"):
        slab_weights(5, weights)


def test_pad_ends_sees_the_end_slices_at_every_window_position():
    """With pad_ends every slice, the first and last included, is held by a window at every position: weights
    (almost) one-hot at position 2 give slice s the window that starts 2 slices before it (in padded order)."""
    depth, k = 11, 5
    x = torch.zeros(1, 1, 2, 2, depth)
    centre = [1e-9, 1e-9, 1.0, 1e-9, 1e-9]
    padded = ThickSliceInferer(k, activation="none", weighting=centre, pad_ends=True)(x, WindowStart())[0, 0, 0, 0]
    # padded slice s + (k - 1) sits at position 2 of the window starting at s + k - 3, the (s + k - 3)-th window
    torch.testing.assert_close(padded, torch.arange(depth, dtype=torch.float32) + k - 3, atol=1e-6, rtol=0)
    plain = ThickSliceInferer(k, activation="none", weighting=centre)(x, WindowStart())[0, 0, 0, 0]
    assert plain[0] == 0.0  # without padding the first slice only ever sits at position 0 of window 0


@pytest.mark.parametrize("cache", [True, False])
def test_pad_ends_changes_only_the_slices_near_the_ends(stand_in_esm, cache):
    torch.manual_seed(6)
    net = stand_in_esm(5)
    x = torch.rand(1, 1, 6, 7, 16)
    plain = ThickSliceInferer(5, cache_f1=cache)(x, net)
    padded = ThickSliceInferer(5, cache_f1=cache, pad_ends=True)(x, net)
    assert padded.shape == plain.shape
    # slices 4..11 are held by the same five windows either way; slice 0 gets four more (of padded context)
    torch.testing.assert_close(padded[..., 4:12], plain[..., 4:12])
    assert not torch.allclose(padded[..., 0], plain[..., 0])
    torch.testing.assert_close(padded, ThickSliceInferer(5, cache_f1=not cache, pad_ends=True)(x, net))


def test_pad_ends_with_reflect_shows_the_end_windows_a_mirrored_volume(stand_in_esm):
    """pad_mode "reflect": the windows over the padded ends hold the volume mirrored at its end slices, so the result
    equals the plain inferer's over the explicitly mirrored volume, cropped back (and differs from "edge")."""
    torch.manual_seed(7)
    net = stand_in_esm(5)
    x = torch.rand(1, 1, 6, 7, 12)
    mirrored = torch.cat([x.flip(-1)[..., -5:-1], x, x.flip(-1)[..., 1:5]], dim=-1)  # slices 4..1 | 0..11 | 10..7
    want = ThickSliceInferer(5)(mirrored, net)[..., 4:16]
    got = ThickSliceInferer(5, pad_ends=True, pad_mode="reflect")(x, net)
    torch.testing.assert_close(got, want)
    assert not torch.allclose(got[..., 0], ThickSliceInferer(5, pad_ends=True)(x, net)[..., 0])


def test_pad_ends_must_be_a_bool():
    with pytest.raises(ValueError, match="pad_ends must be True or False"):
        ThickSliceInferer(5, pad_ends="true")


@pytest.mark.parametrize("depth", [2, 5, 9, 20])
@pytest.mark.parametrize("stride", [1, 3])
@pytest.mark.parametrize("pad_ends", [False, True])
def test_slice_padding_is_the_padding_the_windows_cover(depth, stride, pad_ends):
    """``slice_padding(D)``: up to one window, plus ``k - 1`` per end with pad_ends; ``window_starts(D)``: the
    windows that fit the padded depth at the inferer's stride (or another), exactly those ``__call__`` runs."""
    k = 5
    inferer = ThickSliceInferer(k, stride=stride, batch_size=2, pad_ends=pad_ends)
    before, after = inferer.slice_padding(depth)
    missing = max(k - depth, 0)
    end = k - 1 if pad_ends else 0
    assert (before, after) == (missing // 2 + end, missing - missing // 2 + end)
    net = WindowStart()
    assert inferer.window_starts(depth) == window_starts(depth + before + after, k, stride)
    assert inferer.window_starts(depth, stride=2) == window_starts(depth + before + after, k, 2)
    inferer(torch.rand(1, 1, 3, 4, depth), net)
    assert net.calls == len(inferer.window_starts(depth))
