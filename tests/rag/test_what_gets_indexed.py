"""End to end: ignored files, app folders and the index itself never reach search results."""

from rag.pipeline import NotesQA


def test_ignored_and_app_folders_never_show_up_in_search(tmp_path, tiny_embedder_dir):
    notes = tmp_path / "vault"
    for path, text in {
        "lecture.md": "---\ntags: [physics]\n---\n# Waves\n\nA zebra wave travels.\n",
        "drafts/idea.md": "A zebra draft idea.\n",
        "drafts/keep.md": "A zebra note worth keeping.\n",
        ".obsidian/workspace.md": "zebra workspace settings\n",
        ".trash/old.md": "zebra in the trash\n",
        "scratch.md": "zebra scratch notes\n",
    }.items():
        (notes / path).parent.mkdir(parents=True, exist_ok=True)
        (notes / path).write_text(text)
    (notes / ".notesqaignore").write_text("drafts/\n!drafts/keep.md\n")
    (notes / ".gitignore").write_text("scratch.md\n")
    qa = NotesQA.open(notes, embedder=str(tiny_embedder_dir))
    summary = qa.index(progress=False)
    found = {hit.source for hit in qa.search("zebra", k=20, mode="bm25")}
    assert found == {"lecture.md", "drafts/keep.md"}
    skipped = dict(summary.skipped)
    assert "notesqaignore" in skipped.get("drafts/idea.md", skipped.get("drafts/", ""))
    assert "gitignore" in skipped["scratch.md"]
    assert not any(".obsidian" in path or ".trash" in path for path in skipped)
    passages = " ".join(hit.text for hit in qa.search("zebra", k=20, mode="bm25"))
    assert "tags:" not in passages and "---" not in passages  # front matter stays out
    qa.close()
