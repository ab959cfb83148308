from embedder import Embedder
from training.biencoder import evaluate_retrieval


def test_trained_embedder_retrieves_far_better_than_chance(tiny_embedder_dir, data_dir):
    scores = evaluate_retrieval(Embedder.load(tiny_embedder_dir), data_dir / "squad-dev.json")
    assert scores["num_paragraphs"] == 20 and scores["num_questions"] == 100
    assert 0.0 <= scores["recall@1"] <= scores["recall@5"] <= scores["recall@20"] == 1.0
    # chance recall@1 with 20 paragraphs is 0.05; questions name the person in the paragraph
    assert scores["recall@1"] > 0.15, scores
