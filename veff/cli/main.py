"""The ``veff`` command group: every command registered in one place."""

from __future__ import annotations

import click

from veff._version import __version__
from veff.cli.models import models
from veff.cli.mutation_map import create_mutation_map_cmd, plot_mutation_map_cmd
from veff.cli.score import score_variants_cmd

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="veff")
def main() -> None:
    """veff: variant effect prediction with deep-learning sequence models."""


main.add_command(score_variants_cmd)
main.add_command(models)
main.add_command(create_mutation_map_cmd)
main.add_command(plot_mutation_map_cmd)


if __name__ == "__main__":  # pragma: no cover
    main()
