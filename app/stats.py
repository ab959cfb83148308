"""``notesqa stats``: what an index holds (files, passages, settings, tags), and with ``--files``
which files were indexed and which were skipped, with the reason.

Example:
    $ notesqa stats --index ~/notes/.notesqa --files
          index: /home/ada/notes/.notesqa
          files: 5
       passages: 37
       chunking: up to 190 tokens, 40 overlapping
           tags: #exam (2), #ml (1)
    indexed (5 files): ...
"""

from __future__ import annotations

from app.errors import count, for_terminal
from rag.option_types import print_json

# Names read better than the manifest's keys; a key not named here is shown with its underscores
# as spaces, so a setting added later is shown too.
LABELS = {
    "index_dir": "index",
    "notes_root": "notes",
    "format_version": "format",
    "index_type": "index type",
    "recall_at_10": "recall@10",
    "dim": "dimensions",
}


def shown_value(key: str, value: object) -> str:
    """One setting of the index in words: nested values as ``name value`` pairs, numbers plainly.

    Example:
        >>> shown_value("chunking", {"max_tokens": 190, "overlap_tokens": 40})
        'up to 190 tokens, 40 overlapping'
        >>> shown_value("windows", {"tokens": 32, "stride": 16})
        '32 tokens, one every 16'
        >>> shown_value("extra", {"a_b": 1.23456, "on": True})
        'a b 1.235, on yes'
    """
    if isinstance(value, dict):
        if key == "chunking" and set(value) == {"max_tokens", "overlap_tokens"}:
            return f"up to {value['max_tokens']} tokens, {value['overlap_tokens']} overlapping"
        if key == "windows" and set(value) == {"tokens", "stride"}:
            if not value["tokens"]:
                return "none (one vector per passage)"
            return f"{value['tokens']} tokens, one every {value['stride']}"
        return ", ".join(f"{k.replace('_', ' ')} {shown_value(k, v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(shown_value(key, v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return for_terminal(value)


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
            value = ", ".join(f"#{for_terminal(t)} ({n})" for t, n in value.items()) or (
                "none" if has_tags else "not stored by this index's notesqa; run `notesqa index`"
            )
        elif value is None or value == {}:
            continue  # not recorded by this index (e.g. recall@10 of an exact index)
        else:
            value = shown_value(key, value)
        print(f"{LABELS.get(key, key.replace('_', ' ')):>15}: {value}")
    if args.files:
        print(f"\nindexed ({count(len(indexed), 'file')}):")
        for item in indexed:
            print(f"  {for_terminal(item['path'])}  ({count(item['passages'], 'passage')})")
        print(f"skipped ({count(len(skipped), 'file')}):")
        for item in skipped:
            print(f"  {for_terminal(item['path'])}: {for_terminal(item['reason'])}")
    return 0
