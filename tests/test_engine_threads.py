"""wdlab.engine.threads.one_thread: the one "torch on one thread for this block" helper."""

from __future__ import annotations

import pytest
import torch

from wdlab.engine.kernels import native
from wdlab.engine.threads import kept_threads, one_thread


@pytest.fixture
def two_threads():
    n = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(n)


def test_lowers_restores_even_on_error_and_nests(two_threads):
    with one_thread():
        assert torch.get_num_threads() == 1 and kept_threads() is None
        with one_thread(keep_for_kernels=True):  # nested: already 1, nothing kept
            assert torch.get_num_threads() == 1 and kept_threads() is None
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError, match="boom"), one_thread():
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2
    with one_thread(active=False):
        assert torch.get_num_threads() == 2


def test_keep_for_kernels_gives_the_native_kernels_the_count_from_before(two_threads):
    assert native.kernel_threads() == 2
    with one_thread(keep_for_kernels=True):
        assert torch.get_num_threads() == 1 and kept_threads() == 2
        assert native.kernel_threads() == 2  # the kernels keep torch's count
        with one_thread(keep_for_kernels=True):  # nested: the outer count stays
            assert kept_threads() == 2
        assert kept_threads() == 2
    assert kept_threads() is None and torch.get_num_threads() == 2
    with pytest.raises(ValueError), one_thread(keep_for_kernels=True):
        raise ValueError
    assert kept_threads() is None and torch.get_num_threads() == 2
    with one_thread():  # a plain block (the demos'): the kernels run on one thread too
        assert native.kernel_threads() == 1
    with native.torch_serial(native.SERIAL_TORCH_ENTRIES):  # a large run: torch keeps 2
        assert torch.get_num_threads() == 2 and native.kernel_threads() == 2
    with native.torch_serial(native.SERIAL_TORCH_ENTRIES - 1):
        assert torch.get_num_threads() == 1 and native.kernel_threads() == 2


def test_starting_on_one_thread_changes_nothing():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with one_thread(keep_for_kernels=True):
            assert torch.get_num_threads() == 1 and kept_threads() is None
            assert native.kernel_threads() == 1
    finally:
        torch.set_num_threads(n)
