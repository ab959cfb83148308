import sys

import pytest
import torch

from training.allocator import retain_freed_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_retaining_freed_memory_applies_on_linux_and_large_tensors_still_work():
    assert retain_freed_memory() is True
    assert retain_freed_memory() is True  # applying twice is harmless
    for _ in range(3):  # allocate, free and reuse blocks far above the old mmap threshold
        block = torch.ones(64, 1024, 1024)  # (256 MiB)
        assert block.sum().item() == 64 * 1024 * 1024
        del block
