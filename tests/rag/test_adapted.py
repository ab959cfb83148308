"""Adapted models inside an index folder: found only when complete and ours, carried on updates."""

import json

from embedder.owned_folder import write_marker
from rag.adapted import adaptation_summary, adapted_reader, carry_adapted
from rag.index_folder import MANIFEST_FILE, foreign_entries


def _adapted(index, notes=None):
    folder = index / "adapted"
    (folder / "reader").mkdir(parents=True)
    write_marker(folder, "adapted")
    (folder / "reader" / "config.json").write_text("{}")
    (folder / "reader" / "model.safetensors").write_bytes(b"weights")
    manifest = {
        "notesqa": "adapted",
        "steps": 5,
        "minutes": 2.0,
        "base": "reader@x",
        "notes": notes or {},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_an_adapted_reader_counts_only_when_marked_and_complete(tmp_path):
    folder = _adapted(tmp_path)
    assert adapted_reader(tmp_path) == folder / "reader"
    (folder / "manifest.json").unlink()  # a half-written one is never used
    assert adapted_reader(tmp_path) is None
    other = tmp_path / "other"
    (other / "adapted" / "reader").mkdir(parents=True)
    (other / "adapted" / "manifest.json").write_text("{}")
    (other / "adapted" / "reader" / "config.json").write_text("{}")
    assert adapted_reader(other) is None  # not written by notesqa: not ours to load


def test_owned_leftovers_of_an_interrupted_adapt_are_not_foreign_but_others_are(tmp_path):
    (tmp_path / MANIFEST_FILE).write_text("{}")
    _adapted(tmp_path)
    killed = tmp_path / ".adapted.tmp-abc"
    killed.mkdir()
    write_marker(killed, "adapted")
    assert foreign_entries(tmp_path) == []
    (tmp_path / ".adapted.tmp-user").mkdir()  # same name pattern, but not ours
    assert foreign_entries(tmp_path) == [".adapted.tmp-user"]


def test_an_index_update_carries_the_adapted_models_into_the_new_build(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir(), new.mkdir()
    assert not carry_adapted(old, new)
    _adapted(old)
    assert carry_adapted(old, new)
    assert (new / "adapted" / "reader" / "model.safetensors").read_bytes() == b"weights"
    assert adapted_reader(new) == new / "adapted" / "reader"


def test_stats_suggest_adapting_again_after_the_notes_changed_a_lot(tmp_path):
    _adapted(tmp_path, notes={"a.md": ["a" * 16, 100], "b.md": ["b" * 16, 100]})
    same = adaptation_summary(tmp_path, [("a.md", "a" * 64, 100), ("b.md", "b" * 64, 100)])
    assert same["notes_changed_since_adapting"] == 0 and "suggestion" not in same
    assert same["reader"].startswith("adapted to these notes (5 steps, 2.0 min")
    edited = adaptation_summary(
        tmp_path, [("a.md", "a" * 64, 100), ("b.md", "c" * 64, 100), ("c.md", "d" * 64, 100)]
    )
    assert edited["notes_changed_since_adapting"] == round(2 / 3, 4)
    assert "run `notesqa adapt NOTES` again" in edited["suggestion"]
    assert adaptation_summary(tmp_path / "none", [])["reader"].startswith("shipped")
