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


def test_every_recipe_loads_and_names_its_data_relative_to_the_data_folder():
    for path in RECIPES_DIR.glob("*.json"):
        data = load_recipe(path.stem).data
        for file in [*data.corpus, data.squad_train, *data.sts_train]:
            assert not file.startswith(("/", "..")), (path.name, file)
    resolved = load_recipe("mini-allwiki").data.under("/data")
    assert resolved.squad_train == "/data/squad/train-v1.1.json.gz"


def test_a_recipe_extends_another_and_holds_only_what_differs(tmp_path):
    (tmp_path / "base.json").write_text(
        json.dumps({"data": {"sts_train": ["a.csv"]}, "reader": {"epochs": 2.0, "seed": 3}})
    )
    (tmp_path / "child.json").write_text(
        json.dumps({"extends": "base", "data": {"sts_train": []}, "reader": {"epochs": 1.0}})
    )
    child = load_recipe(tmp_path / "child.json")
    assert child.reader.epochs == 1.0 and child.reader.seed == 3  # one key replaced, one inherited
    assert child.data.sts_train == []  # a list is replaced whole
    shipped = load_recipe("mini-allwiki-reader128-mined")
    assert shipped.pretrain.max_steps == 15500  # from mini-allwiki-cont, two levels up
    assert shipped.reader.max_seq_length == 128  # from mini-allwiki-reader128


def test_recipes_extending_each_other_in_a_circle_are_refused(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"extends": "b"}))
    (tmp_path / "b.json").write_text(json.dumps({"extends": "a"}))
    with pytest.raises(ValueError, match="in a circle: a -> b -> a"):
        load_recipe(tmp_path / "a.json")
