"""Published reference points for the plots: the DyConvSR paper's Table 1 (x2, Y-PSNR/SSIM).

The numbers live once, in ``train.tables``; this module only reshapes them for plotting.
"""
from __future__ import annotations

from dataclasses import dataclass

from train.published import PUBLISHED_DYCONVSR_X2


@dataclass(frozen=True)
class Published:
    method: str
    params_k: float | None
    psnr: dict[str, float]  # benchmark -> Y-PSNR dB
    ssim: dict[str, float]


SOURCE = "Doan and Nguyen, DyConvSR, Table 1 (x2; published, not measured here)"
TABLE1_X2 = tuple(
    Published(method, params, {k: v[0] for k, v in values.items()}, {k: v[1] for k, v in values.items()})
    for method, params, values in PUBLISHED_DYCONVSR_X2
)
