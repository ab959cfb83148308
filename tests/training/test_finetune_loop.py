"""The readers' shared finetuning loop: seeded batches that a resumed run continues."""

import itertools

from training.finetune_loop import batch_order


def test_batch_order_is_seeded_passes_and_resumes_by_skipping():
    batches = list(itertools.islice(batch_order(10, 4, seed=3), 6))  # 24 draws over 10 features
    assert all(len(b) == 4 for b in batches)
    flat = [i for b in batches for i in b]
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:20]) == list(range(10))
    assert list(itertools.islice(batch_order(10, 4, seed=3), 2, 6)) == batches[2:]
    assert batches != list(itertools.islice(batch_order(10, 4, seed=4), 6))
