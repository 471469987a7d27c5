from __future__ import annotations

import pytest
import torch

from train.models import DynamicConv2d, create_model, set_formulation, set_temperature, temperature_schedule


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("kernel_size", [1, 3, 5])
def test_grouped_and_branches_agree(batch: int, kernel_size: int) -> None:
    layer = DynamicConv2d(6, 5, kernel_size, num_kernels=4, temperature=1.0)
    x = torch.randn(batch, 6, 9, 11)
    layer.formulation = "grouped"
    grouped = layer(x)
    layer.formulation = "branches"
    branches = layer(x)
    assert grouped.shape == (batch, 5, 9, 11)
    assert (grouped - branches).abs().max().item() <= 1e-5


def test_grouped_matches_per_sample_reference() -> None:
    # Independent check: build each sample's kernel by hand and run a plain conv.
    layer = DynamicConv2d(4, 3, 3, num_kernels=3, temperature=2.0)
    x = torch.randn(2, 4, 7, 7)
    attention = layer.attention(x)
    out = layer(x)
    for b in range(2):
        w = sum(attention[b, k] * layer.weight[k] for k in range(3))
        bias = sum(attention[b, k] * layer.bias[k] for k in range(3))
        ref = torch.nn.functional.conv2d(x[b : b + 1], w, bias, padding=1)
        torch.testing.assert_close(out[b : b + 1], ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("batch", [1, 2])
def test_whole_models_agree_across_formulations(batch: int) -> None:
    for name in ("dyconvsr", "dcnn"):
        model = create_model(name, scale=2, temperature=1.0).eval()
        x = torch.rand(batch, 3, 15, 13)
        with torch.no_grad():
            a = set_formulation(model, "grouped")(x)
            b = set_formulation(model, "branches")(x)
        assert (a - b).abs().max().item() <= 1e-5, name


def test_attention_is_a_distribution_and_temperature_sharpens_it() -> None:
    layer = DynamicConv2d(8, 8, 3, num_kernels=4, temperature=30.0)
    with torch.no_grad():
        layer.attention.fc2.weight.mul_(50)  # spread the logits so the effect is visible
    x = torch.randn(2, 8, 6, 6)
    soft = layer.attention(x)
    layer.set_temperature(1.0)
    sharp = layer.attention(x)
    torch.testing.assert_close(soft.sum(dim=1), torch.ones(2))
    torch.testing.assert_close(sharp.sum(dim=1), torch.ones(2))
    assert not torch.allclose(soft, sharp)
    assert sharp.max() > soft.max()  # lower temperature -> peakier attention


def test_temperature_schedule_anneals_30_to_1() -> None:
    assert temperature_schedule(0.0) == 30.0
    assert temperature_schedule(0.05) == pytest.approx(15.5)
    assert temperature_schedule(0.1) == 1.0
    assert temperature_schedule(1.0) == 1.0
    with pytest.raises(ValueError, match="progress must be in"):
        temperature_schedule(1.5)


def test_set_temperature_reaches_every_layer_and_is_saved() -> None:
    model = create_model("dcnn", scale=2)
    set_temperature(model, 3.0)
    temps = [v.item() for k, v in model.state_dict().items() if k.endswith("temperature")]
    assert temps == [3.0, 3.0]
    with pytest.raises(ValueError, match="temperature must be > 0"):
        set_temperature(model, 0.0)


def test_kernel_bank_is_initialised_independently() -> None:
    layer = DynamicConv2d(16, 16, 3, num_kernels=4)
    flat = layer.weight.flatten(1)
    assert not torch.allclose(flat[0], flat[1])
    # nn.Conv2d's own scale: kaiming_uniform with a=sqrt(5) gives bound 1/sqrt(fan_in).
    assert flat.abs().max() <= 1 / (16 * 9) ** 0.5 + 1e-6


def test_unknown_formulation_is_rejected() -> None:
    layer = DynamicConv2d(4, 4, 3)
    with pytest.raises(ValueError, match=r"formulation must be one of grouped, branches; got 'fast'"):
        layer.formulation = "fast"
