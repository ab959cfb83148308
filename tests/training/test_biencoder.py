import json

import numpy as np
import pytest

from embedder import Embedder
from training.biencoder import build_sentence_model, evaluate_retrieval


def test_trained_embedder_retrieves_far_better_than_chance(tiny_embedder_dir, data_dir):
    scores = evaluate_retrieval(Embedder.load(tiny_embedder_dir), data_dir / "squad-dev.json")
    assert scores["num_paragraphs"] == 20 and scores["num_questions"] == 100
    assert 0.0 <= scores["recall@1"] <= scores["recall@5"] <= scores["recall@20"] == 1.0
    # chance recall@1 with 20 paragraphs is 0.05; questions name the person in the paragraph
    assert scores["recall@1"] > 0.15, scores


ADA_EXAMPLES = [
    {
        "title": "T",
        "question": "Where was Ada born?",
        "context": "Ada was born in Oslo.",
        "answers": [{"text": "Oslo"}],
        "is_impossible": False,
    },
    {
        "title": "T",
        "question": "What did Ada collect?",
        "context": "Ada collected clocks in Oslo.",
        "answers": [{"text": "clocks"}],
        "is_impossible": False,
    },
    {
        "title": "T",
        "question": "Who sang?",
        "context": "Boris sang.",
        "answers": [{"text": "Boris"}],
        "is_impossible": False,
    },
]


def test_hard_negatives_come_from_the_same_article_without_the_answer():
    from training.biencoder import squad_triplets

    triplets = {q: (pos, neg) for q, pos, neg in squad_triplets(ADA_EXAMPLES)}
    # the other Ada paragraph also says Oslo, so the negative must be the Boris one
    assert triplets["Where was Ada born?"] == ("Ada was born in Oslo.", "Boris sang.")
    # BM25 prefers the lexically close paragraph that lacks the answer
    assert triplets["What did Ada collect?"][1] == "Ada was born in Oslo."


def test_paragraphs_that_also_hold_the_answer_are_found_within_the_article():
    from training.biencoder import paragraphs_with_the_answer

    elsewhere = {**ADA_EXAMPLES[2], "title": "U", "context": "Ada sang in Oslo."}
    found = paragraphs_with_the_answer(ADA_EXAMPLES + [elsewhere])
    # "Oslo" is also in the other Ada paragraph of article T, not counted in article U
    assert found[("Where was Ada born?", "Ada was born in Oslo.")] == {
        "Ada collected clocks in Oslo."
    }
    assert found[("What did Ada collect?", "Ada collected clocks in Oslo.")] == frozenset()
    assert found[("Who sang?", "Boris sang.")] == frozenset()


def test_scored_pairs_from_sts_b_and_sick(tmp_path):
    from training.biencoder import read_scored_pairs

    sts = tmp_path / "sts-train.csv"
    sts.write_text(
        "main-captions\tMSRvid\t2012test\t0001\t5.000\tA plane takes off.\tA jet takes off.\n"
    )
    sick = tmp_path / "SICK_train.txt"
    sick.write_text(
        "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"
        "1\tA boy runs.\tA child runs.\t4.5\tENTAILMENT\n"
    )
    assert read_scored_pairs(sts) == [("A plane takes off.", "A jet takes off.", 1.0)]
    assert read_scored_pairs(sick) == [("A boy runs.", "A child runs.", 0.875)]
    (tmp_path / "empty.csv").write_text("nothing here\n")
    with pytest.raises(ValueError, match="no scored sentence pairs"):
        read_scored_pairs(tmp_path / "empty.csv")


def test_multi_dataset_run_with_cosent_cached_loss_and_matryoshka(
    tmp_path, data_dir, tiny_bert_dir, tiny_recipe, monkeypatch
):
    import dataclasses

    from training import batching
    from training.biencoder import train_embedder

    grouped, samplers = [], []  # the SQuAD dataset's batches, as the article sampler made them
    make_batches = batching.ArticleBatchSampler._batches
    monkeypatch.setattr(
        batching.ArticleBatchSampler,
        "_batches",
        lambda self, epoch: (
            samplers.append(self) or grouped.append(make_batches(self, epoch)) or grouped[-1]
        ),
    )

    sts = tmp_path / "sts-train.csv"
    sts.write_text(
        "".join(
            f"g\tf\ty\t{i}\t{i % 6}.0\tA person number {i} walks.\tSomeone number {i} is walking.\n"
            for i in range(40)
        )
    )
    cfg = dataclasses.replace(
        tiny_recipe.embedder,
        max_train_pairs=64,
        batch_grouping="article",  # SQuAD batches by article, the STS pairs without duplicates
        separate_answer_paragraphs=True,
        cached_mnrl=True,
        mini_batch_size=8,
        matryoshka_dims=[tiny_bert_dim(tiny_bert_dir), 16],
        prompts={"query": "query: ", "passage": "passage: "},
    )
    out = train_embedder(
        cfg, tiny_bert_dir, data_dir / "squad-train.json", tmp_path / "emb", sts_files=[sts]
    )
    assert grouped and all(len(batch) == cfg.batch_size for batch in grouped[-1])
    assert len(samplers[-1].row_apart) == cfg.max_train_pairs  # one (empty: one-paragraph
    # articles) set of answer-bearing paragraphs per training row
    emb = Embedder.load(out)
    vectors = emb.encode(["Where was Ada born?", "Ada was born in Oslo."])
    assert vectors.shape == (2, emb.dim)
    # trained with prompts: they are saved with the model and encode(kind=...) prepends them
    assert emb.prompts == {"query": "query: ", "passage": "passage: "}
    plain = emb.encode(["Where was Ada born?"])
    assert not np.allclose(emb.encode(["Where was Ada born?"], kind="query"), plain)
    np.testing.assert_allclose(
        emb.encode(["Where was Ada born?"], kind="query"),
        emb.encode(["query: Where was Ada born?"]),
        atol=1e-5,
    )
    # the held-out articles' retrieval, scored by sentence-transformers' evaluator, is kept
    held_out = json.loads((out / "eval_results.json").read_text())
    at_1, at_20 = (
        next(v for k, v in held_out.items() if k.endswith(f"accuracy@{n}")) for n in (1, 20)
    )
    assert 0.0 <= at_1 <= at_20 <= 1.0


def test_split_articles_holds_out_whole_articles():
    from training.biencoder import split_articles

    examples = [
        {"title": f"T{i % 5}", "context": f"c{i % 5}", "is_impossible": False} for i in range(50)
    ]
    train, heldout = split_articles(examples, heldout_articles=2, seed=3)
    assert len({e["title"] for e in heldout}) == 2 and len(train) + len(heldout) == 50
    assert not {e["title"] for e in train} & {e["title"] for e in heldout}
    with pytest.raises(ValueError, match="lower eval_articles"):
        split_articles(examples, heldout_articles=5)


def tiny_bert_dim(folder) -> int:
    import json

    return json.loads((folder / "config.json").read_text())["hidden_size"]


def test_sentence_model_takes_the_finetuning_dropout_and_the_cpu_attention_kernel(tiny_bert_dir):
    model = build_sentence_model(tiny_bert_dir, 64, "cpu", dropout=0.1, attention="auto")
    bert = model[0].auto_model
    assert bert.config.hidden_dropout_prob == 0.1
    assert bert.config.attention_probs_dropout_prob == 0.1
    assert bert.config._attn_implementation == "eager"
    kept = build_sentence_model(tiny_bert_dir, 64, "cpu", attention="sdpa")[0].auto_model
    assert kept.config._attn_implementation == "sdpa"


def test_an_sts_only_stage_trains_on_scored_pairs_alone(
    tmp_path, data_dir, tiny_embedder_dir, tiny_recipe
):
    import dataclasses

    from training.biencoder import train_embedder

    cfg = dataclasses.replace(
        tiny_recipe.embedder, sts_only=True, epochs=3.0, batch_size=16, eval_articles=0
    )
    with pytest.raises(ValueError, match="scored pairs alone"):
        train_embedder(cfg, tiny_embedder_dir, tmp_path / "missing.json", tmp_path / "emb")
    walking = [f"A person number {i} walks." for i in range(32)]
    similar = [f"Someone number {i} is walking." for i in range(32)]
    unrelated = [f"The market fell {i} points on Monday." for i in range(32)]
    sts = tmp_path / "sts-train.csv"
    sts.write_text(
        "".join(
            f"g\tf\ty\t{i}\t{score}\t{a}\t{b}\n"
            for i, (a, b, score) in enumerate(
                [(w, s, "5.0") for w, s in zip(walking, similar, strict=True)]
                + [(w, u, "0.0") for w, u in zip(walking, unrelated, strict=True)]
            )
        )
    )

    def gap(folder) -> float:  # mean cosine of the similar pairs minus the unrelated ones
        emb = Embedder.load(folder)
        w, s, u = (emb.encode(texts) for texts in (walking, similar, unrelated))
        return float(((w * s).sum(1) - (w * u).sum(1)).mean())

    out = train_embedder(
        cfg, tiny_embedder_dir, data_dir / "squad-train.json", tmp_path / "emb", sts_files=[sts]
    )
    assert gap(out) > gap(tiny_embedder_dir) + 0.5


def test_a_bad_batch_grouping_is_refused_before_any_data_is_read(tmp_path, tiny_recipe):
    import dataclasses

    from training.biencoder import train_embedder

    cfg = dataclasses.replace(tiny_recipe.embedder, batch_grouping="topic")
    with pytest.raises(ValueError, match="batch_grouping must be one of none, article"):
        train_embedder(cfg, tmp_path / "no-model", tmp_path / "missing.json", tmp_path / "emb")
    assert not (tmp_path / "emb").exists()
    cfg = dataclasses.replace(
        tiny_recipe.embedder, batch_grouping="none", separate_answer_paragraphs=True
    )
    with pytest.raises(ValueError, match="set batch_grouping to 'article'"):
        train_embedder(cfg, tmp_path / "no-model", tmp_path / "missing.json", tmp_path / "emb")
    assert not (tmp_path / "emb").exists()


def test_embedder_training_resumes_after_a_stop_from_pickle_free_checkpoints(
    tmp_path, data_dir, tiny_bert_dir, tiny_recipe, monkeypatch
):
    import dataclasses

    import torch
    from safetensors.torch import load_file

    from training.biencoder import train_embedder
    from training.folders import checkpoint_folder
    from training.trainer_checkpoints import PickleFreeTrainer

    steps = []  # optimisation steps each call trains
    one_step = PickleFreeTrainer.training_step
    monkeypatch.setattr(
        PickleFreeTrainer,
        "training_step",
        lambda self, *a, **k: steps.append(1) or one_step(self, *a, **k),
    )

    sts = tmp_path / "sts-train.csv"
    sts.write_text(
        "".join(
            f"g\tf\ty\t{i}\t{i % 6}.0\tA person number {i} walks.\tSomeone number {i} is walking.\n"
            for i in range(48)
        )
    )
    cfg = dataclasses.replace(
        tiny_recipe.embedder,
        max_train_pairs=64,
        batch_grouping="article",  # the data order must replay exactly after the resume
        eval_articles=0,
        precision="fp32",
        dropout=0.1,  # and the dropout RNG
        save_every=2,
    )
    train = data_dir / "squad-train.json"
    straight = train_embedder(cfg, tiny_bert_dir, train, tmp_path / "a", sts_files=[sts])
    assert straight == tmp_path / "a" and not checkpoint_folder(straight).exists()
    total, steps[:] = len(steps), []
    assert total > 4  # past a save_every of 2: the straight run checkpointed on the way

    stopped = train_embedder(
        cfg, tiny_bert_dir, train, tmp_path / "b", sts_files=[sts], max_minutes=0.0
    )
    assert stopped == checkpoint_folder(tmp_path / "b") and not (tmp_path / "b").exists()
    (saved,) = stopped.glob("checkpoint-*")
    assert saved.name == "checkpoint-1" and len(steps) == 1
    files = {p.name for p in saved.iterdir()}
    assert {"model.safetensors", "optimizer.safetensors", "rng.safetensors"} <= files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl"))]  # no pickles

    other = dataclasses.replace(cfg, learning_rate=cfg.learning_rate / 2)
    with pytest.raises(ValueError, match="other settings"):
        train_embedder(other, tiny_bert_dir, train, tmp_path / "b", sts_files=[sts])
    steps[:] = []
    resumed = train_embedder(cfg, tiny_bert_dir, train, tmp_path / "b", sts_files=[sts])
    assert resumed == tmp_path / "b" and not stopped.exists()
    assert len(steps) == total - 1  # went on from step 1
    a = load_file(straight / "model.safetensors")
    b = load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


def trainer_kwargs(monkeypatch) -> dict:
    """The keyword arguments the embedder hands its trainer, filled in when it is made."""
    from training.trainer_checkpoints import PickleFreeTrainer

    seen: dict = {}
    make = PickleFreeTrainer.__init__

    def capture(self, *args, **kwargs):
        seen.update(kwargs)
        make(self, *args, **kwargs)

    monkeypatch.setattr(PickleFreeTrainer, "__init__", capture)
    return seen


@pytest.mark.parametrize("name", ["angle", "cosine"])
def test_the_scored_pair_loss_is_the_recipes_choice(
    tmp_path, data_dir, tiny_embedder_dir, tiny_recipe, monkeypatch, name
):
    import dataclasses

    from training.biencoder import SCORED_PAIR_LOSSES, train_embedder

    gold = tmp_path / "sts-train.csv"
    gold.write_text(
        "".join(
            f"g\tf\ty\t{i}\t{i % 6}.0\tA man {i} walks.\tA man {i} is walking.\n" for i in range(20)
        )
    )
    cfg = dataclasses.replace(
        tiny_recipe.embedder,
        sts_only=True,
        epochs=1.0,
        batch_size=8,
        eval_articles=0,
        matryoshka_dims=[],
        sts_loss="euclid",
    )
    with pytest.raises(ValueError, match="sts_loss 'euclid' is not one of"):
        train_embedder(
            cfg,
            tiny_embedder_dir,
            data_dir / "squad-train.json",
            tmp_path / "emb",
            sts_files=[gold],
        )
    assert not (tmp_path / "emb").exists()
    seen = trainer_kwargs(monkeypatch)
    cfg = dataclasses.replace(cfg, sts_loss=name)
    train_embedder(
        cfg, tiny_embedder_dir, data_dir / "squad-train.json", tmp_path / "emb", sts_files=[gold]
    )
    assert type(seen["loss"]) is SCORED_PAIR_LOSSES[name]
