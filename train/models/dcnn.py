"""DCNN: the multi-scale dynamic CNN (Bhujel and Pant), one set of weights for x2, x3 and x4.

SRCNN's three stages (9x9 conv 1->64, ReLU; 1x1 64->32, ReLU; 5x5 32->1) on the Y channel of a
bicubic-upscaled input, where the second and third stages use filters produced from the input by
a filter-generating network (dynamic filter networks, De Brabandere et al.), so the same network
adapts its mapping to how blurred (i.e. how strongly upscaled) the input is.

The paper leaves the filter-generating network unspecified; our choices:
- Generated filters are per image, not per pixel: a per-pixel (local) filter cannot be lowered to
  constant-weight convolutions for TensorRT/INT8 and would break tiling.
- The generator reads the global average of the stage's input features (what it sees is the
  input image, through the previous stage), passes it through a 1x1 -> ReLU -> 1x1 MLP and mixes
  a bank of K basis filters with softmax weights. A DFN whose last layer is linear generates
  exactly such a mix (its last weight matrix *is* the bank); the softmax keeps the generated
  filter a convex combination, which trains stably at SRCNN's small learning rates.
- So each dynamic stage is a :class:`DynamicConv2d`, and every export lowering of DyConvSR's
  dynamic conv (branches, aggregate, ...) applies to the DCNN unchanged.
- Stage 1 stays static: it is the feature extractor the generator reads.
- The scale is not an input of the network (the paper's network does not see it either); it sets
  the bicubic pre-upscaling in ``forward`` and can be changed on a loaded model.
"""
from __future__ import annotations

from torch import nn

from .common import InitStd, check_scale, gaussian_std, init_gaussian
from .dynamic_conv import DynamicConv2d
from .srcnn import SRCNN


class DCNN(SRCNN):
    """SRCNN's layers and forward, with stages 2 and 3 replaced by dynamic convolutions."""

    def __init__(
        self,
        scale: int = 2,
        features: tuple[int, int] = (64, 32),
        kernel_sizes: tuple[int, int, int] = (9, 1, 5),
        num_kernels: int = 4,
        temperature: float = 30.0,
        init_std: InitStd | None = None,
    ) -> None:
        self.num_kernels, self.temperature = num_kernels, temperature  # read by stage() during super().__init__
        super().__init__(scale, features, kernel_sizes)
        if init_std is not None:
            init_gaussian(self, init_std)
            for layer in (self.conv2, self.conv3):
                nn.init.normal_(layer.weight, 0.0, gaussian_std(init_std, layer.weight))
                nn.init.zeros_(layer.bias)

    def stage(self, in_channels: int, out_channels: int, kernel_size: int) -> nn.Module:
        return DynamicConv2d(in_channels, out_channels, kernel_size, num_kernels=self.num_kernels,
                             temperature=self.temperature)

    def set_scale(self, scale: int) -> None:
        self.scale = check_scale(scale)
