"""Helpers for the real-browser test of the lectures: a throwaway JupyterLab server and a
headless Chromium page that drives a notebook the way a student does.

Nothing here downloads a browser: Chromium is Debian's ``/usr/bin/chromium`` (CI installs it
with apt) and Playwright only drives it through ``executable_path``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

TOKEN = "coursekit-browser-test"

# Chromium flags for a closed network: without the background-networking ones Chromium keeps
# trying to reach Google's services and gets refused many times a second.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# JupyterLab settings written to the temporary user-settings directory.
LAB_USER_SETTINGS = {
    # Keep every cell in the DOM so that prompts and outputs of off-screen cells can be read
    # (the default windowing modes detach or skip rendering of cells outside the viewport).
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    # No "would you like to receive news?" toast over the notebook; no news fetches.
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


# nbgrader (installed for instructors) is no part of reading a lecture: its server extensions
# look for a course directory and a gradebook that do not exist here, and its JupyterLab
# extension adds menus and panels that only slow down loading the page.
LAB_PAGE_CONFIG = {"disabledExtensions": {"@jupyter/nbgrader": True}}
SERVER_CONFIG = {
    "ServerApp": {
        "jpserver_extensions": {
            "nbgrader.server_extensions.assignment_list": False,
            "nbgrader.server_extensions.course_list": False,
            "nbgrader.server_extensions.formgrader": False,
            "nbgrader.server_extensions.validate_assignment": False,
        }
    }
}


def find_chromium() -> str | None:
    """Path of the system Chromium, or None where it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerExited(RuntimeError):
    """``jupyter lab`` ended before it answered."""


@dataclass
class JupyterLabServer:
    """``jupyter lab`` in its own process group, with every Jupyter directory under ``base``.

    ``root`` is the server's root directory; copy the notebooks there before opening them.
    """

    base: Path
    port: int = 0
    process: subprocess.Popen | None = None
    startup_seconds: float = 0.0
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root = self.base / "root"
        self.log_path = self.base / "jupyter-lab.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def notebook_url(self, relative_path: str) -> str:
        return f"{self.url}/lab/tree/{relative_path}?token={TOKEN}&reset"

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        dirs = {
            "JUPYTER_CONFIG_DIR": self.base / "config",
            "JUPYTER_DATA_DIR": self.base / "data",
            "JUPYTER_RUNTIME_DIR": self.base / "runtime",
            "IPYTHONDIR": self.base / "ipython",
        }
        for name, path in dirs.items():
            path.mkdir(parents=True, exist_ok=True)
            env[name] = str(path)
        # Only the environment's own kernels and JupyterLab extensions, none from elsewhere.
        env.pop("JUPYTER_PATH", None)
        # The lectures draw with the inline backend; Agg keeps anything else off a display.
        env["MPLBACKEND"] = "Agg"
        return env

    def _write_settings(self) -> None:
        config = self.base / "config"
        (config / "jupyter_server_config.json").write_text(json.dumps(SERVER_CONFIG))
        (config / "labconfig").mkdir(parents=True, exist_ok=True)
        (config / "labconfig" / "page_config.json").write_text(json.dumps(LAB_PAGE_CONFIG))
        user_settings = self.base / "config" / "lab" / "user-settings"
        for name, values in LAB_USER_SETTINGS.items():
            path = user_settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))

    def start(self, timeout: float = 60.0, attempts: int = 3) -> None:
        """Start the server and wait until ``/api/status`` answers.

        The port is chosen free just before the start; another process can take it in between,
        so a server that exits at once is started again on another port.
        """
        started = time.monotonic()
        for attempt in range(attempts):
            try:
                self._start_once(timeout)
                self.startup_seconds = time.monotonic() - started
                return
            except ServerExited:
                if attempt == attempts - 1:
                    raise
                self.port = 0

    def _start_once(self, timeout: float) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        env = self._environment()
        self._write_settings()
        self.port = self.port or free_port()
        command = [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.open_browser=False",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.news_url=None",
        ]
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command,
            cwd=self.root,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._wait_until_ready(timeout)

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        status_url = f"{self.url}/api/status?token={TOKEN}"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._log.close()
                raise ServerExited(
                    f"jupyter lab exited with code {self.process.returncode}:\n{self.log_tail()}"
                )
            with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):
                with urllib.request.urlopen(status_url, timeout=2) as response:
                    if response.status == 200:
                        return
            time.sleep(0.25)  # not up yet
        raise TimeoutError(
            f"jupyter lab did not answer {status_url} within {timeout:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _shut_down_kernels(self) -> None:
        """Ask the server to stop its kernels: jupyter_client starts each kernel in a session
        of its own, so they are not in the server's process group."""
        try:
            with urllib.request.urlopen(f"{self.url}/api/kernels?token={TOKEN}", timeout=5) as r:
                kernels = json.load(r)
            for kernel in kernels:
                request = urllib.request.Request(
                    f"{self.url}/api/kernels/{kernel['id']}?token={TOKEN}", method="DELETE"
                )
                urllib.request.urlopen(request, timeout=10).close()
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            pass  # the server is gone; its kernels notice (JPY_PARENT_PID) and exit

    def stop(self) -> None:
        """Stop the kernels, then the server: SIGTERM to its process group, then SIGKILL."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self._shut_down_kernels()
            # start_new_session made the server the leader of its own group: group id = pid.
            for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
                try:
                    os.killpg(self.process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    continue
            self.process.wait(timeout=10)
        self._log.close()
        self.process = None


# --- driving a notebook in the browser -------------------------------------------------------

# Progress of "Run All Cells", read in one pass over the DOM.
_RUN_STATE_JS = """
() => {
  const prompts = Array.from(
    document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt')
  ).map((p) => p.textContent.trim());
  const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
  const errors = document.querySelectorAll(
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
  );
  return {
    status: indicator ? indicator.getAttribute('data-status') : null,
    prompts,
    running: prompts.filter((p) => p.includes('*')).length,
    numbered: prompts.filter((p) => /\\[\\d+\\]/.test(p)).length,
    tracebacks: Array.from(errors).filter((e) => e.textContent.includes('Traceback')).length,
  };
}
"""

# Text of every output a student would read as a failure: a traceback or an error line in
# stderr, and the messages JupyterLab and ipywidgets put where an output or a widget failed
# to render.
_FAILED_OUTPUTS_JS = """
() => {
  const found = [];
  for (const e of document.querySelectorAll(
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
  )) {
    const text = e.textContent;
    if (text.includes('Traceback') || /^\\w*(Error|Exception)\\b/m.test(text)) {
      found.push(text.slice(0, 2000));
    }
  }
  for (const e of document.querySelectorAll('.jp-OutputArea-output')) {
    const text = e.textContent;
    for (const marker of ['Error displaying widget', 'Error rendering output', 'Javascript Error']) {
      if (text.includes(marker)) found.push(text.slice(0, 2000));
    }
  }
  return found;
}
"""

# Everything that went to stderr, warnings included, for the report of a failed run.
_STDERR_JS = """
() => Array.from(document.querySelectorAll(
  '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
)).map((e) => e.textContent.slice(0, 500))
"""

# The first ipywidgets slider in the notebook that has an image after it in the same cell (the
# figure an `interactive` draws below its controls). Marks the slider and its cell with data
# attributes so that locators find them again after a redraw.
_MARK_SLIDER_JS = """
() => {
  const sliders = document.querySelectorAll('.jp-NotebookPanel .widget-slider');
  for (const slider of sliders) {
    const cell = slider.closest('.jp-Cell');
    const image = Array.from(cell.querySelectorAll('.jp-OutputArea img')).find(
      (img) => slider.compareDocumentPosition(img) & Node.DOCUMENT_POSITION_FOLLOWING
    );
    if (!image) continue;
    slider.setAttribute('data-coursekit-slider', '');
    cell.setAttribute('data-coursekit-cell', '');
    return {
      label: slider.querySelector('.widget-label')?.textContent ?? '',
      readout: slider.querySelector('.widget-readout')?.textContent ?? '',
      sliders: sliders.length,
    };
  }
  return {sliders: sliders.length, label: null};
}
"""

# The src of the first loaded image after the marked slider (the figure), else null.
_FIGURE_SRC_JS = """
() => {
  const slider = document.querySelector('[data-coursekit-slider]');
  const cell = document.querySelector('[data-coursekit-cell]');
  const image = Array.from(cell.querySelectorAll('.jp-OutputArea img')).find(
    (img) => slider.compareDocumentPosition(img) & Node.DOCUMENT_POSITION_FOLLOWING
  );
  return image && image.complete && image.naturalWidth > 0 ? image.src : null;
}
"""


@dataclass
class RunReport:
    """What "Run All Cells" left in the page."""

    seconds: float
    prompts: list[str]
    failed_outputs: list[str]
    stderr: list[str]

    @property
    def unexecuted(self) -> list[int]:
        """Indices (among the code cells) of the cells without an execution count."""
        return [i for i, p in enumerate(self.prompts) if not any(c.isdigit() for c in p)]


def open_notebook(page, url: str, timeout_ms: float) -> None:
    """Load ``url`` and wait until the notebook's cells are shown and its kernel is idle."""
    page.goto(url, timeout=timeout_ms)
    page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell", timeout=timeout_ms)
    # The execution indicator says "idle" already while the panel has no kernel yet ("No
    # Kernel | Initializing"); running cells then brings up the "Select Kernel" dialog. Wait
    # for the notebook's own kernel to be named and idle.
    page.wait_for_function(
        """() => {
          const name = document.querySelector('.jp-NotebookPanel-toolbar .jp-KernelName');
          const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
          return name && !['', 'No Kernel'].includes(name.textContent.trim()) &&
            indicator && indicator.getAttribute('data-status') === 'idle';
        }""",
        timeout=timeout_ms,
        polling=250,
    )


def run_all_cells(page, timeout_ms: float) -> RunReport:
    """Run → Run All Cells from the menu bar; wait until no cell is queued or running.

    Done means the kernel is idle, no prompt shows ``[*]``, and either every code cell has an
    execution count or a traceback stopped the run (JupyterLab does not run the cells after
    one that raised).
    """
    start = time.monotonic()
    page.locator("#jp-menu-panel").get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    page.wait_for_function(
        f"""() => {{
          const s = ({_RUN_STATE_JS})();
          return s.status === 'dead' || (s.status === 'idle' && s.running === 0 &&
            (s.numbered === s.prompts.length || s.tracebacks > 0));
        }}""",
        timeout=timeout_ms,
        polling=250,
    )
    if kernel_status(page) == "dead":
        raise RuntimeError("the kernel died during Run All Cells")
    seconds = time.monotonic() - start
    state = page.evaluate(_RUN_STATE_JS)
    return RunReport(
        seconds=seconds,
        prompts=state["prompts"],
        failed_outputs=failed_outputs(page),
        stderr=page.evaluate(_STDERR_JS),
    )


def failed_outputs(page) -> list[str]:
    """Texts of the outputs that show an error; see ``_FAILED_OUTPUTS_JS``."""
    return page.evaluate(_FAILED_OUTPUTS_JS)


def wait_for_widgets(page, timeout_ms: float) -> None:
    """Wait until no output still says "Loading widget..." (the placeholder ipywidgets shows
    until the widget manager has the widget's model)."""
    page.wait_for_function(
        """() => !Array.from(document.querySelectorAll('.jp-OutputArea-output'))
              .some((e) => e.textContent.includes('Loading widget...'))""",
        timeout=timeout_ms,
        polling=250,
    )


def mark_first_slider(page) -> dict:
    """Find and mark the first slider with a figure below it; see ``_MARK_SLIDER_JS``."""
    return page.evaluate(_MARK_SLIDER_JS)


def figure_src(page) -> str | None:
    """The ``src`` of the figure below the marked slider (a ``data:image/png`` URL)."""
    return page.evaluate(_FIGURE_SRC_JS)


def move_slider(page, key: str = "PageUp", presses: int = 1) -> None:
    """Focus the marked slider's handle and press ``key``, as a keyboard user moves a
    noUiSlider: ArrowRight is one step, PageUp five steps in a single change (one redraw)."""
    handle = page.locator("[data-coursekit-slider] .noUi-handle")
    handle.scroll_into_view_if_needed()
    handle.focus()
    for _ in range(presses):
        handle.press(key)


def wait_for_new_figure(page, old_src: str, timeout_ms: float, quiet_s: float = 1.0) -> str:
    """Wait until the figure below the marked slider is a loaded image other than ``old_src``
    and has settled (kernel idle, same image for ``quiet_s``, so that no redraw of an earlier
    key press is still on its way); return its ``src``."""
    deadline = time.monotonic() + timeout_ms / 1000
    page.wait_for_function(
        f"""(old) => {{
          const src = ({_FIGURE_SRC_JS})();
          return src !== null && src !== old;
        }}""",
        arg=old_src,
        timeout=timeout_ms,
        polling=250,
    )
    src = figure_src(page)
    while True:
        remaining_ms = max(1.0, (deadline - time.monotonic()) * 1000)
        page.wait_for_selector(
            '.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=remaining_ms
        )
        page.wait_for_timeout(quiet_s * 1000)
        latest = figure_src(page)
        if latest is not None and latest == src and kernel_status(page) == "idle":
            return latest
        if time.monotonic() > deadline:
            raise TimeoutError(f"the figure kept changing for {timeout_ms / 1000:.0f} s")
        src = latest


def kernel_status(page) -> str | None:
    """The notebook's execution indicator: "idle", "busy", "dead", ..."""
    return page.evaluate(
        """() => document.querySelector('.jp-Notebook-ExecutionIndicator')
              ?.getAttribute('data-status') ?? null"""
    )


# -- static pages (the instructor's report folder) ---------------------------------------------
@dataclass
class StaticPageCheck:
    """What a page opened from disk did: requests beyond ``file://`` (blocked), requests
    that failed, links whose target is missing, images that did not load."""

    url: str
    title: str = ""
    network: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    broken_links: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.network or self.failed or self.broken_links or self.broken_images)


def check_static_page(context, path: Path, timeout_ms: float = 30_000) -> StaticPageCheck:
    """Open ``path`` in a new page with every non-``file:`` request blocked (offline), and
    check that each ``<a href>`` resolves (a file that exists, an anchor that exists) and
    each ``<img>`` loaded."""
    from urllib.parse import unquote, urlparse

    url = Path(path).resolve().as_uri()
    result = StaticPageCheck(url)
    page = context.new_page()

    def route(r):
        if r.request.url.startswith(("file:", "data:")):
            r.continue_()
        else:
            result.network.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("requestfailed", lambda req: result.failed.append(req.url))
    try:
        page.goto(url, wait_until="load", timeout=timeout_ms)
        result.title = page.title()
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        result.links = hrefs
        for href in hrefs:
            parsed = urlparse(href)
            if parsed.scheme != "file":
                result.broken_links.append(href)
                continue
            target = Path(unquote(parsed.path))
            if not target.is_file():
                result.broken_links.append(href)
            elif parsed.fragment and target == Path(path).resolve():
                found = page.evaluate(
                    "id => !!document.getElementById(id)", unquote(parsed.fragment)
                )
                if not found:
                    result.broken_links.append(href)
        result.broken_images = page.eval_on_selector_all(
            "img", "els => els.filter(e => !(e.complete && e.naturalWidth > 0)).map(e => e.src)"
        )
    finally:
        page.close()
    return result
