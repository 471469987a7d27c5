"""`python -m train ...`: the model zoo, training and evaluation commands."""
from __future__ import annotations

import click

from runtime.errors import cli_errors

from .complexity import human, measure
from .models import create_model, describe_model, list_models


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Train, evaluate and inspect the super-resolution models."""


@main.command("models")
@click.option("--size", default=256, show_default=True, type=click.IntRange(min=1),
              help="LR input height and width for the MAC count.")
@click.option("--scale", "scales", multiple=True, type=click.Choice(["2", "3", "4"]),
              help="Scales to list (repeatable). Default: 2, 3 and 4.")
@click.option("--all", "include_tiny", is_flag=True, help="Include the tiny test variants.")
@cli_errors
def models_command(size: int, scales: tuple[str, ...], include_tiny: bool) -> None:
    """List every registered model with its parameters and MACs at a SIZExSIZE LR input."""
    scale_values = [int(s) for s in scales] or [2, 3, 4]
    names = [n for n in list_models() if include_tiny or not n.endswith("_tiny")]
    click.echo(f"{'model':<18}{'scale':>6}{'params':>12}{'MACs @ ' + f'{size}x{size}':>20}  description")
    for name in names:
        for scale in scale_values:
            c = measure(create_model(name, scale=scale), size, size)
            click.echo(f"{name:<18}{'x' + str(scale):>6}{c.params:>12,}{human(c.macs, 'MAC'):>20}  "
                       f"{describe_model(name)}")
