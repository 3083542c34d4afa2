"""Progress for long work: a tqdm bar on a terminal, a plain line every few seconds in a log.

tqdm draws with carriage returns, which a log file (CI, ``nohup``, a pipe) turns into one
endless line or nothing at all; there a long command would look dead for minutes. Every
long-running command (training, evaluation, watching, collection) reports through
:class:`Progress`, which picks the form from where its output goes.
"""

from __future__ import annotations

import math
import sys
import time
from typing import IO


def _eta(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    m, s = divmod(int(seconds + 0.5), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """A counter towards ``total`` with tqdm's small interface (``update``, ``n``,
    ``total``, ``set_postfix_str``, ``close``).

    ``tty=None`` asks the stream; ``interval`` is the seconds between log lines when it is
    not a terminal. ``enabled=False`` shows nothing (counting still works).
    """

    def __init__(
        self,
        total: float | None,
        desc: str = "",
        unit: str = "it",
        initial: float = 0,
        enabled: bool = True,
        stream: IO[str] | None = None,
        tty: bool | None = None,
        interval: float = 5.0,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.desc, self.unit, self.interval = desc, unit, interval
        self.n = initial
        self._total = total
        self._postfix = ""
        self._t0 = self._last = time.monotonic()
        self._n0 = initial
        self._bar = None
        self._enabled = enabled
        self._closed = False
        if tty is None:
            tty = bool(getattr(self.stream, "isatty", lambda: False)())
        if enabled and tty:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                initial=initial,
                desc=desc or None,
                unit=unit,
                file=self.stream,
                dynamic_ncols=True,
                smoothing=0.05,
            )

    @property
    def total(self) -> float | None:
        return self._total

    @total.setter
    def total(self, value: float | None) -> None:
        self._total = value
        if self._bar is not None:
            self._bar.total = value

    def update(self, n: float = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._enabled and time.monotonic() - self._last >= self.interval:
            self._write_line()

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self._postfix = text
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=refresh)

    def line(self) -> str:
        """The log line for the current state, e.g. ``eval: 12/30 ep (40%), 1.5 ep/s, eta 00:12``."""
        elapsed = time.monotonic() - self._t0
        rate = (self.n - self._n0) / elapsed if elapsed > 0 else math.nan
        head = f"{self.desc}: " if self.desc else ""
        count = f"{self.n:,.0f}"
        if self._total:
            count += f"/{self._total:,.0f} {self.unit} ({100.0 * self.n / self._total:.0f}%)"
            left = (self._total - self.n) / rate if rate and rate > 0 else math.nan
            timing = f", {rate:,.1f} {self.unit}/s, eta {_eta(left)}"
        else:
            count += f" {self.unit}"
            timing = f", {rate:,.1f} {self.unit}/s" if math.isfinite(rate) else ""
        tail = f", {self._postfix}" if self._postfix else ""
        return f"{head}{count}{timing}{tail}"

    def _write_line(self) -> None:
        self._last = time.monotonic()
        print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        """End the bar; in a log, one closing line when anything was counted."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self._enabled and self.n > self._n0:
            self._write_line()
