"""A long computation's ``(stage, done, total)`` progress as one tqdm bar per stage.

Domain code reports progress through a plain callback (``lookup_ivf.Progress``) and knows
nothing of terminals; the commands that run it show it with this.
"""

from __future__ import annotations

import sys
from typing import Any


class StageBars:
    """A build's ``(stage, done, total)`` progress as one tqdm bar per stage."""

    def __init__(self, disable: bool = False) -> None:
        self.disable = disable
        self.stage: str | None = None
        self.bar: Any = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if stage != self.stage:
            self.close()
            self.stage, self.bar = (
                stage,
                tqdm(total=total, desc=stage, disable=self.disable, file=sys.stderr),
            )
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.stage = self.bar = None

    def __enter__(self) -> StageBars:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
