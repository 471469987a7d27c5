"""PyTorch model zoo: DyConvSR, SRCNN, the multi-scale DCNN, and their dynamic convolution."""
from .common import SUPPORTED_SCALES
from .dcnn import DCNN
from .dyconvsr import DyConvSR
from .dynamic_conv import (
    FORMULATIONS,
    DynamicConv2d,
    dynamic_convs,
    set_formulation,
    set_temperature,
    temperature_schedule,
)
from .registry import ModelConfig, create_model, describe_model, list_models
from .srcnn import SRCNN

__all__ = [
    "DCNN",
    "FORMULATIONS",
    "SRCNN",
    "SUPPORTED_SCALES",
    "DyConvSR",
    "DynamicConv2d",
    "ModelConfig",
    "create_model",
    "describe_model",
    "dynamic_convs",
    "list_models",
    "set_formulation",
    "set_temperature",
    "temperature_schedule",
]
