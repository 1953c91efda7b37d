"""The malloc policy of rlmaml.runtime: page faults counted by the kernel, not timed."""

import resource

import pytest
import torch

from rlmaml.errors import UserError
from rlmaml.runtime import cpu_allocator


def faults_of_last_tensor(numel: int = 16 << 20, repeats: int = 4) -> int:
    """Minor page faults while writing the last of ``repeats`` 64 MB tensors, each freed before the next."""
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.ones(numel).sum()  # allocated, touched, freed
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_retain_reuses_freed_pages_and_system_faults_them_in_again():
    if cpu_allocator("system") is None:
        pytest.skip("not glibc: the policy cannot be set")
    try:
        system = faults_of_last_tensor()
        assert cpu_allocator("retain") == "retain"
        retain = faults_of_last_tensor()  # the first ones grow the heap, the last reuses it
    finally:
        cpu_allocator()
    assert system > 10_000  # 64 MB of 4 KiB pages (16384), faulted in afresh (fewer if huge pages are used)
    assert retain < 1_000


def test_unknown_policy_is_a_one_line_error(monkeypatch):
    with pytest.raises(UserError, match="'fast' is not allowed; allowed: retain, system"):
        cpu_allocator("fast")
    monkeypatch.setenv("RLMAML_ALLOCATOR", "none")
    with pytest.raises(UserError, match="RLMAML_ALLOCATOR"):
        cpu_allocator()
