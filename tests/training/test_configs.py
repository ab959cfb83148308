import json

import pytest

from training.configs import RECIPES_DIR, load_recipe


@pytest.mark.parametrize("path", sorted(RECIPES_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_every_shipped_recipe_loads(path):
    recipe = load_recipe(path)
    assert recipe.pretrain.hidden_size % recipe.pretrain.num_attention_heads == 0
    assert recipe.reader.doc_stride < recipe.reader.max_seq_length


def test_recipe_by_name_and_unknown_key(tmp_path):
    assert load_recipe("tiny").pretrain.hidden_size == 64
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"pretrain": {"hiden_size": 3}}))
    with pytest.raises(ValueError, match="hiden_size"):
        load_recipe(bad)
    with pytest.raises(FileNotFoundError, match="tiny"):
        load_recipe(tmp_path / "missing.json")
