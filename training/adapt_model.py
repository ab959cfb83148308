"""The model ``notesqa adapt`` trains: a reader's encoder under BERT's pretraining heads, with the
reader's answer head kept beside them, so one encoder learns MLM/NSP on the notes and keeps
answering SQuAD replay questions.

The shipped reader has no MLM or NSP head (a ``BertForQuestionAnswering``): the MLM decoder is
tied to the reader's word embeddings, its transform and bias (set to the notes' unigram prior)
and the pooler + NSP head start new. ``to_reader`` gives back a ``BertForQuestionAnswering`` of
the reader's own shape, loadable by stock ``transformers``.

Example (a tiny reader, saved and adapted, answers with the same head until trained):
    >>> import tempfile
    >>> from transformers import BertConfig, BertForQuestionAnswering
    >>> config = BertConfig(vocab_size=16, hidden_size=8, num_hidden_layers=1,
    ...                     num_attention_heads=2, intermediate_size=16)
    >>> folder = Path(tempfile.mkdtemp())
    >>> BertForQuestionAnswering(config).save_pretrained(folder)
    >>> model = adaptation_model(folder).eval()
    >>> ids = torch.tensor([[2, 5, 6, 3]])                                  # (B, T)
    >>> start, end = answer_logits(model, ids, torch.zeros_like(ids), torch.ones_like(ids))
    >>> start.shape                                                         # (B, T)
    torch.Size([1, 4])
    >>> reader = to_reader(model)
    >>> torch.equal(reader(input_ids=ids).start_logits, start)
    True
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import BertForPreTraining, BertForQuestionAnswering


def adaptation_model(reader_dir: str | Path, dropout: float = 0.1) -> BertForPreTraining:
    """``BertForPreTraining`` holding the reader's encoder, with the reader's answer head as its
    ``qa_outputs`` submodule (so one ``state_dict`` checkpoints both)."""
    reader = BertForQuestionAnswering.from_pretrained(
        str(reader_dir),
        dtype=torch.float32,  # shipped readers are fp16 copies
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    model = BertForPreTraining(reader.config)
    missing, unexpected = model.bert.load_state_dict(reader.bert.state_dict(), strict=False)
    if unexpected or any(not key.startswith("pooler.") for key in missing):
        raise ValueError(f"{reader_dir} is not a BERT reader this version can adapt")
    model.qa_outputs = reader.qa_outputs  # (H -> 2)
    model.tie_weights()  # the MLM decoder reads the reader's word embeddings
    return model


def answer_logits(
    model: BertForPreTraining,
    input_ids: torch.Tensor,
    token_type_ids: torch.Tensor,
    attention_mask: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Start and end logits ``(B, T)`` of the reader's head on ``model``'s encoder."""
    hidden = model.bert(
        input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask
    ).last_hidden_state  # (B, T, H)
    start, end = model.qa_outputs(hidden).split(1, dim=-1)  # (B, T, 1) each
    return start.squeeze(-1), end.squeeze(-1)


def to_reader(model: BertForPreTraining) -> BertForQuestionAnswering:
    """The adapted encoder and answer head as a stock ``BertForQuestionAnswering`` (no pooler)."""
    config = model.config
    config.architectures = ["BertForQuestionAnswering"]
    reader = BertForQuestionAnswering(config)
    encoder = {k: v for k, v in model.bert.state_dict().items() if not k.startswith("pooler.")}
    reader.bert.load_state_dict(encoder)
    reader.qa_outputs.load_state_dict(model.qa_outputs.state_dict())
    return reader.eval()
