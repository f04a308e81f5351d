"""Progress bars that a log can hold: every progress bar of the project goes through :func:`progress`.

On a terminal it is an ordinary ``tqdm`` bar, redrawn in place. When the stream is not a terminal (a
log file, a pipe, a CI job, a Kubernetes pod), a redrawn bar would leave one carriage return per update
in the log; there the same bar prints a plain line (``desc: n/total unit [elapsed<remaining, rate]``)
at most every :data:`LINE_INTERVAL_S` seconds, and once more with the final count when it closes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import IO, Any, NoReturn, TypeVar, overload

from tqdm import tqdm

T = TypeVar("T")

LINE_INTERVAL_S = 30.0
LINE_FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"


class LineProgress(tqdm):
    """A ``tqdm`` that writes whole lines (newline-terminated, never a carriage return)."""

    @staticmethod
    def status_printer(file: IO[str]) -> Callable[[str], None]:  # type: ignore[override]
        def print_line(text: str) -> None:
            if text:  # tqdm "clears" a bar by printing an empty status: nothing to clear in a log
                file.write(text + "\n")
                file.flush()

        return print_line

    # a new postfix or description shows in the next periodic line, not in a line of its own
    def set_postfix(self, ordered_dict: Any = None, refresh: bool | None = True, **kwargs: Any) -> None:
        super().set_postfix(ordered_dict, refresh=False, **kwargs)

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        super().set_postfix_str(s, refresh=False)

    def set_description(self, desc: str | None = None, refresh: bool | None = True) -> None:
        super().set_description(desc, refresh=False)

    def set_description_str(self, desc: str | None = None, refresh: bool | None = True) -> None:
        super().set_description_str(desc, refresh=False)

    def close(self) -> None:
        if self.disable:
            return
        if self.n != self.last_print_n:  # the final count, unless the last line showed it
            self.refresh()
        self.disable = True
        self._decr_instances(self)  # type: ignore[attr-defined]


def is_terminal(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@overload
def progress(
    iterable: Iterable[T],
    *,
    desc: str,
    unit: str = "it",
    total: int | None = None,
    initial: int = 0,
    leave: bool = True,
    enabled: bool = True,
    file: IO[str] | None = None,
) -> tqdm[T]: ...


@overload
def progress(
    iterable: None = None,
    *,
    desc: str,
    unit: str = "it",
    total: int | None = None,
    initial: int = 0,
    leave: bool = True,
    enabled: bool = True,
    file: IO[str] | None = None,
) -> tqdm[NoReturn]: ...


def progress(
    iterable: Iterable[Any] | None = None,
    *,
    desc: str,
    unit: str = "it",
    total: int | None = None,
    initial: int = 0,
    leave: bool = True,
    enabled: bool = True,
    file: IO[str] | None = None,
) -> tqdm[Any]:
    """A progress bar over ``iterable`` (or one advanced by ``update``) on ``file`` (default stderr):
    a redrawn ``tqdm`` bar on a terminal, periodic plain lines otherwise; nothing when not ``enabled``."""
    stream = file if file is not None else sys.stderr
    options: dict[str, Any] = {
        "desc": desc,
        "unit": unit,
        "total": total,
        "initial": initial,
        "file": stream,
        "disable": not enabled,
    }
    if is_terminal(stream):
        return tqdm(iterable, leave=leave, dynamic_ncols=True, **options)
    return LineProgress(iterable, mininterval=LINE_INTERVAL_S, bar_format=LINE_FORMAT, **options)
