"""Errors a user can cause, and the one place CLIs turn them into a line on stderr."""
from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class UserError(ValueError):
    """A problem with what the user asked for (bad name, bad file, bad option).

    The message names what was received and what is allowed; CLIs print it on one line.
    """


def cli_errors(func: F) -> F:
    """Decorate a click command so user errors end as one stderr line and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (UserError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper  # type: ignore[return-value]
