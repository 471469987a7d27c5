"""Result tables in the papers' formats, as markdown and JSON.

- ``dyconvsr``: the DyConvSR paper's Table 1 (method, #params (K), PSNR/SSIM on the Y channel per
  benchmark), one table per scale; at x2 the paper's own rows sit above ours, labelled
  "(published)". Our benchmark folders share a column with a published one when the names match
  (set5 -> Set5); BSD68 is 68 of BSD100's 100 images, so it gets its own column.
- ``cross-scale``: the dynamic-CNN paper's Table 3 (rows: test scale; columns: each network,
  e.g. static SRCNN x2/x3/x4 and the multi-scale DCNN), with the paper's Set5 numbers beside.
- ``colour``: the dynamic-CNN paper's Table 2 (rows: metric; columns: bicubic and network in
  YCbCr, HSV and RGB).
Every table is followed by the full metric list (Y-PSNR, Y-SSIM, RGB PSNR, Y-WPSNR, Y-MS-SSIM).
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.errors import UserError
from runtime.files import atomic_write_bytes, file_group
from runtime.metrics import Scores
from runtime.safefiles import writing_output

from .evaluate import BICUBIC, COLOUR_SPACES, PRE_UPSCALE, SetResult
from .published import PUBLISHED_CROSS_SCALE_SET5, PUBLISHED_DYCONVSR_COLUMNS, PUBLISHED_DYCONVSR_X2

TABLES = ("dyconvsr", "cross-scale", "colour")
SPACE_TITLES = {"ycbcr": "YCbCr", "hsv": "HSV", "rgb": "RGB"}

PROTOCOL = (
    "Y = BT.601 luma, border crop = scale, float64 on 0-255; HR cropped to a multiple of the scale; "
    "LR = MATLAB-compatible antialiased bicubic imresize (runtime/resize.py), uint8; SR rounded to uint8; "
    "a set's value is the mean over its images. WPSNR: PSNR of the error weighted by Checkmark's noise "
    "visibility function (see runtime/metrics.py); the dynamic-CNN paper does not define its WPSNR, so "
    "compare it only within our tables."
)
# What --protocol authors measures (runtime.quality.PROTOCOLS["authors"]): their eval.py and utils/metrics.py.
AUTHORS_PROTOCOL = (
    "Protocol: the DyConvSR authors' (their eval.py and utils/metrics.py, SwinIR's): HR cropped to a multiple of "
    "12 at every scale (their GTmod12), LR = MATLAB-compatible antialiased bicubic imresize, uint8; SR rounded to "
    "uint8; Y = SwinIR's bgr2ycbcr applied to RGB arrays, so the R and B weights are swapped "
    "(16 + (24.966 R + 128.553 G + 65.481 B) / 255), in float32; no border crop; a set's value is the mean over its "
    "images. Their published figures were measured this way; the other metrics use the same Y and no border."
)
DYCONVSR_NOTES = (
    "The paper's bicubic row (Set5 34.01) is not the usual MATLAB bicubic (33.66): its numbers come "
    "from a different LR/bicubic pipeline, so compare models against our bicubic row too. BSD68 is 68 "
    "of BSD100's 100 images: close to, not the same as, the paper's BSD100 column."
)


@dataclass
class Report:
    """A rendered table: markdown for people, JSON (same numbers, per image too) for tools."""

    kind: str
    markdown: str
    data: dict[str, Any]

    def write(self, folder: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``<folder>/<kind>.md`` and ``<folder>/<kind>.json`` as one group (runtime.files.file_group):
        a failed write (no space left) keeps the previous pair whole and leaves no folder it created."""
        root = Path(folder)
        md_path, json_path = root / f"{self.kind}.md", root / f"{self.kind}.json"
        with writing_output(md_path, "report"), file_group([md_path, json_path]) as (md_tmp, json_tmp):
            atomic_write_bytes(md_tmp, self.markdown.encode())
            atomic_write_bytes(json_tmp, (json.dumps(self.data, indent=2, allow_nan=False) + "\n").encode())
        return md_path, json_path


def _fmt_pair(psnr: float, ssim: float) -> str:
    psnr_text = "inf" if math.isinf(psnr) else f"{psnr:.2f}"
    return f"{psnr_text}/{ssim:.4f}".replace("/0.", "/.")


def _published_pair(psnr: float, ssim: float) -> str:
    # As printed in the dynamic-CNN paper: 3 decimals of dB, SSIM with its own precision.
    ssim_text = f"{ssim:.4f}"
    ssim_text = ssim_text[:-1] if ssim_text.endswith("0") else ssim_text
    return f"{psnr:.3f}/{ssim_text.removeprefix('0')}"


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _params_k(params: int | None) -> str:
    return "-" if params is None else f"{params / 1000:.1f}"


def _order(results: Sequence[SetResult]) -> tuple[list[str], list[str], list[int]]:
    """Methods (bicubic first), benchmarks and scales in first-seen order."""
    methods, benches, scales = [], [], []
    for r in results:
        for seq, value in ((methods, r.method), (benches, r.benchmark), (scales, r.scale)):
            if value not in seq:
                seq.append(value)
    methods.sort(key=lambda m: not m.startswith(BICUBIC))
    return methods, benches, sorted(scales)


def _index(results: Sequence[SetResult]) -> dict[tuple[str, str, int, str], SetResult]:
    return {(r.method, r.benchmark, r.scale, r.colour): r for r in results}


def metrics_table(results: Sequence[SetResult]) -> str:
    """Every metric of every row, for the record."""
    header = ["Method", "Colour", "Set", "Scale", "Images", "PSNR-Y", "SSIM-Y", "PSNR-RGB", "WPSNR-Y", "MS-SSIM-Y"]
    rows = []
    for r in results:
        m: Scores = r.mean
        rows.append([r.method, r.colour, r.benchmark, f"x{r.scale}", str(len(r.images)), f"{m.psnr_y:.3f}",
                     f"{m.ssim_y:.4f}", f"{m.psnr_rgb:.3f}", f"{m.wpsnr_y:.3f}", f"{m.msssim_y:.4f}"])
    return _markdown_table(header, rows)


def _document(kind: str, results: Sequence[SetResult], **extra: Any) -> dict[str, Any]:
    return {"table": kind, "protocol": PROTOCOL, **extra, "results": [r.to_dict() for r in results]}


def _column_name(benchmark: str) -> str:
    for published in PUBLISHED_DYCONVSR_COLUMNS:
        if benchmark.lower() == published.lower():
            return published
    return benchmark


def dyconvsr_table(results: Sequence[SetResult]) -> Report:
    """The DyConvSR paper's Table 1 format, one table per scale, published rows at x2."""
    methods, benches, scales = _order(results)
    index = _index(results)
    ours = {_column_name(b): b for b in benches}
    parts = ["# PSNR/SSIM (Y) in the DyConvSR paper's Table 1 format", "", PROTOCOL, ""]
    for scale in scales:
        columns = list(PUBLISHED_DYCONVSR_COLUMNS) if scale == 2 else []
        columns += [c for c in ours if c not in columns]
        rows = []
        if scale == 2:
            for name, params, values in PUBLISHED_DYCONVSR_X2:
                rows.append([f"{name} (published)", "-" if params is None else str(params)]
                            + [_fmt_pair(*values[c]) if c in values else "" for c in columns])
        for method in methods:
            cells, params = [], None
            for column in columns:
                r = index.get((method, ours.get(column, ""), scale, "ycbcr"))
                cells.append(_fmt_pair(r.mean.psnr_y, r.mean.ssim_y) if r else "")
                params = r.params if r else params
            if any(cells):
                label = f"{method} (ours)" if method == BICUBIC else method
                rows.append([label, _params_k(params)] + cells)
        parts += [f"## x{scale}", "", _markdown_table(["Method", "#Params (K)", *columns], rows), ""]
    parts += [DYCONVSR_NOTES, "", "## All metrics", "", metrics_table(results), ""]
    published = [{"method": n, "params_k": p, "scale": 2, "psnr_ssim": {k: list(v) for k, v in vals.items()},
                  "source": "DyConvSR paper, Table 1 (published)"} for n, p, vals in PUBLISHED_DYCONVSR_X2]
    return Report("dyconvsr", "\n".join(parts), _document("dyconvsr", results, published=published))


def cross_scale_table(results: Sequence[SetResult]) -> Report:
    """The dynamic-CNN paper's Table 3: test scale (rows) x network (columns), per benchmark."""
    methods, benches, scales = _order(results)
    index = _index(results)
    parts = ["# Cross-scale PSNR/SSIM (Y): networks tested at each scale", "", PROTOCOL, ""]
    for bench in benches:
        rows = []
        for scale in scales:
            cells = []
            for method in methods:
                r = index.get((method, bench, scale, "ycbcr"))
                cells.append(_fmt_pair(r.mean.psnr_y, r.mean.ssim_y) if r else "n/a")
            rows.append([f"x{scale}", *cells])
        parts += [f"## {bench}", "", _markdown_table(["Test \\ Model", *methods], rows), ""]
    published_rows = [[f"x{s}", *(_published_pair(*PUBLISHED_CROSS_SCALE_SET5[n][s])
                                  for n in PUBLISHED_CROSS_SCALE_SET5)]
                      for s in (2, 3, 4)]
    published_header = ["Test \\ Model", *(f"{n} (published)" for n in PUBLISHED_CROSS_SCALE_SET5)]
    parts += ["## Set5 (published: dynamic-CNN paper, Table 3)", "",
              _markdown_table(published_header, published_rows),
              "", "n/a: a fixed-scale model (DyConvSR) cannot run at another scale.", "",
              "## All metrics", "", metrics_table(results), ""]
    published = {n: {str(s): list(v) for s, v in vals.items()} for n, vals in PUBLISHED_CROSS_SCALE_SET5.items()}
    return Report("cross-scale", "\n".join(parts),
                  _document("cross-scale", results,
                            published={"set5": published, "source": "dynamic-CNN paper, Table 3"}))


def colour_table(results: Sequence[SetResult]) -> Report:
    """The dynamic-CNN paper's Table 2: each metric for bicubic and network in YCbCr, HSV, RGB."""
    methods, benches, scales = _order(results)
    index = _index(results)
    networks = [m for m in methods if m != PRE_UPSCALE]
    metrics = (("PSNR-Y", "psnr_y", 3), ("PSNR-RGB", "psnr_rgb", 3), ("WPSNR-Y", "wpsnr_y", 3),
               ("SSIM-Y", "ssim_y", 4), ("MS-SSIM-Y", "msssim_y", 4))
    parts = ["# Colour spaces: the Y-trained network on Y (YCbCr), V (HSV) or each channel (RGB)", "", PROTOCOL,
             "", "Bicubic = the network's input: the models' own bicubic pre-upscale applied channel by channel "
             "in that colour space (hue is interpolated as a number, as a naive HSV pipeline does).", ""]
    for bench in benches:
        for scale in scales:
            for network in networks:
                header = ["Measurement"]
                for space in COLOUR_SPACES:
                    header += [f"{SPACE_TITLES[space]} bicubic", f"{SPACE_TITLES[space]} {network}"]
                rows = []
                for title, attr, digits in metrics:
                    cells = [title]
                    for space in COLOUR_SPACES:
                        for method in (PRE_UPSCALE, network):
                            r = index.get((method, bench, scale, space))
                            cells.append(f"{getattr(r.mean, attr):.{digits}f}" if r else "")
                    rows.append(cells)
                parts += [f"## {bench} x{scale}: {network}", "", _markdown_table(header, rows), ""]
    parts += ["## All metrics", "", metrics_table(results), ""]
    return Report("colour", "\n".join(parts), _document("colour", results))


def build_report(kind: str, results: Sequence[SetResult], protocol: str = "standard") -> Report:
    """Table ``kind`` of ``results``, its text naming the ``protocol`` they were measured by."""
    builders = {"dyconvsr": dyconvsr_table, "cross-scale": cross_scale_table, "colour": colour_table}
    if kind not in builders:
        raise UserError(f"unknown table {kind!r}; available: {', '.join(TABLES)}")
    report = builders[kind](results)
    report.data["protocol_name"] = protocol
    if protocol == "authors":
        report.markdown = report.markdown.replace(PROTOCOL, AUTHORS_PROTOCOL, 1)
        report.data["protocol"] = AUTHORS_PROTOCOL
    return report
