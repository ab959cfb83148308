from training.folders import previous_copy, replace_folder


def staged_folder(path, text):
    path.mkdir()
    (path / "config.json").write_text(text)
    return path


def test_a_staged_folder_replaces_the_target_whole(tmp_path):
    target = tmp_path / "model"
    assert replace_folder(staged_folder(tmp_path / ".model.tmp", "first"), target) == target
    (target / "stale.bin").write_text("from the first model")
    replace_folder(staged_folder(tmp_path / ".model.tmp", "second"), target)
    assert sorted(p.name for p in target.iterdir()) == ["config.json"]  # nothing of the old kept
    assert (target / "config.json").read_text() == "second"
    assert not (tmp_path / ".model.tmp").exists() and not previous_copy(target).exists()


def test_a_leftover_previous_copy_does_not_block_the_swap(tmp_path):
    target = staged_folder(tmp_path / "model", "current")
    staged_folder(previous_copy(target), "from an interrupted swap")
    replace_folder(staged_folder(tmp_path / ".model.tmp", "new"), target)
    assert (target / "config.json").read_text() == "new"
    assert previous_copy(target) == tmp_path / ".model.old" and not previous_copy(target).exists()
