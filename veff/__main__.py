"""``python -m veff``: the ``veff`` command, for environments whose scripts folder is not on PATH."""

from __future__ import annotations

from veff.cli import main

if __name__ == "__main__":  # pragma: no cover
    main(prog_name="veff")
