"""The papers' published tables, as data (no torch): read by train.tables for the results tables and by the
benchmarks' figures, which a device install draws without the train extra."""
from __future__ import annotations

# DyConvSR paper, Table 1 (x2, PSNR/SSIM on Y): (method, params in K, {benchmark: (psnr, ssim)}).
PUBLISHED_DYCONVSR_X2: tuple[tuple[str, int | None, dict[str, tuple[float, float]]], ...] = (
    ("Bicubic", None,
     {"Set5": (34.01, 0.9309), "Set14": (31.27, 0.8652), "BSD100": (29.99, 0.8539), "Urban100": (28.65, 0.8498)}),
    ("LapSRN", 251,
     {"Set5": (37.52, 0.9591), "Set14": (32.99, 0.9124), "BSD100": (31.80, 0.8952), "Urban100": (30.41, 0.9103)}),
    ("CARN", 1592,
     {"Set5": (37.76, 0.9590), "Set14": (33.52, 0.9166), "BSD100": (32.09, 0.8978), "Urban100": (31.92, 0.9256)}),
    ("IMDN", 694,
     {"Set5": (38.00, 0.9605), "Set14": (33.63, 0.9177), "BSD100": (32.19, 0.8996), "Urban100": (32.17, 0.9283)}),
    ("LatticeNet", 756,
     {"Set5": (38.15, 0.9610), "Set14": (33.78, 0.9193), "BSD100": (32.25, 0.9005), "Urban100": (32.43, 0.9302)}),
    ("SwinIR", 878,
     {"Set5": (38.14, 0.9611), "Set14": (33.86, 0.9206), "BSD100": (32.31, 0.9012), "Urban100": (32.76, 0.9340)}),
    ("DyConvSR", 60,
     {"Set5": (35.98, 0.9497), "Set14": (31.57, 0.9017), "BSD100": (30.95, 0.8813), "Urban100": (28.51, 0.8798)}),
)  # fmt: skip
PUBLISHED_DYCONVSR_COLUMNS = ("Set5", "Set14", "BSD100", "Urban100")

# Dynamic-CNN paper, Table 3 (Set5): {network: {test scale: (psnr, ssim)}}.
PUBLISHED_CROSS_SCALE_SET5: dict[str, dict[int, tuple[float, float]]] = {
    "Static CNN x2": {2: (36.659, 0.954), 3: (29.435, 0.884), 4: (25.267, 0.766)},
    "Static CNN x3": {2: (30.575, 0.874), 3: (32.752, 0.909), 4: (28.722, 0.847)},
    "Static CNN x4": {2: (28.442, 0.813), 3: (29.002, 0.830), 4: (30.489, 0.8641)},
    "DCNN x2,3,4": {2: (36.344, 0.952), 3: (32.394, 0.904), 4: (30.086, 0.854)},
}
