"""The malloc policy of rlmaml.runtime: page faults counted by the kernel, not timed."""

import subprocess
import sys

import pytest

from rlmaml.errors import UserError
from rlmaml.runtime import cpu_allocator

# Run in a fresh interpreter: whether a freed 64 MB block is still resident depends on the process's whole malloc
# history (free chunks left by earlier tests), not only on the policy under test. Under "retain" the heap takes a
# few allocations to settle (the 64-byte-aligned block may not fit the hole the last one left, depending on where
# the heap starts), so the last of 12 is measured.
_MEASURE = """
import resource, sys, torch
from rlmaml.runtime import cpu_allocator

def faults_of_last_tensor(numel=16 << 20, repeats=12):
    # minor page faults while writing the last of `repeats` 64 MB tensors, each freed before the next
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.ones(numel).sum()  # allocated, touched, freed
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

if cpu_allocator("system") is None:
    print("skip")
    sys.exit()
system = faults_of_last_tensor()
assert cpu_allocator("retain") == "retain"
retain = faults_of_last_tensor()  # the first few grow the heap (up to 5 measured), then a freed block is reused
print(system, retain)
"""


def test_retain_reuses_freed_pages_and_system_faults_them_in_again():
    out = subprocess.run([sys.executable, "-c", _MEASURE], capture_output=True, text=True, check=True).stdout.split()
    if out == ["skip"]:
        pytest.skip("not glibc: the policy cannot be set")
    system, retain = map(int, out)
    assert system > 10_000  # 64 MB of 4 KiB pages (16384), faulted in afresh (fewer if huge pages are used)
    assert retain < 1_000


def test_unknown_policy_is_a_one_line_error(monkeypatch):
    with pytest.raises(UserError, match="'fast' is not allowed; allowed: retain, system"):
        cpu_allocator("fast")
    monkeypatch.setenv("RLMAML_ALLOCATOR", "none")
    with pytest.raises(UserError, match="RLMAML_ALLOCATOR"):
        cpu_allocator()


# ---------------------------------------------------------------------------- rlmaml.run: stopping on a signal

def test_stop_signals_raise_keyboard_interrupt_and_restore_the_previous_handlers():
    import os
    import signal

    from rlmaml.run import stop_on_signals

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # what a background shell leaves a job with
    term = signal.getsignal(signal.SIGTERM)  # the default, or what a library (Ray's driver) installed
    try:
        for signum in (signal.SIGTERM, signal.SIGINT):
            with pytest.raises(KeyboardInterrupt, match=f"signal {int(signum)}"), stop_on_signals():
                os.kill(os.getpid(), signum)
                for _ in range(1000):  # the handler runs between bytecodes of the main thread
                    pass
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is term
    finally:
        signal.signal(signal.SIGINT, previous)


def test_deferred_stop_raises_at_the_end_of_the_block():
    import os
    import signal

    from rlmaml.run import deferred_stop, stop_on_signals

    done = []
    with pytest.raises(KeyboardInterrupt), stop_on_signals():
        with deferred_stop():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):
                pass
            done.append("the rest of the step")
        done.append("after the step")
    assert done == ["the rest of the step"]
    with stop_on_signals():  # a failing block forgets the signal: the next block ends normally
        with pytest.raises(ValueError), deferred_stop():
            os.kill(os.getpid(), signal.SIGTERM)
            raise ValueError
        with deferred_stop():
            pass


def test_resume_dir_names_the_directory_and_what_is_missing(tmp_path):
    from rlmaml.run import resume_dir

    with pytest.raises(UserError, match=r"^--resume '.*nowhere': no such directory"):
        resume_dir(tmp_path / "nowhere")
    with pytest.raises(UserError, match=r"^--evaluate-only '.*': no config.yaml there; not a run directory$"):
        resume_dir(tmp_path, "--evaluate-only")
    (tmp_path / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(UserError, match="no checkpoint.pt there"):
        resume_dir(tmp_path)
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    assert resume_dir(str(tmp_path)) == tmp_path
