"""The ``genrec`` command line (Typer + rich)."""

from __future__ import annotations

import sys

from genrec import distributed
from genrec.cli.app import app, recipe_app


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


USAGE = 2  # exit code of a command used wrongly: a bad flag or option value, an unknown component
FAILED = 1  # exit code of a command that could not do its work: bad data, a component's broken output


def _error(message: str) -> None:
    from genrec.console import console

    console.print(f"[bold red]error:[/bold red] {message}", markup=True, highlight=False, soft_wrap=True)


def main() -> None:
    """Entry point: every user error prints one ``error:`` line, never a traceback, and exits 2 for
    wrong usage (Typer's usage errors and genrec's ConfigError alike) or 1 for failed work."""
    import signal

    from genrec.errors import ConfigError, GenrecError

    # SIGTERM unwinds like Ctrl-C: temporary files are removed, finished stages and checkpoints stay.
    signal.signal(signal.SIGTERM, _terminate)

    if len(sys.argv) > 1 and sys.argv[1] == "recipe":
        from genrec.cli.recipes import add_recipes

        add_recipes(recipe_app)
    try:
        code = app(prog_name="genrec", standalone_mode=False)  # returns 130 when interrupted (Ctrl-C or SIGTERM)
        if code == 130:
            raise KeyboardInterrupt
        distributed.finish_process()  # under torchrun: every rank leaves together, then exits
    except GenrecError as error:
        _error(str(error))
        sys.exit(USAGE if isinstance(error, ConfigError) else FAILED)
    except KeyboardInterrupt:
        from genrec.console import console

        console.print("interrupted; run the same command again to resume")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as error:  # usage errors and aborts of Typer's click (vendored or not)
        if callable(getattr(error, "format_message", None)) and isinstance(getattr(error, "exit_code", None), int):
            context = getattr(error, "ctx", None)
            command = getattr(context, "command_path", "genrec")
            _error(f"{error.format_message()} ({command} --help lists the options)")
            sys.exit(error.exit_code)
        if type(error).__name__ == "Abort":
            sys.exit(1)
        raise


__all__ = ["app", "main"]
