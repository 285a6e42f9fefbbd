"""Warm kernels: forked by a nursery, each in a sandbox of its own, as contained as a cold one."""

from __future__ import annotations

import json
import os

import pytest
from test_sandbox import course, run_cells, stdout  # noqa: F401 - the fixture, too

from coursekit.instructor import nursery
from coursekit.instructor.sandbox import HOME, SUBMISSION, SandboxedKernelManager, bwrap_usable

pytestmark = pytest.mark.skipif(not bwrap_usable(), reason="bubblewrap is unusable here")

#: What a kernel can learn about its own sandbox, as one JSON line.
INSPECT = """
import json, os, stat
def writable_dirs():
    found = set()
    for line in open('/proc/self/mountinfo'):
        fields = line.split()
        if 'ro' in fields[5].split(',') or fields[4].startswith(('/proc', '/sys')):
            continue
        for root, dirs, _ in os.walk(fields[4]):
            if os.access(root, os.W_OK):
                found.add(root)
    return sorted(found)
status = dict(l.split(':', 1) for l in open('/proc/self/status'))
print(json.dumps({
    'uid': os.getuid(), 'pid': os.getpid(), 'pids': sorted(p for p in os.listdir('/proc') if p.isdigit()),
    'caps': status['CapEff'].strip(), 'seccomp': status['Seccomp'].strip(),
    'nnp': status['NoNewPrivs'].strip(), 'writable': writable_dirs(),
    'home': sorted(os.listdir(os.environ['HOME'])), 'shm': sorted(os.listdir('/dev/shm')),
    'tmp': sorted(os.listdir('/tmp')), 'cwd': os.getcwd(), 'files': sorted(os.listdir('.')),
    'random': __import__('numpy').random.rand(), 'sid': os.getsid(0),
    'init': open('/proc/1/cmdline').read().replace(chr(0), ' '),
    'staged': sorted(os.path.join(d, n) for top in os.listdir('/tmp') if top.startswith('ck-')
                     for d, ds, fs in os.walk('/tmp/' + top) for n in ds + fs),
}))
"""
LEAVE_TRACES = """
import os, signal
for place in (os.environ['HOME'], '/dev/shm', os.environ['TMPDIR']):
    try:
        open(os.path.join(place, 'left-by-alice'), 'w').write('x')
    except OSError:
        pass
os.kill(1, signal.SIGINT)  # the init ignores it
"""


def inspect(cell) -> dict:
    return json.loads(stdout(cell).strip().splitlines()[-1])


def test_each_warm_kernel_gets_a_sandbox_of_its_own(tmp_path, course):  # noqa: F811
    first = run_cells(tmp_path, [INSPECT, LEAVE_TRACES, "print('alive')"])
    forked_by = nursery.Nursery._shared.process.pid
    second = run_cells(tmp_path, [INSPECT])
    assert nursery.Nursery._shared.process.pid == forked_by  # one nursery, two kernels
    assert stdout(first.cells[2]).strip() == "alive"
    a, b = inspect(first.cells[0]), inspect(second.cells[0])
    for seen in (a, b):
        assert seen["uid"] >= 200000 and seen["caps"] == "0000000000000000"
        assert seen["seccomp"] == "2" and seen["nnp"] == "1"  # the no-locks filter, no setuid
        assert seen["pids"] == ["1", str(seen["pid"])]  # its init and itself, nothing else
        assert seen["sid"] == 1  # the init's session, not the nursery's
        assert "nursery import serve" in seen["init"]  # forked, not started cold
        assert seen["cwd"] == SUBMISSION and seen["files"] == ["mine.txt"]
        # writable: its own home and its sockets' directory, nothing else (no /dev/shm)
        others = [w for w in seen["writable"] if not w.startswith(HOME)]
        assert len(others) == 1 and others[0].endswith("/s"), seen["writable"]
        # of the grader's stages only its own sockets' directory: no copy of the submission
        stage = os.path.dirname(others[0])
        assert all(p == others[0] or p.startswith(others[0] + "/") for p in seen["staged"][1:])
        assert seen["staged"][0] == stage + "/s" or seen["staged"][0] == stage, seen["staged"]
    # nothing the first student left is seen by the next one
    assert b["home"] == a["home"] and "left-by-alice" not in b["home"] + b["shm"]
    assert a["shm"] == b["shm"] == []
    assert a["random"] != b["random"]  # numpy's global generator is reseeded in every fork


def test_kernels_are_forked_by_the_nursery_and_die_like_cold_ones(tmp_path, course):  # noqa: F811
    import asyncio
    from queue import Empty

    from coursekit.instructor.sandbox import SandboxedKernelClient

    async def start_and_kill():
        km = SandboxedKernelManager(scratch_dir=str(tmp_path / "scratch"))
        submission = tmp_path / "sub"
        submission.mkdir()
        await km.start_kernel(cwd=str(submission))
        process = km.provisioner.process
        client = km.client()
        client.start_channels()
        await client.wait_for_ready(timeout=60)
        # ready once the kernel_info exchange came through IOPub, and nothing of it is left
        try:
            left = await client.iopub_channel.get_msg(timeout=0.3)
        except Empty:
            left = None
        alive = await km.is_alive()
        client.stop_channels()
        await km.shutdown_kernel(now=True)
        return process, alive, client, left

    process, alive, client, left = asyncio.run(start_and_kill())
    assert isinstance(process, nursery.WarmKernel) and alive
    assert isinstance(client, SandboxedKernelClient) and left is None
    assert process.poll() == -9  # killed: the pid is gone
    # a kernel that kills itself dies (it is not its namespace's first process)
    from nbclient.exceptions import DeadKernelError

    suicide = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"
    with pytest.raises(DeadKernelError):
        run_cells(tmp_path / "self", [suicide, "print('still here')"], timeout=20)


def test_without_a_nursery_kernels_start_cold_in_the_same_sandbox(tmp_path, course, monkeypatch):  # noqa: F811
    monkeypatch.setenv(nursery.WARM_ENV, "0")
    nb = run_cells(tmp_path, [INSPECT])
    seen = inspect(nb.cells[0])
    assert seen["uid"] >= 200000 and seen["caps"] == "0000000000000000"
    assert seen["seccomp"] == "2" and seen["cwd"] == SUBMISSION and "bwrap" in seen["init"]


def test_a_submission_that_cannot_be_staged_exactly_gets_a_cold_kernel_alone(
    tmp_path,
    course,  # noqa: F811
):
    submission = tmp_path / "course" / "submitted" / "alice" / "a1"
    submission.mkdir(parents=True)
    os.mkfifo(submission / "pipe")  # copy_submission leaves it out; a cold kernel binds it
    nb = run_cells(tmp_path, [INSPECT])
    seen = inspect(nb.cells[0])
    assert seen["files"] == ["mine.txt", "pipe"] and "bwrap" in seen["init"]  # cold
    os.unlink(submission / "pipe")
    nb = run_cells(tmp_path, [INSPECT])  # the same configuration forks again
    assert "nursery import serve" in inspect(nb.cells[0])["init"]


def test_a_nursery_that_cannot_fork_gives_cold_kernels_and_says_so_once(
    tmp_path,
    course,  # noqa: F811
    monkeypatch,
    caplog,
):
    # The nursery is told to keep stages aside at a path its sandbox does not have: its
    # first fork fails to mount, and every kernel of this configuration starts cold.
    monkeypatch.setattr(nursery, "KEEP", "/tmp/sandbox/elsewhere")
    first = run_cells(tmp_path, [INSPECT])
    second = run_cells(tmp_path, [INSPECT])  # the same configuration: no new attempt
    for nb in (first, second):
        seen = inspect(nb.cells[0])
        assert seen["uid"] >= 200000 and seen["caps"] == "0000000000000000"
        assert seen["cwd"] == SUBMISSION and seen["seccomp"] == "2"
    said = [
        r.getMessage() for r in caplog.records if "warm kernels are unavailable" in r.getMessage()
    ]
    assert len(said) == 1 and "could not fork" in said[0] and "/tmp/sandbox/keep" in said[0]
