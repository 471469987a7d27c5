"""What every command shares, written once.

- :func:`verbosity_options`: ``-q/--quiet`` and ``-v/--verbose``; the command receives a
  :class:`Verbosity`, and library loggers follow it (WARNING by default, INFO with -v).
- :func:`runner_options`: ``--backend --provider --strict/--no-strict --threads --precision``;
  the command receives the :class:`~runtime.runners.RunnerConfig` they describe.
- :class:`NamedPath`: click.Path refusing an empty value (which would mean the current folder).
- :func:`run_command`: a command whose optional extra is not installed answers with one line
  naming the extra instead of a ModuleNotFoundError traceback.

Both decorators go between ``@cli_errors`` and the function, so a refused value (RunnerConfig
raises UserError) is one ``error:`` line like every other.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from .backends import auto_help
from .errors import UserError, printable
from .host import install_command
from .progress import status
from .runners import BACKENDS, RunnerConfig
from .runners.base import MAX_THREADS

F = TypeVar("F", bound=Callable[..., Any])
PROJECT_PACKAGES = ("runtime", "train", "export", "benchmarks")


class NamedPath(click.Path):
    """click.Path that refuses an empty value: ``Path("")`` is the current folder, so ``-o ""`` (an unset
    shell variable) would write there. Every path option and argument of the project uses it."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail(f"{value!r} is empty; name a file or folder (for the current folder, '.')", param, ctx)
        return super().convert(value, param, ctx)


class ArtifactPath(NamedPath):
    """An existing artifact folder or engine file, or the name of a packaged model (runtime/packaged.py): a path
    that exists wins, so a folder called ``dyconvsr_x2`` here is that folder."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(exists=True, path_type=Path, **kwargs)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from .packaged import is_model_name, packaged_models

        if isinstance(value, str) and not Path(value).exists() and is_model_name(value):
            models = packaged_models()
            if value in models:
                return models[value]
            self.fail(f"{value!r} is neither a file or folder here nor a packaged model "
                      f"({', '.join(models) or 'none installed'})", param, ctx)
        return super().convert(value, param, ctx)


@dataclass(frozen=True)
class Verbosity:
    """How much a command prints. ``quiet``: errors only (a failed verdict still explains
    itself), no progress bars, notes or summaries. ``verbose``: also the libraries' own INFO
    log lines and per-item details. Progress bars appear only on a terminal either way."""

    quiet: bool = False
    verbose: bool = False

    def __post_init__(self) -> None:
        if self.quiet and self.verbose:
            raise UserError("-q/--quiet and -v/--verbose exclude each other; got both")

    def say(self, message: str) -> None:
        """A status line on stderr, unless quiet."""
        if not self.quiet:
            status(message)

    def echo(self, message: str) -> None:
        """A summary line on stdout, unless quiet."""
        if not self.quiet:
            click.echo(message)

    def detail(self, message: str) -> None:
        """A status line on stderr, only when verbose."""
        if self.verbose:
            status(message)

    @property
    def log_level(self) -> int:
        return logging.ERROR if self.quiet else logging.INFO if self.verbose else logging.WARNING

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Root logging at :attr:`log_level` on stderr (Python warnings hidden when quiet) for the
        command's duration; the previous state comes back afterwards (commands run in tests too)."""
        root = logging.getLogger()
        level, handler = root.level, _StderrHandler()
        root.setLevel(self.log_level)
        root.addHandler(handler)
        try:
            with warnings.catch_warnings():
                if self.quiet:
                    warnings.simplefilter("ignore")
                yield
        finally:
            root.removeHandler(handler)
            root.setLevel(level)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record arrives (click's test runner swaps it)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))

    @property
    def stream(self) -> Any:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def verbosity_options(func: F) -> F:
    """``-q/--quiet`` and ``-v/--verbose``; ``func`` receives ``verbosity: Verbosity``."""

    @functools.wraps(func)
    def wrapper(*args: Any, quiet: bool, verbose: bool, **kwargs: Any) -> Any:
        verbosity = Verbosity(quiet=quiet, verbose=verbose)
        with verbosity.applied():
            return func(*args, verbosity=verbosity, **kwargs)

    wrapper = click.option("-v", "--verbose", is_flag=True,
                           help="Also the libraries' own log lines (INFO) and per-item details.")(wrapper)
    wrapper = click.option("-q", "--quiet", is_flag=True,
                           help="Errors only: no progress bars, notes or summaries.")(wrapper)
    return wrapper  # type: ignore[return-value]


def threads_option(default: int = 0) -> Callable[[F], F]:
    """``--threads`` (range checked by RunnerConfig, so the refusal is the same line everywhere)."""
    return click.option("--threads", type=int, default=default, show_default=True,
                        help=f"Intra-op threads per engine, 0..{MAX_THREADS} (0 = library default).")


RUNNER_OPTIONS = (
    click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True, help=auto_help()),
    click.option("--provider", default="auto", show_default=True,
                 help="ONNX Runtime execution providers in priority order, e.g. 'tensorrt,cuda,cpu', "
                      "or an OpenVINO device (CPU, GPU, NPU)."),
    click.option("--strict/--no-strict", default=None,
                 help="Fail if the named provider is not the one running (default: on whenever --provider is given)."),
    threads_option(),
    click.option("--precision", default=None, help="OpenVINO inference precision hint: f32, bf16 or f16."),
    click.option("--gpu", type=int, default=None, metavar="INDEX",
                 help="Run on this GPU only (0, 1, ... in CUDA's order; OpenVINO's GPU.<INDEX>): ONNX Runtime's "
                      "CUDA/TensorRT providers, TensorRT plans or OpenVINO on that device, failing rather than "
                      "falling back. Default: no GPU unless --provider names one."),
)


def runner_options(func: F) -> F:
    """The engine options of RunnerConfig; ``func`` receives ``runner: RunnerConfig``."""

    @functools.wraps(func)
    def wrapper(*args: Any, backend: str, provider: str, strict: bool | None, threads: int,
                precision: str | None, gpu: int | None, **kwargs: Any) -> Any:
        runner = RunnerConfig(backend=backend, provider=provider, strict=strict, threads=threads, precision=precision,
                              gpu=gpu)
        return func(*args, runner=runner, **kwargs)

    for option in reversed(RUNNER_OPTIONS):  # click lists the last-applied option first
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


def run_command(module: str, extra: str, prog_name: str | None = None) -> None:
    """Run the click ``main`` of ``module``. Where importing it needs a package that is not
    installed (a runtime-only install has no torch), print one line naming ``extra`` and exit 2."""
    try:
        main = importlib.import_module(module).main
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if not missing or missing in PROJECT_PACKAGES:
            raise
        command = prog_name or os.path.basename(sys.argv[0])
        print(printable(f"error: {command} needs the '{extra}' extra, and {missing} is not installed: "
                        f"{install_command(extra)}"), file=sys.stderr)
        raise SystemExit(2) from None
    main(prog_name=prog_name)
