import pytest
import torch
from transformers import BertConfig, BertForPreTraining

from training.attention import attention_implementation
from training.pretrain import build_model
from training.tokenizer import load_tokenizer


def test_auto_picks_eager_on_cpu_and_sdpa_on_cuda():
    assert attention_implementation("auto", torch.device("cpu")) == "eager"
    assert attention_implementation("auto", torch.device("cuda")) == "sdpa"
    assert attention_implementation("sdpa", torch.device("cpu")) == "sdpa"


def test_unknown_attention_is_a_clear_error():
    with pytest.raises(ValueError, match="attention must be one of"):
        attention_implementation("flash", torch.device("cpu"))


def test_build_model_uses_the_kernel_chosen_for_the_device(tiny_recipe, tiny_tokenizer_dir):
    tokenizer = load_tokenizer(tiny_tokenizer_dir)
    assert build_model(tiny_recipe.pretrain, tokenizer).config._attn_implementation == "eager"


def test_eager_and_sdpa_compute_the_same_loss_and_gradients():
    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    ids = torch.randint(5, 100, (3, 12), generator=torch.Generator().manual_seed(0))  # (B, T)
    mask = torch.ones_like(ids)
    mask[0, 8:] = 0  # padding must be masked the same way by both kernels
    labels = torch.where(torch.rand(ids.shape) < 0.3, ids, torch.full_like(ids, -100))
    results = []
    for kernel in ("eager", "sdpa"):
        torch.manual_seed(0)
        config._attn_implementation = kernel
        model = BertForPreTraining(config)
        nsp = torch.tensor([0, 1, 0])
        loss = model(
            input_ids=ids, attention_mask=mask, labels=labels, next_sentence_label=nsp
        ).loss
        loss.backward()
        grad = model.bert.encoder.layer[0].attention.self.query.weight.grad
        results.append((loss.item(), grad.clone()))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-5)
    assert torch.allclose(results[0][1], results[1][1], atol=1e-5)
