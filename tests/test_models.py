from __future__ import annotations

import pytest
import torch

from runtime.errors import UserError
from train.models import (
    SUPPORTED_SCALES,
    DynamicConv2d,
    create_model,
    dynamic_convs,
    list_models,
    model_traits,
    set_temperature,
)


def _with(trait: str) -> list[str]:
    return [name for name in list_models() if getattr(model_traits(name), trait)]


def test_registry_lists_every_family() -> None:
    assert {"dyconvsr", "dyconvsr_static", "dyconvsr_authors", "srcnn", "dcnn"} <= set(list_models())
    assert set(list_models(include_tiny=False)) == {n for n in list_models() if not n.endswith("_tiny")}


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("scale", SUPPORTED_SCALES)
@pytest.mark.parametrize("size", [(16, 16), (17, 23), (13, 11), (3, 5), (1, 1)])
def test_output_is_exactly_scale_times_input(name: str, scale: int, size: tuple[int, int]) -> None:
    model = create_model(name, scale=scale).eval()
    x = torch.rand(2, 3, *size)
    if min(size) < model_traits(name).min_side:
        with pytest.raises(ValueError, match="pixels a side"), torch.no_grad():
            model(x)
        return
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 3, size[0] * scale, size[1] * scale)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", list_models())
def test_traits_describe_the_network(name: str) -> None:
    traits = model_traits(name)
    model = create_model(name, scale=2)
    assert model_traits(model) == traits
    assert callable(getattr(model, "forward_y", None)) == traits.y_channel
    assert callable(getattr(model, "set_scale", None)) == traits.multi_scale
    if traits.last_layer is not None:  # the reconstruction layer, which writes the one Y channel
        assert getattr(model, traits.last_layer).weight.shape[-4] == 1
    if traits.static_twin is not None:
        twin = create_model(traits.static_twin, scale=2)
        assert dynamic_convs(model) and not dynamic_convs(twin)
        assert type(twin) is type(model) and model_traits(twin).static_twin is None


def test_dyconvsr_x2_has_the_authors_parameter_count() -> None:
    params = sum(p.numel() for p in create_model("dyconvsr", scale=2).parameters())
    assert abs(params - 60_000) <= 0.02 * 60_000
    assert params == 59_970  # the authors' code, counted from its layer shapes


def test_static_twin_differs_only_in_the_dynamic_layer() -> None:
    dynamic = create_model("dyconvsr", scale=2)
    static = create_model("dyconvsr_static", scale=2)
    assert isinstance(dynamic.body, DynamicConv2d)
    assert not any(isinstance(m, DynamicConv2d) for m in static.modules())
    # K=4 kernels with bias plus the attention MLP (32*8 + 8*4) minus one plain 3x3 conv with bias.
    plain = 32 * 32 * 9 + 32
    bank = 4 * (32 * 32 * 9 + 32) + 32 * 8 + 8 * 4
    assert sum(p.numel() for p in dynamic.parameters()) - sum(p.numel() for p in static.parameters()) == bank - plain


@pytest.mark.parametrize(
    "switch", [{"high_frequency": False}, {"spatial_attention": False}, {"repeat_skip": False}, {"dynamic": False}]
)
def test_ablation_switches_change_the_network(switch: dict) -> None:
    x = torch.rand(1, 3, 12, 12)
    full = create_model("dyconvsr", scale=2).eval()
    ablated = create_model("dyconvsr", scale=2, **switch).eval()
    own = ablated.state_dict()
    shared = {k: v for k, v in full.state_dict().items() if k in own and own[k].shape == v.shape}
    ablated.load_state_dict(shared, strict=False)
    with torch.no_grad():
        assert ablated(x).shape == full(x).shape
        assert not torch.allclose(ablated(x), full(x))


def test_repeat_skip_is_nearest_neighbour_upsampling() -> None:
    # With every learned branch zeroed the network is exactly its skip connection.
    model = create_model("dyconvsr", scale=3, high_frequency=False, spatial_attention=False).eval()
    torch.nn.init.zeros_(model.tail.weight)
    torch.nn.init.zeros_(model.tail.bias)
    x = torch.rand(1, 3, 6, 8)
    with torch.no_grad():
        y = model(x)
    expected = torch.nn.functional.interpolate(x, scale_factor=3, mode="nearest")
    torch.testing.assert_close(y, expected)


def test_blur_is_a_fixed_buffer_not_a_parameter() -> None:
    model = create_model("dyconvsr", scale=2)
    names = {n for n, _ in model.named_parameters()}
    assert not any("blur" in n for n in names)
    assert "blur.kernel" in dict(model.named_buffers())
    assert torch.isclose(model.blur.kernel[0, 0].sum(), torch.tensor(1.0))


@pytest.mark.parametrize("name", _with("y_channel"))
def test_y_channel_models_keep_bicubic_chroma(name: str) -> None:
    # A grey input has neutral chroma; the output must stay grey (R = G = B).
    model = create_model(name, scale=2).eval()
    x = torch.rand(1, 1, 10, 10).expand(1, 3, 10, 10)
    with torch.no_grad():
        y = model(x)
    torch.testing.assert_close(y[:, 0], y[:, 1], atol=1e-5, rtol=0)
    torch.testing.assert_close(y[:, 1], y[:, 2], atol=1e-5, rtol=0)


def test_srcnn_is_9_1_5_with_64_and_32_maps() -> None:
    model = create_model("srcnn", scale=2)
    assert model.conv1.weight.shape == (64, 1, 9, 9)
    assert model.conv2.weight.shape == (32, 64, 1, 1)
    assert model.conv3.weight.shape == (1, 32, 5, 5)


@pytest.mark.parametrize("name", _with("multi_scale"))
def test_one_set_of_weights_serves_every_scale(name: str) -> None:
    model = create_model(name, scale=2).eval()
    x = torch.rand(1, 3, 9, 7)
    shapes = []
    for scale in SUPPORTED_SCALES:
        model.set_scale(scale)
        with torch.no_grad():
            shapes.append(tuple(model(x).shape))
    assert shapes == [(1, 3, 9 * s, 7 * s) for s in SUPPORTED_SCALES]


def test_dcnn_filters_depend_on_the_input() -> None:
    model = create_model("dcnn", scale=2).eval()
    smooth = torch.full((1, 64, 8, 8), 0.2)
    busy = torch.rand(1, 64, 8, 8)
    assert not torch.allclose(model.conv2.attention(smooth), model.conv2.attention(busy))


@pytest.mark.parametrize("name", list_models())
def test_gradients_reach_every_parameter(name: str) -> None:
    model = create_model(name, scale=2)
    set_temperature(model, 1.0)  # the end of the annealing: every kernel's attention has a gradient
    model.train()
    x = torch.rand(2, 3, 12, 12)
    loss = (model(x) - torch.rand(2, 3, 24, 24)).abs().mean()
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert p.grad.abs().sum() > 0, pname


def test_unknown_model_name_is_a_clear_error() -> None:
    with pytest.raises(UserError, match=r"unknown model 'dyconv'; available: .*dyconvsr"):
        create_model("dyconv")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scale": 5}, r"scale must be one of 2, 3, 4; got 5"),
        ({"colour": True}, r"unknown argument\(s\) colour; accepted: scale"),
        ({"channels": 0}, r"channels must be >= 1, got 0"),
        ({"num_kernels": 0}, r"num_kernels must be >= 1, got 0"),
    ],
)
def test_bad_config_is_a_clear_error(kwargs: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        create_model("dyconvsr", **kwargs)


@pytest.mark.parametrize("name", [n for n in _with("y_channel") if not model_traits(n).tiny])
def test_he_gaussian_init_scales_each_layer_by_its_fan_in(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, scale=2, init_std="he")
    for layer in (model.conv1, model.conv2, model.conv3):
        weight = layer.weight.detach()
        fan_in = weight.shape[-3] * weight.shape[-2] * weight.shape[-1]  # conv1: 81, conv2: 64, conv3: 800
        assert weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.15)
        assert abs(weight.mean().item()) < 0.2 * weight.std().item()
        assert torch.count_nonzero(layer.bias) == 0
    fixed = create_model(name, scale=2, init_std=1e-3)
    assert fixed.conv1.weight.std().item() == pytest.approx(1e-3, rel=0.15)


@pytest.mark.parametrize("bad", ["xavier", -1.0, 0.0])
def test_bad_init_std_is_a_clear_error(bad) -> None:
    with pytest.raises(UserError, match="init_std must be a positive number or 'he'"):
        create_model("srcnn", scale=2, init_std=bad)
