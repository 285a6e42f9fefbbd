"""Executing notebooks headless with a real Jupyter kernel (nbclient).

Used by the lecture tests and the benchmark suite. It carries one workaround: with
ipywidgets' comm traffic, nbclient sometimes never wakes up on the execute reply that has
already arrived (jupyter/nbclient#312), so a ``get_msg`` without a timeout can hang for
ever. :func:`poll_shell_in_slices` makes the client poll the shell channel one second at a
time, which picks the reply up at the next slice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from queue import Empty


def poll_shell_in_slices(client, slice_seconds: float = 1.0) -> None:
    """Replace ``client.kc.shell_channel.get_msg`` by a loop of short polls, same deadline."""
    original = client.kc.shell_channel.get_msg

    async def get_msg(timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = slice_seconds if deadline is None else deadline - time.monotonic()
            try:
                return await original(timeout=max(0.0, min(slice_seconds, remaining)))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    client.kc.shell_channel.get_msg = get_msg


def run_notebook(
    path: str | Path,
    *,
    cwd: str | Path,
    timeout: int = 300,
    read: Iterable[str] = (),
) -> tuple[dict[str, float], float]:
    """Execute every cell of the notebook at ``path`` in a fresh ``python3`` kernel.

    Parameters
    ----------
    path : notebook file (left unchanged on disk).
    cwd : working directory of the kernel.
    timeout : seconds allowed per cell.
    read : Python expressions evaluated in the kernel afterwards; their values come back
        as floats.

    Returns
    -------
    (values, seconds) : the expressions' values and the wall time of the execution.
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    expressions = list(read)
    start = time.perf_counter()
    with client.setup_kernel():
        poll_shell_in_slices(client)
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        seconds = time.perf_counter() - start
        values = {}
        if expressions:
            probe = nbformat.v4.new_code_cell(
                "import json as _json\nimport numpy as np\n"
                f"print(_json.dumps({{_e: float(eval(_e)) for _e in {expressions!r}}}))"
            )
            nb.cells.append(probe)
            client.execute_cell(probe, len(nb.cells) - 1)
            text = "".join(o.get("text", "") for o in probe.outputs if o.get("name") == "stdout")
            values = json.loads(text.strip().splitlines()[-1])
    return values, seconds
