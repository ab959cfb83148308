"""``notesqa stats``: what an index holds (files, passages, settings, tags), and with ``--files``
which files were indexed and which were skipped, with the reason.

Example:
    $ notesqa stats --index ~/notes/.notesqa --files
          files: 5
       passages: 37
           tags: #exam (2), #ml (1)
    indexed (5 files): ...
"""

from __future__ import annotations

from rag.option_types import print_json


def _files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"


def cmd_stats(args) -> int:
    from rag.pipeline import resolve_index_dir
    from rag.store import NotesStore

    with NotesStore.open(resolve_index_dir(args.index)) as store:
        stats = store.stats()
        stats["tags"] = dict(store.tags())  # tag -> notes with it
        has_tags = store.has_tags
        if args.files:
            indexed = [{"path": d["path"], "passages": d["num_chunks"]} for d in store.documents()]
            skipped = [{"path": p, "reason": r} for p, r in store.skipped()]
    if args.json:
        if args.files:
            stats = {**stats, "indexed_files": indexed, "skipped_files": skipped}
        print_json(stats)
        return 0
    for key, value in stats.items():
        if key == "tags":
            value = ", ".join(f"#{tag} ({count})" for tag, count in value.items()) or (
                "none" if has_tags else "not stored by this index's notesqa; run `notesqa index`"
            )
        print(f"{key:>15}: {value}")
    if args.files:
        print(f"\nindexed ({_files(len(indexed))}):")
        for item in indexed:
            print(f"  {item['path']}  ({item['passages']} passages)")
        print(f"skipped ({_files(len(skipped))}):")
        for item in skipped:
            print(f"  {item['path']}: {item['reason']}")
    return 0
