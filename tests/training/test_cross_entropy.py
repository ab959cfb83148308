import pytest
import torch
import torch.nn.functional as F

from training import cross_entropy
from training.cross_entropy import vocab_cross_entropy


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_loss_and_gradient_equal_the_reference(dtype, monkeypatch):
    monkeypatch.setattr(cross_entropy, "ROWS_PER_CHUNK", 7)  # several chunks and a ragged last one
    torch.manual_seed(0)
    logits = (torch.randn(30, 50) * 4).to(dtype).requires_grad_()
    labels = torch.randint(0, 50, (30,))
    labels[3] = labels[4] = 49  # repeated labels

    reference = F.cross_entropy(logits.float(), labels, reduction="sum")
    (reference_grad,) = torch.autograd.grad(reference * 0.5, logits)
    ours = vocab_cross_entropy(logits, labels)
    (ours_grad,) = torch.autograd.grad(ours * 0.5, logits)

    assert ours.dtype == torch.float32
    assert torch.allclose(ours, reference, rtol=1e-5)
    assert ours_grad.dtype == dtype
    tolerance = 1e-6 if dtype == torch.float32 else 1e-2
    assert torch.allclose(ours_grad.float(), reference_grad.float(), atol=tolerance)


def test_gradcheck_in_double_precision():
    logits = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 5, 2, 2, 1])
    assert torch.autograd.gradcheck(lambda x: vocab_cross_entropy(x, labels), (logits,))


def test_large_logits_do_not_overflow():
    logits = torch.tensor([[1000.0, 0.0, -1000.0]], requires_grad=True)
    loss = vocab_cross_entropy(logits, torch.tensor([1]))
    loss.backward()
    assert loss.item() == pytest.approx(1000.0)
    assert torch.isfinite(logits.grad).all()


def test_wrong_shapes_are_a_clear_error():
    with pytest.raises(ValueError, match=r"\(M, V\) logits and \(M,\) labels"):
        vocab_cross_entropy(torch.zeros(4, 3), torch.zeros(3, dtype=torch.long))
