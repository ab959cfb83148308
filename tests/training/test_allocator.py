import sys

import pytest
import torch

from training.allocator import release_free_pages, retain_freed_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_retaining_freed_memory_applies_on_linux_and_large_tensors_still_work():
    assert retain_freed_memory() is True
    assert retain_freed_memory() is True  # applying twice is harmless
    for _ in range(3):  # allocate, free and reuse blocks far above the old mmap threshold
        block = torch.ones(64, 1024, 1024)  # (256 MiB)
        assert block.sum().item() == 64 * 1024 * 1024
        del block


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_free_pages_go_back_to_the_os_after_retaining():
    retain_freed_memory()
    blocks = [torch.ones(1024, 1024) for _ in range(64)]  # 256 MiB in 4 MiB blocks
    del blocks[:-1]  # the last one pins the heap's top, so only malloc_trim can release the rest
    assert release_free_pages() is True
