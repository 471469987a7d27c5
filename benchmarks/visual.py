"""A visual comparison like the papers' Fig. 3: the same crop of each image, upscaled by every method.

Columns: HR, bicubic, SRCNN, DCNN, DyConvSR (PyTorch) and the INT8 engine of the DyConvSR
artifact (the lowest-precision engine measured when export wrote no INT8 variant; the title
says which). Each panel is labelled with the image's full Y-PSNR.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from runtime.metrics import y_channel

from .quality import MATLAB_BICUBIC, QualityResult

CROP = 48  # HR pixels a side: shown at ZOOM x (PANEL_INCHES * DPI / CROP), so the pixels themselves are visible
ZOOM = 4
DPI = 100
PANEL_INCHES = 1.2 * CROP * ZOOM / DPI  # a fifth more than the crop at ZOOM x: titles and margins take it
COLUMNS = (("srcnn", "SRCNN"), ("dcnn", "DCNN"), ("dyconvsr", "DyConvSR"))


def textured_crop(hr: np.ndarray, size: int = CROP) -> tuple[int, int]:
    """Top-left of the size x size window with the most Y variance (on a coarse grid): detail shows."""
    y = y_channel(hr.astype(np.float64))
    best, where = -1.0, (0, 0)
    step = max(size // 2, 1)
    for top in range(0, max(y.shape[0] - size, 0) + 1, step):
        for left in range(0, max(y.shape[1] - size, 0) + 1, step):
            v = float(y[top : top + size, left : left + size].var())
            if v > best:
                best, where = v, (top, left)
    return where


def _family(qualities: dict[str, QualityResult], family: str, scale: int) -> QualityResult | None:
    """The result of ``family`` at ``scale``: the real model if measured, else a variant (``*_tiny``)."""
    exact = qualities.get(f"{family}_x{scale}")
    if exact is not None:
        return exact
    return next((q for k, q in qualities.items() if k.startswith(f"{family}_") and k.endswith(f"_x{scale}")
                 and "static" not in k), None)


def _low_precision_label(result: QualityResult) -> str | None:
    for precision in ("int8", "bf16", "fp16"):
        hit = next((q.label for q in result.rows if q.precision == precision and q.label in result.images), None)
        if hit:
            return hit
    return None


def write_visual(qualities: dict[str, QualityResult], folder: Path, scale: int = 2, footer: str = "") -> str | None:
    """Write ``visual_comparison.png``; returns its file name, or None without the needed results.
    ``footer``: the machine and date line (benchmarks.markdown.provenance) printed under the panels."""
    main = _family(qualities, "dyconvsr", scale)
    if main is None or not main.hr:
        return None
    columns: list[tuple[str, QualityResult, str]] = [("bicubic", main, MATLAB_BICUBIC)]
    for key, title in COLUMNS:
        result = _family(qualities, key, scale)
        label = next((q.label for q in result.rows if q.backend == "pytorch"), None) if result else None
        if result and label:
            columns.append((title if result.trained else f"{title} (untrained)", result, label))
    low = _low_precision_label(main)
    if low:
        columns.append((f"DyConvSR {low}", main, low))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(main.hr)
    fig, axes = plt.subplots(len(names), len(columns) + 1, squeeze=False,
                             figsize=(PANEL_INCHES * (len(columns) + 1), (PANEL_INCHES + 0.4) * len(names) + 0.8))
    for i, name in enumerate(names):
        hr = main.hr[name]
        top, left = textured_crop(hr)
        window = (slice(top, top + CROP), slice(left, left + CROP))  # shown at ZOOM x: nearest, the pixels' own
        panels = [("HR", hr, None)]
        for title, result, label in columns:
            image = result.images.get(label, {}).get(name)
            row = next((q for q in result.rows if q.label == label), None)
            score = row.per_image.get(name, {}).get("psnr_y") if row else None
            panels.append((title, image, score))
        for ax, (title, image, score) in zip(axes[i], panels, strict=True):
            ax.axis("off")
            if image is None:
                continue
            ax.imshow(image[window], interpolation="nearest")
            named = "\n".join(textwrap.wrap(title, 26)[:2]) if i == 0 else ""  # the method once, atop its column
            ax.set_title("\n".join(part for part in (named, score is not None and f"{score:.2f} dB" or "") if part),
                         fontsize=8)
        axes[i][0].set_title(f"{textwrap.shorten(name, 26)}\nHR", fontsize=8)
    fig.suptitle(f"x{scale}: {CROP}x{CROP} HR crops at {ZOOM}x (nearest); dB = whole-image Y-PSNR" + (
        "" if low and "int8" in low else " (no INT8 variant: lowest precision shown)"), fontsize=9)
    if footer:
        fig.text(0.005, 0.003, "\n".join(textwrap.wrap(footer, 30 * (len(columns) + 1))), fontsize=7,
                 color="dimgrey", va="bottom")
    fig.tight_layout(rect=(0, 0.06 if footer else 0, 1, 1))
    out = folder / "visual_comparison.png"
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return out.name
