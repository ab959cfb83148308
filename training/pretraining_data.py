"""BERT pretraining data: tokenise a corpus once into shards, then stream NSP pairs with dynamic masks.

Shards (a folder, written atomically) hold the whole corpus as flat arrays, no pickle:

    tokens.npy     (N,)   uint16/uint32  token ids of every sentence, back to back
    sentences.npy  (S+1,) int64          offsets of sentence starts in ``tokens``
    documents.npy  (D+1,) int64          offsets of document starts in ``sentences``
    characters.npy (D,)   int64          characters of each document's kept sentences
    meta.json                            vocabulary size, counts, tokenizer name

Examples follow Google's ``create_pretraining_data.py``: segments of whole sentences packed up to
``max_seq_length``; B is the true continuation half of the time, else taken from another document;
the longer side is trimmed. Masks (15%, 80/10/10, optionally whole words) are drawn per row from
``(seed, batch index, row)``, so every epoch sees fresh masks, a resumed run sees exactly the masks
it would have seen, and data-parallel ranks together see exactly the single-process batch.

Example (four made-up articles of six sentences, the shipped tokenizer):
    >>> import tempfile
    >>> from embedder.tokenizer_files import load_tokenizer
    >>> tokenizer = load_tokenizer("models/tokenizer")
    >>> folder = Path(tempfile.mkdtemp())
    >>> articles = [{"title": f"T{i}", "text": " ".join(f"Sentence {j} of article {i} is here."
    ...                                                 for j in range(6))} for i in range(4)]
    >>> _ = (folder / "wiki.jsonl").write_text("\\n".join(json.dumps(a) for a in articles))
    >>> shards = build_shards([folder / "wiki.jsonl"], tokenizer, folder / "shards")
    >>> shards.meta["num_documents"], shards.meta["num_sentences"]
    (4, 24)
    >>> stream = PretrainingStream(shards, max_seq_length=32, seed=0)
    >>> batch = next(iter(stream.batches(batch_size=4)))
    >>> batch["input_ids"].shape, batch["nsp_labels"].shape     # (B, T), (B,)
    (torch.Size([4, 32]), torch.Size([4]))
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from tqdm.auto import tqdm

from training.corpus import iter_documents, split_sentences
from training.folders import replace_folder, staging_folder

log = logging.getLogger(__name__)


@dataclass
class Shards:
    """A tokenised corpus held as flat arrays (memory-mapped)."""

    tokens: np.ndarray
    sentences: np.ndarray
    documents: np.ndarray
    meta: dict
    characters: np.ndarray | None = None  # (D,); None in shards built before it was kept

    @classmethod
    def load(cls, folder: str | Path) -> Shards:
        folder = Path(folder)
        if not (folder / "meta.json").exists():
            raise FileNotFoundError(
                f"{folder} holds no pretraining shards (meta.json missing); build them with "
                "`notesqa train pretrain` (it shards the --corpus first)"
            )
        return cls(
            tokens=np.load(folder / "tokens.npy", mmap_mode="r"),
            sentences=np.load(folder / "sentences.npy"),
            documents=np.load(folder / "documents.npy"),
            meta=json.loads((folder / "meta.json").read_text()),
            characters=(
                np.load(folder / "characters.npy") if (folder / "characters.npy").exists() else None
            ),
        )

    @property
    def num_documents(self) -> int:
        return len(self.documents) - 1

    def log_unigram_prior(self, vocab_size: int) -> np.ndarray:
        """``(V,)`` log frequencies of each token id in the shards (add-one smoothed).

        Starting the MLM decoder bias here lets the model begin at the unigram solution instead of
        having to find it: see ``training.configs.PretrainConfig.prior_bias_init``.

        Example (tokens 5, 5 and 7 of a vocabulary of 8):
            >>> shards = Shards(np.array([5, 5, 7], np.uint16), np.array([0, 1, 2, 3]),
            ...                 np.array([0, 2, 3]), {"vocab_size": 8})  # 3 sentences, 2 documents
            >>> np.exp(shards.log_unigram_prior(8)).round(3)
            array([0.091, 0.091, 0.091, 0.091, 0.091, 0.273, 0.091, 0.182], dtype=float32)
        """
        counts = np.bincount(np.asarray(self.tokens), minlength=vocab_size)[:vocab_size]  # (V,)
        counts = counts.astype(np.float64) + 1.0
        return np.log(counts / counts.sum()).astype(np.float32)

    def tokens_per_char(self) -> np.ndarray:
        """``(D,)`` tokens per character of each document: how well the tokenizer compresses it
        (prose ~0.2; tables, lists of numbers and foreign scripts more).

        Example (two documents: 4 tokens over 20 characters, 2 over 4):
            >>> shards = Shards(np.zeros(6, np.uint16), np.array([0, 2, 4, 6]), np.array([0, 2, 3]),
            ...                 {"vocab_size": 8}, characters=np.array([20, 4]))
            >>> shards.tokens_per_char()
            array([0.2, 0.5])
        """
        if self.characters is None:
            raise ValueError(
                "these shards were built before character counts were kept, so they cannot be "
                "filtered by max_tokens_per_char; delete the run's shards folder to rebuild them, "
                "or set max_tokens_per_char to 0"
            )
        starts = self.sentences[self.documents]  # (D+1,) token offsets of document starts
        return np.diff(starts) / np.maximum(self.characters, 1)

    def document(self, index: int) -> list[np.ndarray]:
        """The sentences of document ``index`` as token-id arrays."""
        first, last = self.documents[index], self.documents[index + 1]
        return [self.tokens[self.sentences[s] : self.sentences[s + 1]] for s in range(first, last)]


def build_shards(
    corpus: Iterable[str | Path],
    tokenizer,
    out_dir: str | Path,
    max_docs: int = 0,
    max_chars: int = 0,
    docs_per_batch: int = 256,
) -> Shards:
    """Tokenise ``corpus`` once (sentences, no special tokens) into shards at ``out_dir``."""
    out = Path(out_dir)
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())  # a copy: a reader's
    backend.no_truncation()  # tokenizer truncates pairs to its windows; whole sentences here
    backend.no_padding()
    dtype = np.uint16 if len(tokenizer) <= np.iinfo(np.uint16).max else np.uint32
    token_parts: list[np.ndarray] = []
    sentence_lengths: list[np.ndarray] = []
    doc_sentence_counts: list[int] = []
    doc_characters: list[int] = []
    pending: list[list[str]] = []

    def flush() -> None:
        flat = [s for doc in pending for s in doc]
        encodings = backend.encode_batch(flat, add_special_tokens=False)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(flat))
        token_parts.append(
            np.fromiter(
                (i for e in encodings for i in e.ids), dtype=dtype, count=int(lengths.sum())
            )
        )
        # drop sentences that tokenise to nothing, keeping per-document counts right
        start = 0
        for doc in pending:
            doc_lengths = lengths[start : start + len(doc)]
            start += len(doc)
            doc_sentence_counts.append(int((doc_lengths > 0).sum()))
            doc_characters.append(
                sum(len(s) for s, n in zip(doc, doc_lengths, strict=True) if n > 0)
            )
        sentence_lengths.append(lengths[lengths > 0])
        pending.clear()

    bar = tqdm(desc="sharding", unit="doc")
    for n, doc in enumerate(iter_documents(corpus, max_chars=max_chars)):
        if max_docs and n >= max_docs:
            break
        pending.append([s for p in doc for s in split_sentences(p)])
        if len(pending) >= docs_per_batch:
            flush()
        bar.update()
    if pending:
        flush()
    bar.close()

    counts = np.asarray(doc_sentence_counts, dtype=np.int64)
    keep_docs = counts > 0
    if not keep_docs.any():
        raise ValueError(f"corpus {list(corpus)} produced no tokens; is it empty?")
    tokens = np.concatenate(token_parts)
    lengths = np.concatenate(sentence_lengths)
    sentences = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=sentences[1:])
    documents = np.zeros(int(keep_docs.sum()) + 1, dtype=np.int64)
    np.cumsum(counts[keep_docs], out=documents[1:])
    meta = {
        "format": 1,
        "vocab_size": len(tokenizer),
        "num_documents": len(documents) - 1,
        "num_sentences": len(sentences) - 1,
        "num_tokens": int(len(tokens)),
        "dtype": np.dtype(dtype).name,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = staging_folder(out)  # marked; a killed run's leftover is removed
    np.save(tmp / "tokens.npy", tokens)
    np.save(tmp / "sentences.npy", sentences)
    np.save(tmp / "documents.npy", documents)
    np.save(tmp / "characters.npy", np.asarray(doc_characters, dtype=np.int64)[keep_docs])
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    replace_folder(tmp, out)
    log.info(
        "sharded %d documents, %d tokens into %s", meta["num_documents"], meta["num_tokens"], out
    )
    return Shards.load(out)


def truncate_pair(a: list[int], b: list[int], max_tokens: int, rng: random.Random) -> None:
    """Trim the longer of ``a``/``b`` (from the front or back at random) until they fit."""
    while len(a) + len(b) > max_tokens:
        longer = a if len(a) > len(b) else b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


def document_pairs(
    shards: Shards,
    doc_index: int,
    max_seq_length: int,
    short_seq_prob: float,
    rng: random.Random,
    doc_pool: np.ndarray,
) -> Iterator[tuple[list[int], list[int], int]]:
    """Yield ``(tokens_a, tokens_b, is_random_next)`` from one document, as BERT does."""
    doc = shards.document(doc_index)
    max_tokens = max_seq_length - 3  # [CLS] A [SEP] B [SEP]
    target = rng.randint(2, max_tokens) if rng.random() < short_seq_prob else max_tokens
    chunk: list[np.ndarray] = []
    length = 0
    i = 0
    while i < len(doc):
        chunk.append(doc[i])
        length += len(doc[i])
        if i == len(doc) - 1 or length >= target:
            a_end = 1 if len(chunk) < 2 else rng.randint(1, len(chunk) - 1)
            tokens_a = [int(t) for seg in chunk[:a_end] for t in seg]
            if len(chunk) == 1 or rng.random() < 0.5:
                is_random_next = 1
                other = doc_index  # a different document, as BERT: 10 tries
                for _ in range(10):
                    other = int(doc_pool[rng.randrange(len(doc_pool))])
                    if other != doc_index:
                        break
                other_doc = shards.document(other)
                tokens_b: list[int] = []
                for seg in other_doc[rng.randrange(len(other_doc)) :]:
                    tokens_b.extend(int(t) for t in seg)
                    if len(tokens_b) >= target - len(tokens_a):
                        break
                i -= len(chunk) - a_end  # the unused segments are put back
            else:
                is_random_next = 0
                tokens_b = [int(t) for seg in chunk[a_end:] for t in seg]
            truncate_pair(tokens_a, tokens_b, max_tokens, rng)
            if tokens_a and tokens_b:
                yield tokens_a, tokens_b, is_random_next
            chunk, length = [], 0
        i += 1


class PretrainingStream:
    """Deterministic, resumable stream of masked NSP batches over a set of documents."""

    def __init__(
        self,
        shards: Shards,
        doc_indices: np.ndarray | None = None,
        *,
        max_seq_length: int = 128,
        short_seq_prob: float = 0.1,
        masked_lm_prob: float = 0.15,
        max_predictions_per_seq: int = 20,
        special_ids: dict[str, int] | None = None,
        seed: int = 0,
        shuffle_buffer: int = 2000,
        continuation: np.ndarray | None = None,
    ) -> None:
        self.shards = shards
        self.docs = (
            np.arange(shards.num_documents) if doc_indices is None else np.asarray(doc_indices)
        )
        if len(self.docs) < 2:
            raise ValueError(
                f"need at least 2 documents for next-sentence pairs, got {len(self.docs)}"
            )
        self.max_seq_length = max_seq_length
        self.short_seq_prob = short_seq_prob
        self.masked_lm_prob = masked_lm_prob
        self.max_predictions = max_predictions_per_seq
        ids = special_ids or {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
        self.pad, self.cls, self.sep, self.mask = ids["pad"], ids["cls"], ids["sep"], ids["mask"]
        self.first_normal_id = max(ids.values()) + 1
        self.vocab_size = int(shards.meta["vocab_size"])
        self.seed = seed
        self.shuffle_buffer = shuffle_buffer
        # whole-word masking when given: continuation[id] is True for '##' pieces
        self.continuation = continuation

    def pairs(self, epoch: int) -> Iterator[tuple[list[int], list[int], int]]:
        """All sentence pairs of one epoch, in a seeded shuffled order."""
        rng = random.Random(self.seed * 100_003 + epoch)
        order = list(self.docs)
        rng.shuffle(order)
        buffer: list[tuple[list[int], list[int], int]] = []
        for doc_index in order:
            buffer.extend(
                document_pairs(
                    self.shards,
                    int(doc_index),
                    self.max_seq_length,
                    self.short_seq_prob,
                    rng,
                    self.docs,
                )
            )
            while len(buffer) >= self.shuffle_buffer:
                yield buffer.pop(rng.randrange(len(buffer)))
        rng.shuffle(buffer)
        yield from buffer

    def batches(
        self, batch_size: int, start_batch: int = 0, rank: int = 0, world_size: int = 1
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Endless masked batches; ``start_batch`` skips that many (exact resume).

        ``batch_size`` is the global batch. Under data parallelism every rank walks the same
        seeded stream and collates only its own contiguous ``batch_size // world_size`` rows; the
        masks are drawn per row from ``(seed, batch, row)``, so the union of the ranks' batches is
        exactly the single-process batch.
        """
        if batch_size % world_size:
            raise ValueError(
                f"batch_size {batch_size} is not divisible by the {world_size} data-parallel "
                "processes; pick a batch_size that is a multiple of --nproc_per_node"
            )
        per_rank = batch_size // world_size
        first_row = rank * per_rank
        index = 0
        epoch = 0
        while True:
            group: list[tuple[list[int], list[int], int]] = []
            produced = False
            for pair in self.pairs(epoch):
                group.append(pair)
                if len(group) == batch_size:
                    produced = True
                    if index >= start_batch:
                        yield self.collate(
                            group[first_row : first_row + per_rank], index, first_row
                        )
                    index += 1
                    group = []
            if not produced:
                raise ValueError(
                    f"the corpus yields fewer than one batch of {batch_size} examples; "
                    "use more text or a smaller batch_size"
                )
            epoch += 1

    def choose_masked(
        self, seq: list[int], candidates: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Sorted positions to predict: 15% of ``candidates`` (capped), whole words if enabled.

        Example (whole-word masking keeps '##' pieces with their word; token 51 is one):
            >>> shards = Shards(np.array([5, 5, 7], np.uint16), np.array([0, 1, 2, 3]),
            ...                 np.array([0, 2, 3]), {"vocab_size": 8})  # 3 sentences, 2 documents
            >>> continuation = np.zeros(100, dtype=bool)
            >>> continuation[51] = True
            >>> stream = PretrainingStream(shards, masked_lm_prob=0.5, continuation=continuation)
            >>> stream.choose_masked([2, 50, 51, 60, 3], np.array([1, 2, 3]),
            ...                      np.random.default_rng(0))
            array([1, 2])
        """
        num = min(self.max_predictions, max(1, int(round(len(candidates) * self.masked_lm_prob))))
        if self.continuation is None:
            return np.sort(rng.choice(candidates, size=num, replace=False))
        words: list[list[int]] = []
        for position in candidates.tolist():
            if words and words[-1][-1] == position - 1 and self.continuation[seq[position]]:
                words[-1].append(position)
            else:
                words.append([position])
        chosen: list[int] = []
        # as Google's create_pretraining_data: shuffled words, skipping any that would overshoot
        for word_index in rng.permutation(len(words)).tolist():
            if len(chosen) >= num:
                break
            if len(chosen) + len(words[word_index]) <= num:
                chosen.extend(words[word_index])
        if not chosen:  # every word is longer than the budget: mask the shortest one
            chosen = min(words, key=len)
        return np.sort(np.asarray(chosen, dtype=np.int64))

    def collate(
        self, group: list[tuple[list[int], list[int], int]], batch_index: int, first_row: int = 0
    ) -> dict[str, torch.Tensor]:
        """Pack pairs into padded tensors and draw each row's masks (80/10/10)."""
        width = max(len(a) + len(b) + 3 for a, b, _ in group)
        n = len(group)
        input_ids = np.full((n, width), self.pad, dtype=np.int64)  # (B, T)
        token_type = np.zeros((n, width), dtype=np.int64)  # (B, T)
        attention = np.zeros((n, width), dtype=np.int64)  # (B, T)
        positions, labels = [], []
        for row, (a, b, _) in enumerate(group):
            rng = np.random.default_rng([self.seed, batch_index, first_row + row])
            seq = [self.cls, *a, self.sep, *b, self.sep]
            input_ids[row, : len(seq)] = seq
            token_type[row, len(a) + 2 : len(seq)] = 1
            attention[row, : len(seq)] = 1
            # candidates: every real token, never [CLS]/[SEP]/[PAD]
            candidates = np.r_[1 : len(a) + 1, len(a) + 2 : len(seq) - 1]
            chosen = self.choose_masked(seq, candidates, rng)
            num = len(chosen)
            labels.append(input_ids[row, chosen].copy())
            roll = rng.random(num)
            replace_mask = roll < 0.8
            replace_random = (roll >= 0.8) & (roll < 0.9)
            input_ids[row, chosen[replace_mask]] = self.mask
            input_ids[row, chosen[replace_random]] = rng.integers(
                self.first_normal_id, self.vocab_size, size=int(replace_random.sum())
            )
            positions.append(row * width + chosen)
        return {
            "input_ids": torch.from_numpy(input_ids),
            "token_type_ids": torch.from_numpy(token_type),
            "attention_mask": torch.from_numpy(attention),
            "mlm_positions": torch.from_numpy(np.concatenate(positions)),  # (M,) flat index in B*T
            "mlm_labels": torch.from_numpy(np.concatenate(labels)),  # (M,)
            "nsp_labels": torch.tensor(
                [r for _, _, r in group], dtype=torch.int64
            ),  # (B,) 1 = random
        }


def special_token_ids(tokenizer) -> dict[str, int]:
    return {
        "pad": tokenizer.pad_token_id,
        "unk": tokenizer.unk_token_id,
        "cls": tokenizer.cls_token_id,
        "sep": tokenizer.sep_token_id,
        "mask": tokenizer.mask_token_id,
    }


def continuation_mask(tokenizer) -> np.ndarray:
    """``mask[id]`` is True for WordPiece continuation pieces (``##ing``), for whole-word masking.

    Example:
        >>> from embedder.tokenizer_files import load_tokenizer
        >>> tokenizer = load_tokenizer("models/tokenizer")
        >>> mask = continuation_mask(tokenizer)
        >>> mask[tokenizer.convert_tokens_to_ids(["##ing", "the"])]
        array([ True, False])
    """
    mask = np.zeros(len(tokenizer), dtype=bool)
    for token, index in tokenizer.get_vocab().items():
        mask[index] = token.startswith("##")
    return mask
