"""The README's install commands work on a student's laptop, from the public package index.

Static checks (always run): every pin in ``constraints.txt`` is an exact public version (no
local version label such as ``+cpu``, which only a private wheel cache carries), a package
that only some operating systems install carries an environment marker saying which, and
the extras keep the student install free of the instructor's tools.

The maintainer check (marked ``slow``, needs the network): pip resolves each ``pip install``
of the README against https://pypi.org with this machine's configuration, environment
variables and caches ignored (``PIP_CONFIG_FILE=/dev/null``, ``--isolated``,
``--no-cache-dir``, ``--dry-run --ignore-installed --report``), and every pinned package of
that install has wheels for Windows, macOS (Apple silicon) and Linux. Where the index cannot
be reached, the check is skipped and says why; it never passes without resolving.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from importlib import metadata
from pathlib import Path

import pytest
import tomllib
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = REPO / "constraints.txt"
INDEX = "https://pypi.org/simple/"

#: Marker variables of a typical laptop of each operating system.
PLATFORMS = {
    "linux": {
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": "x86_64",
    },
    "macos": {
        "sys_platform": "darwin",
        "platform_system": "Darwin",
        "os_name": "posix",
        "platform_machine": "arm64",
    },
    "windows": {
        "sys_platform": "win32",
        "platform_system": "Windows",
        "os_name": "nt",
        "platform_machine": "AMD64",
    },
}

#: pip ``--platform`` tags of the same laptops, for the wheel check.
WHEEL_PLATFORMS = {
    "linux": [
        "manylinux_2_28_x86_64",
        "manylinux_2_17_x86_64",
        "manylinux2014_x86_64",
        "manylinux_2_5_x86_64",
        "manylinux1_x86_64",
    ],
    "macos": ["macosx_14_0_arm64"],
    "windows": ["win_amd64"],
}

#: What a student install must not pull in (instructor and maintainer tools).
NOT_FOR_STUDENTS = {"nbgrader", "dask", "distributed", "playwright", "ruff", "pytest", "hypothesis"}


def pins() -> list[Requirement]:
    lines = CONSTRAINTS.read_text().splitlines()
    return [Requirement(ln) for ln in (x.strip() for x in lines) if ln and not ln.startswith("#")]


def extras() -> dict[str, list[Requirement]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    found = {"": [Requirement(r) for r in project["dependencies"]]}
    for name, reqs in project["optional-dependencies"].items():
        found[name] = [Requirement(r) for r in reqs]
    return found


def env_for(platform: str, extra: str = "") -> dict[str, str]:
    return {**default_environment(), **PLATFORMS[platform], "extra": extra}


def closure(platform: str) -> set[str]:
    """Packages an install of every extra pulls in on ``platform`` (from installed metadata)."""
    todo = [r for reqs in extras().values() for r in reqs]
    todo = [r for r in todo if r.marker is None or r.marker.evaluate(env_for(platform))]
    done: set[tuple[str, str]] = set()
    while todo:
        req = todo.pop()
        key = canonicalize_name(req.name)
        wanted = {(key, e) for e in ("", *req.extras)}
        if wanted <= done:
            continue
        done |= wanted
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue  # not installed here (e.g. a Windows-only package): nothing to follow
        for text in dist.requires or []:
            dep = Requirement(text)
            if any(
                dep.marker is None or dep.marker.evaluate(env_for(platform, extra))
                for extra in ("", *req.extras)
            ):
                todo.append(dep)
    return {key for key, _ in done}


def test_pins_are_exact_public_versions_without_local_labels():
    found = pins()
    assert len(found) > 50
    for req in found:
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{req}: pin one exact version"
        assert "+" not in specs[0].version, (
            f"{req}: a local version label exists only in a private wheel cache; "
            "the public index has no such file"
        )
    assert "torch" in {canonicalize_name(r.name) for r in found}


def test_packages_only_some_systems_install_carry_a_marker():
    installs = {platform: closure(platform) for platform in PLATFORMS}
    assert "torch" in installs["linux"] and "jupyterlab" in installs["windows"]
    problems = []
    for req in pins():
        key = canonicalize_name(req.name)
        where = {p for p, names in installs.items() if key in names}
        if not where or where == set(PLATFORMS):
            continue
        if req.marker is None:
            problems.append(f"{req}: installed only on {sorted(where)}, needs a marker")
            continue
        for platform in PLATFORMS:
            if req.marker.evaluate(env_for(platform)) != (platform in where):
                problems.append(f"{req}: marker disagrees with where it installs {sorted(where)}")
    assert not problems, problems


def test_student_extra_has_what_lectures_and_check_need_and_no_instructor_tools():
    found = {name: {canonicalize_name(r.name) for r in reqs} for name, reqs in extras().items()}
    assert found["student"] == {
        "numpy",
        "matplotlib",
        "jupyterlab",
        "ipywidgets",
        "ipykernel",
        "nbclient",
        "nbformat",
        "torch",
    }
    assert {"nbgrader", "dask", "distributed", "cloudpickle", "tqdm"} <= found["instructor"]
    assert not found["student"] & NOT_FOR_STUDENTS
    assert found["student"] | found["instructor"] <= found["dev"] | found[""]


# -- the maintainer check against the public index ----------------------------------------


def readme_installs() -> list[list[str]]:
    """The ``pip install`` arguments of every command in the README's code blocks."""
    text = (REPO / "README.md").read_text()
    found = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        for match in re.finditer(r"pip install ([^&\n]*)", block):
            args = [a.strip('"') for a in match.group(1).split()]
            args = [a for a in args if a not in ("-q", "--quiet")]
            if args not in found:
                found.append(args)
    return found


def public_index_or_skip() -> None:
    try:
        with urllib.request.urlopen(INDEX + "pip/", timeout=15) as response:
            response.read(1)
    except OSError as exc:
        pytest.skip(f"the public index {INDEX} is unreachable from here: {exc}")


_NETWORK = re.compile(
    r"NewConnectionError|Max retries exceeded|Temporary failure in name resolution|"
    r"Name or service not known|ProxyError|ConnectTimeout|ReadTimeout|Network is unreachable|"
    r"Connection refused|SSLError|403 Client Error|HTTP error 403"
)


def pip_public(args: list[str], tmp_path: Path, *extra: str) -> dict:
    """``pip install --dry-run`` of ``args`` against the public index alone; the report."""
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # no global, site or user configuration either
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--isolated",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--index-url",
        INDEX,
        "--dry-run",
        "--ignore-installed",
        "--quiet",
        "--report",
        str(report),
        *extra,
        *args,
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:
        if _NETWORK.search(proc.stderr):
            pytest.skip(
                f"the public index is only partly reachable: {_NETWORK.search(proc.stderr)[0]}"
            )
        pytest.fail(f"pip could not resolve `pip install {' '.join(args)}`:\n{proc.stderr[-3000:]}")
    return json.loads(report.read_text())


@pytest.mark.slow
def test_readme_installs_resolve_on_the_public_index(tmp_path):
    public_index_or_skip()
    commands = readme_installs()
    assert any("-c" in c and any(".[dev]" in a for a in c) for c in commands), commands
    pinned = {canonicalize_name(r.name): next(iter(r.specifier)).version for r in pins()}
    for args in commands:
        report = pip_public(args, tmp_path)
        installed = {
            canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"]
            for i in report["install"]
        }
        assert "numpy" in installed, args
        for name, version in installed.items():
            assert "+" not in version, f"{name}=={version}: local version from the public index?"
            if name in pinned and name != "coursekit":
                assert version == pinned[name], (args, name, version, pinned[name])


@pytest.mark.slow
@pytest.mark.parametrize("platform", sorted(WHEEL_PLATFORMS))
def test_every_pin_of_the_install_has_a_wheel_for_each_laptop(tmp_path, platform):
    """pip evaluates markers for this machine only, so other systems get a wheel check.

    The pins of the README's full install (minus those whose marker excludes ``platform``)
    must each have a wheel for ``platform`` and Python 3.12: a student never compiles.
    """
    public_index_or_skip()
    wanted = [
        r
        for r in pins()
        if canonicalize_name(r.name) in closure("linux") | closure(platform)
        and (r.marker is None or r.marker.evaluate(env_for(platform)))
    ]
    requirements = tmp_path / "pins.txt"
    requirements.write_text(
        "".join(f"{r.name}=={next(iter(r.specifier)).version}\n" for r in wanted)
    )
    tags = [arg for tag in WHEEL_PLATFORMS[platform] for arg in ("--platform", tag)]
    report = pip_public(
        ["-r", str(requirements)],
        tmp_path,
        "--no-deps",
        "--only-binary=:all:",
        "--target",
        str(tmp_path / "target"),
        "--python-version",
        "3.12",
        "--implementation",
        "cp",
        *tags,
    )
    assert len(report["install"]) == len(wanted)


@pytest.mark.slow
def test_the_student_edition_install_resolves_on_the_public_index(tmp_path):
    """The edition's README command (``pip install -c constraints.txt -e .``): no instructor tools."""
    public_index_or_skip()
    from coursekit.cli.main import main

    edition = tmp_path / "edition"
    assert main(["--course", str(REPO), "publish", str(edition)]) == 0
    readme = (edition / "README.md").read_text()
    assert "pip install -c constraints.txt -e ." in readme
    report = pip_public(["-c", str(edition / "constraints.txt"), "-e", str(edition)], tmp_path)
    installed = {canonicalize_name(i["metadata"]["name"]) for i in report["install"]}
    assert {"numpy", "matplotlib", "jupyterlab", "ipywidgets", "torch", "nbclient"} <= installed
    assert not installed & NOT_FOR_STUDENTS, installed & NOT_FOR_STUDENTS
