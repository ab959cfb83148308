"""Session fixtures: a synthetic corpus and SQuAD file, and a tiny tokenizer + BERT built once.

Everything is generated here from templates (no network, no ../shared), so the suite runs the same
on a laptop and in CI. Fixtures hand out paths; tests that modify a model copy it first.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)

NAMES = [
    "Ada",
    "Boris",
    "Chloe",
    "Dmitri",
    "Elena",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Kira",
    "Liam",
    "Maya",
    "Nils",
    "Olga",
    "Pablo",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
]
CITIES = ["Paris", "Lisbon", "Oslo", "Cairo", "Lima", "Seoul", "Vienna", "Dublin", "Quito", "Hanoi"]
JOBS = [
    "chemist",
    "painter",
    "sailor",
    "engineer",
    "poet",
    "farmer",
    "doctor",
    "pilot",
    "baker",
    "judge",
]
THINGS = [
    "bridges",
    "violins",
    "maps",
    "clocks",
    "boats",
    "gardens",
    "engines",
    "songs",
    "books",
    "lamps",
]
COLOURS = ["red", "blue", "green", "yellow", "white", "black", "orange", "purple"]


def _person(rng: random.Random, index: int) -> dict:
    return {
        "name": f"{rng.choice(NAMES)} {rng.choice(NAMES)}son",
        "city": rng.choice(CITIES),
        "job": rng.choice(JOBS),
        "thing": rng.choice(THINGS),
        "year": str(1800 + rng.randrange(200)),
        "colour": rng.choice(COLOURS),
        "index": index,
    }


def _biography(p: dict) -> list[str]:
    return [
        f"{p['name']} was born in {p['city']} in {p['year']}.",
        f"{p['name']} worked as a {p['job']} for many years.",
        f"The favourite colour of {p['name']} was {p['colour']}.",
        f"In later life {p['name']} collected {p['thing']} from every country.",
        f"Friends remember that the {p['job']} often visited {p['city']} again.",
    ]


def make_corpus(path: Path, n_docs: int = 160, seed: int = 0) -> Path:
    """JSONL.gz articles of templated biographies (two paragraphs each)."""
    rng = random.Random(seed)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for i in range(n_docs):
            p = _person(rng, i)
            sentences = _biography(p)
            rng.shuffle(sentences)
            text = " ".join(sentences[:3]) + "\n" + " ".join(sentences[3:])
            handle.write(json.dumps({"id": str(i), "title": p["name"], "text": text}) + "\n")
    return path


def make_squad(path: Path, n_paragraphs: int = 60, seed: int = 1) -> Path:
    """A SQuAD v1.1-format file: questions about templated biographies, answers located exactly."""
    rng = random.Random(seed)
    data = []
    for i in range(n_paragraphs):
        p = _person(rng, i)
        context = " ".join(_biography(p))
        qas = []
        for q_index, (question, answer) in enumerate(
            [
                (f"Where was {p['name']} born?", p["city"]),
                (f"When was {p['name']} born?", p["year"]),
                (f"What did {p['name']} work as?", p["job"]),
                (f"What was the favourite colour of {p['name']}?", p["colour"]),
                (f"What did {p['name']} collect?", p["thing"]),
            ]
        ):
            start = context.index(answer)
            qas.append(
                {
                    "id": f"q{i}-{q_index}",
                    "question": question,
                    "answers": [{"text": answer, "answer_start": start}],
                }
            )
        data.append({"title": f"T{i}", "paragraphs": [{"context": context, "qas": qas}]})
    path.write_text(json.dumps({"version": "1.1", "data": data}))
    return path


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory) -> Path:
    """The ONNX exports of the tiny models (``embedder.onnx_runtime``) go to a session folder,
    never to the user's ~/.cache (subprocesses inherit it)."""
    folder = tmp_path_factory.mktemp("onnx-cache")
    os.environ["NOTESQA_CACHE"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    make_corpus(folder / "corpus.jsonl.gz")
    make_squad(folder / "squad-train.json", n_paragraphs=80, seed=1)
    make_squad(folder / "squad-dev.json", n_paragraphs=20, seed=2)
    return folder


@pytest.fixture(scope="session")
def tiny_recipe():
    from training.configs import load_recipe

    recipe = load_recipe("tiny")
    recipe.tokenizer.vocab_size = 400
    recipe.pretrain.max_steps = 40
    recipe.pretrain.heldout_docs = 10
    recipe.reader.max_train_examples = 0
    return recipe


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory, data_dir, tiny_recipe) -> Path:
    from training.tokenizer import train_tokenizer

    out = tmp_path_factory.mktemp("tokenizer")
    train_tokenizer([data_dir / "corpus.jsonl.gz"], tiny_recipe.tokenizer, out)
    return out


@pytest.fixture(scope="session")
def tiny_pretrain_run(tmp_path_factory, data_dir, tiny_tokenizer_dir, tiny_recipe) -> Path:
    from training.pretrain import pretrain

    run = tmp_path_factory.mktemp("pretrain")
    pretrain(tiny_recipe.pretrain, [data_dir / "corpus.jsonl.gz"], tiny_tokenizer_dir, run)
    return run


@pytest.fixture(scope="session")
def tiny_bert_dir(tiny_pretrain_run) -> Path:
    return tiny_pretrain_run / "model"


@pytest.fixture(scope="session")
def tiny_reader_dir(tmp_path_factory, data_dir, tiny_bert_dir, tiny_recipe) -> Path:
    from training.reader import train_reader

    out = tmp_path_factory.mktemp("reader") / "reader"
    cfg = tiny_recipe.reader
    cfg.epochs = 3.0
    train_reader(cfg, tiny_bert_dir, data_dir / "squad-train.json", out)
    return out


@pytest.fixture(scope="session")
def tiny_embedder_dir(tmp_path_factory, data_dir, tiny_bert_dir, tiny_recipe) -> Path:
    from training.biencoder import train_embedder

    out = tmp_path_factory.mktemp("embedder") / "embedder"
    train_embedder(tiny_recipe.embedder, tiny_bert_dir, data_dir / "squad-train.json", out)
    return out


@pytest.fixture
def copy_dir(tmp_path):
    """Copy a session model folder so a test may change it."""

    def _copy(src: Path) -> Path:
        dst = tmp_path / src.name
        shutil.copytree(src, dst)
        return dst

    return _copy


def _write_articles(path: Path, docs) -> Path:
    """``docs``: (title, paragraphs) pairs, written as JSONL.gz articles (one per line)."""
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for title, paragraphs in docs:
            handle.write(json.dumps({"title": title, "text": "\n".join(paragraphs)}) + "\n")
    return path


@pytest.fixture
def write_articles():
    """A corpus file from (title, paragraphs) pairs: ``write_articles(tmp_path / "w.jsonl.gz", docs)``."""
    return _write_articles
