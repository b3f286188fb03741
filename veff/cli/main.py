"""The ``veff`` command group: every command registered in one place, and how errors end a command.

Every error ends a command with one line on stderr, ``veff: error: MESSAGE``: exit status 2 for
a command line click cannot parse (an unknown option, a bad option value; the line then says
which ``-h`` to read), 1 for everything veff finds wrong with the input, the model or the
outputs (:class:`~veff.errors.VeffError`, see :func:`veff.cli.options.fail`), 130 for Ctrl-C,
143 for SIGTERM (:func:`veff.cli.options.interrupted`).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from veff._version import __version__
from veff.cli.calibrate import calibrate_cmd
from veff.cli.models import models
from veff.cli.mutation_map import create_mutation_map_cmd, plot_mutation_map_cmd
from veff.cli.options import interrupted, on_sigterm, quiet_h5py_cleanup, setup_logging
from veff.cli.score import score_variants_cmd

__all__ = ["main"]


_NO_ARGS: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())  # click >= 8.2


class _Group(click.Group):
    """click's group, with usage errors printed as one ``veff: error:`` line (exit status 2)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("standalone_mode", True):
            return super().main(*args, **kwargs)
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except _NO_ARGS as exc:  # a bare `veff` or `veff models`: the help, as click prints it
            click.echo(exc.ctx.get_help() if exc.ctx is not None else exc.format_message())
            sys.exit(0)
        except click.UsageError as exc:
            ctx = exc.ctx
            hint = f" (see '{ctx.command_path} -h')" if ctx is not None else ""
            click.echo(f"veff: error: {_one_line(exc.format_message())}{hint}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"veff: error: {_one_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort as exc:
            interrupted(
                exc.__cause__ if isinstance(exc.__cause__, KeyboardInterrupt) else KeyboardInterrupt()
            )
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; Ctrl-C and SIGTERM end it with one line (before click adds its own)."""
        on_sigterm()
        quiet_h5py_cleanup()
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            interrupted(exc)


def _one_line(text: str) -> str:
    return " ".join(text.split())


@click.group(
    "veff",
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="veff")
def main() -> None:
    """veff: variant effect prediction with deep-learning sequence models."""
    setup_logging(quiet=False)


main.add_command(score_variants_cmd)
main.add_command(calibrate_cmd)
main.add_command(models)
main.add_command(create_mutation_map_cmd)
main.add_command(plot_mutation_map_cmd)


if __name__ == "__main__":  # pragma: no cover
    main()
