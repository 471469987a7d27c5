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
from .registry import (
    TRAINING_RECIPES,
    ModelConfig,
    ModelTraits,
    create_model,
    describe_model,
    list_models,
    model_config,
    model_traits,
)
from .srcnn import SRCNN

__all__ = [
    "DCNN",
    "FORMULATIONS",
    "SRCNN",
    "SUPPORTED_SCALES",
    "TRAINING_RECIPES",
    "DyConvSR",
    "DynamicConv2d",
    "ModelConfig",
    "ModelTraits",
    "create_model",
    "describe_model",
    "dynamic_convs",
    "list_models",
    "model_config",
    "model_traits",
    "set_formulation",
    "set_temperature",
    "temperature_schedule",
]
