"""The ``genrec`` command line (Typer + rich)."""

from __future__ import annotations

import sys

from genrec.cli.app import app, recipe_app


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    """Entry point: user errors print one clear line and exit 1, never a traceback."""
    import signal

    from genrec.errors import GenrecError

    # SIGTERM unwinds like Ctrl-C: temporary files are removed, finished stages and checkpoints stay.
    signal.signal(signal.SIGTERM, _terminate)

    if len(sys.argv) > 1 and sys.argv[1] == "recipe":
        from genrec.cli.recipes import add_recipes

        add_recipes(recipe_app)
    try:
        code = app(standalone_mode=False)  # returns 130 when interrupted (Ctrl-C or SIGTERM)
        if code == 130:
            raise KeyboardInterrupt
    except GenrecError as error:
        from genrec.console import console

        console.print(f"[bold red]error:[/bold red] {error}", markup=True, highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        from genrec.console import console

        console.print("interrupted; run the same command again to resume")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as error:  # usage errors and aborts of Typer's click (vendored or not)
        if callable(getattr(error, "show", None)) and isinstance(getattr(error, "exit_code", None), int):
            error.show()
            sys.exit(error.exit_code)
        if type(error).__name__ == "Abort":
            sys.exit(1)
        raise


__all__ = ["app", "main"]
