"""Load the tokenizer saved beside a model, failing loudly when there is none.

Runtime code (the reader, the embedder) and training both load tokenizers this way; training
also *trains* them (``training.tokenizer``).

Example:
    >>> tokenizer = load_tokenizer("models/tokenizer")     # the shipped one
    >>> len(tokenizer), tokenizer.tokenize("photosynthesis")
    (16384, ['photos', '##ynthesis'])
    >>> load_tokenizer("models")                           # a folder without one
    Traceback (most recent call last):
    FileNotFoundError: models has no tokenizer (tokenizer.json or vocab.txt); copy the tokenizer ...
"""

from __future__ import annotations

from pathlib import Path

from transformers import PreTrainedTokenizerFast


def load_tokenizer(model_dir: str | Path) -> PreTrainedTokenizerFast:
    """Load the tokenizer saved in ``model_dir``, failing loudly when there is none.

    `transformers` 5 builds an empty vocabulary when a folder has a config but no tokenizer files,
    which turns every input into [UNK]; this guard makes that a clear error instead.
    """
    path = Path(model_dir)
    if (
        path.is_dir()
        and not (path / "tokenizer.json").exists()
        and not (path / "vocab.txt").exists()
    ):
        raise FileNotFoundError(
            f"{path} has no tokenizer (tokenizer.json or vocab.txt); copy the tokenizer the model was "
            "trained with into it, e.g. `notesqa train tokenizer --out DIR` output"
        )
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    if len(tok) < 10:
        raise ValueError(
            f"tokenizer in {model_dir} has only {len(tok)} tokens; it was not saved properly"
        )
    return tok
