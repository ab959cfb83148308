import gzip
import json

import pytest

from training.corpus import iter_documents, iter_titled_documents, split_sentences


def test_jsonl_gz_and_text_documents(tmp_path):
    jsonl = tmp_path / "a.jsonl.gz"
    with gzip.open(jsonl, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"title": "T", "text": "Para one.\nPara two. Still two."}) + "\n\n")
        handle.write(json.dumps({"title": "E", "text": "  "}) + "\n")
    text = tmp_path / "b.txt"
    text.write_text("Line one.\n\nLine two 🙂.\n", encoding="utf-8")
    docs = list(iter_documents([jsonl, text]))
    assert docs == [["Para one.", "Para two. Still two."], ["Line one.", "Line two 🙂."]]
    titles = [title for title, _ in iter_titled_documents([jsonl, text])]
    assert titles == ["T", "b.txt"]  # a JSONL line's title, a plain-text file's name


def test_max_chars_stops_early(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps({"text": "x" * 100}) + "\n" for _ in range(10)))
    assert len(list(iter_documents([path], max_chars=250))) == 3


def test_bad_inputs_name_the_problem(tmp_path):
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        list(iter_documents([latin]))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "no text"}\n')
    with pytest.raises(ValueError, match="'text'"):
        list(iter_documents([bad]))
    with pytest.raises(FileNotFoundError):
        list(iter_documents([tmp_path / "missing.txt"]))


def test_split_sentences():
    assert split_sentences(
        'It rained. Then it stopped! Why? 3 reasons. He said "Go." Then left.'
    ) == ["It rained.", "Then it stopped!", "Why?", "3 reasons.", 'He said "Go."', "Then left."]
    assert split_sentences("no end") == ["no end"]
