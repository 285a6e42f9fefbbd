"""Progress bars for the instructor's commands (tqdm on stderr, off when not wanted)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator


def progress_bar(items: Iterable, desc: str, enabled: bool, unit: str = "student") -> Iterator:
    """Iterate over ``items`` with a tqdm bar on stderr when ``enabled``."""
    if not enabled:
        yield from items
        return
    from tqdm import tqdm

    items = list(items)
    with tqdm(total=len(items), desc=desc, unit=unit, file=sys.stderr) as bar:
        for item in items:
            yield item
            bar.update(1)
