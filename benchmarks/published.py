"""Published reference points: DyConvSR paper, Table 1 (x2, Y-PSNR/SSIM). Not measured here."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    method: str
    params_k: float | None
    psnr: dict[str, float]  # benchmark -> Y-PSNR dB
    ssim: dict[str, float]


SOURCE = "Doan and Nguyen, DyConvSR, Table 1 (x2; published, not measured here)"
TABLE1_X2 = (
    Published("Bicubic", None, {"Set5": 34.01, "Set14": 31.27, "BSD100": 29.99, "Urban100": 28.65},
              {"Set5": .9309, "Set14": .8652, "BSD100": .8539, "Urban100": .8498}),
    Published("LapSRN", 251, {"Set5": 37.52, "Set14": 32.99, "BSD100": 31.80, "Urban100": 30.41},
              {"Set5": .9591, "Set14": .9124, "BSD100": .8952, "Urban100": .9103}),
    Published("CARN", 1592, {"Set5": 37.76, "Set14": 33.52, "BSD100": 32.09, "Urban100": 31.92},
              {"Set5": .9590, "Set14": .9166, "BSD100": .8978, "Urban100": .9256}),
    Published("IMDN", 694, {"Set5": 38.00, "Set14": 33.63, "BSD100": 32.19, "Urban100": 32.17},
              {"Set5": .9605, "Set14": .9177, "BSD100": .8996, "Urban100": .9283}),
    Published("LatticeNet", 756, {"Set5": 38.15, "Set14": 33.78, "BSD100": 32.25, "Urban100": 32.43},
              {"Set5": .9610, "Set14": .9193, "BSD100": .9005, "Urban100": .9302}),
    Published("SwinIR", 878, {"Set5": 38.14, "Set14": 33.86, "BSD100": 32.31, "Urban100": 32.76},
              {"Set5": .9611, "Set14": .9206, "BSD100": .9012, "Urban100": .9340}),
    Published("DyConvSR", 60, {"Set5": 35.98, "Set14": 31.57, "BSD100": 30.95, "Urban100": 28.51},
              {"Set5": .9497, "Set14": .9017, "BSD100": .8813, "Urban100": .8798}),
)
