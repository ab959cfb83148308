"""The LangChain plugin passes langchain-tests' standard retriever and embeddings suites."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("langchain_core")
standard = pytest.importorskip("langchain_tests.integration_tests")
unit_standard = pytest.importorskip("langchain_tests.unit_tests")

from langchain_core.runnables import RunnablePassthrough  # noqa: E402

from rag.langchain_plugin import NotesEmbeddings, NotesReader, NotesRetriever  # noqa: E402
from rag.pipeline import NotesQA  # noqa: E402

NOTES = {
    "ada.md": "# Ada\n\nAda Smithson was born in Oslo in 1850. Ada Smithson worked as a chemist.\n",
    "boris.md": "# Boris\n\nBoris Kirason was born in Lima in 1901. Boris Kirason collected clocks.\n"
    "#people\n",
    "places.txt": "Lisbon is a city by the sea.\n\nCairo is a city on the Nile.\n",
    "more/greta.md": "---\ntags: [people/pilots]\n---\n# Greta\n\nGreta Olgason worked as a pilot. "
    "Greta Olgason was born in Seoul.\n",
}


@pytest.fixture(autouse=True)
def no_network():
    """The standard suites run with the network disabled (pytest-socket), as partner packages do."""
    pytest_socket = pytest.importorskip("pytest_socket")
    pytest_socket.disable_socket(allow_unix_socket=True)
    yield
    pytest_socket.enable_socket()


def test_the_network_really_is_off():
    import socket

    with pytest.raises(Exception, match="[Ss]ocket"):
        socket.create_connection(("127.0.0.1", 9), timeout=0.1)


@pytest.fixture(scope="module")
def notes_index(tmp_path_factory, tiny_embedder_dir) -> Path:
    root = tmp_path_factory.mktemp("lc") / "notes"
    for rel, text in NOTES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    NotesQA.open(root, embedder=tiny_embedder_dir).index(progress=False)
    return root / ".notesqa"


class TestNotesRetrieverStandard(standard.RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _index(self, notes_index, tiny_embedder_dir):
        type(self).params = {"index_dir": str(notes_index), "embedder": str(tiny_embedder_dir)}

    @property
    def retriever_constructor(self) -> type[NotesRetriever]:
        return NotesRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return dict(self.params)

    @property
    def retriever_query_example(self) -> str:
        return "Where was Ada Smithson born?"


class _TinyEmbeddings:
    """What both embeddings suites need: our class, built on the session's tiny embedder."""

    @pytest.fixture(autouse=True)
    def _model(self, tiny_embedder_dir):
        type(self).params = {"model": str(tiny_embedder_dir)}

    @property
    def embeddings_class(self) -> type[NotesEmbeddings]:
        return NotesEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return dict(self.params)


class TestNotesEmbeddingsStandard(_TinyEmbeddings, standard.EmbeddingsIntegrationTests):
    pass


class TestNotesEmbeddingsUnitStandard(_TinyEmbeddings, unit_standard.EmbeddingsUnitTests):
    pass


def test_documents_carry_exact_sources(notes_index, tiny_embedder_dir):
    retriever = NotesRetriever(index_dir=str(notes_index), embedder=str(tiny_embedder_dir), k=4)
    docs = retriever.invoke("Where was Ada Smithson born?")
    assert len(docs) == 4
    only = NotesRetriever(
        index_dir=str(notes_index),
        embedder=str(tiny_embedder_dir),
        k=3,
        mode="bm25",
        filter="more/*",
    ).invoke("Greta pilot")
    assert only and {d.metadata["source"] for d in only} == {"more/greta.md"}
    scores = [d.metadata["score"] for d in docs]
    assert scores == sorted(scores, reverse=True)
    notes_root = notes_index.parent
    for doc in docs:
        text = (notes_root / doc.metadata["source"]).read_text(encoding="utf-8")
        assert text[doc.metadata["start"] : doc.metadata["end"]] == doc.page_content


def test_the_tag_filter_keeps_only_tagged_notes_and_documents_carry_their_tags(
    notes_index, tiny_embedder_dir
):
    people = NotesRetriever(
        index_dir=str(notes_index), embedder=str(tiny_embedder_dir), k=4, note_tags=["people"]
    )
    docs = people.invoke("Where was Ada Smithson born?")
    # "people" matches the nested people/pilots too; Ada and the places have no tag
    assert {d.metadata["source"] for d in docs} == {"boris.md", "more/greta.md"}
    assert {tuple(d.metadata["tags"]) for d in docs} == {("people",), ("people/pilots",)}
    pilots = people.invoke("Where was Ada Smithson born?", note_tags=["#People/Pilots"])
    assert {d.metadata["source"] for d in pilots} == {"more/greta.md"}
    untagged = NotesRetriever(index_dir=str(notes_index), embedder=str(tiny_embedder_dir), k=8)
    assert {d.metadata["source"] for d in untagged.invoke("born")} >= {"ada.md", "boris.md"}
    assert people.invoke("born", note_tags=["nobody"]) == []
    # LangChain's own run tags stay run tags: they filter nothing
    traced = NotesRetriever(
        index_dir=str(notes_index), embedder=str(tiny_embedder_dir), k=8, tags=["rag-prod"]
    )
    assert {d.metadata["source"] for d in traced.invoke("born")} >= {"ada.md", "boris.md"}


def test_retriever_then_reader_chain_extracts_answers_with_offsets(
    notes_index, tiny_embedder_dir, tiny_reader_dir
):
    retriever = NotesRetriever(index_dir=str(notes_index), embedder=str(tiny_embedder_dir), k=3)
    chain = {"question": RunnablePassthrough(), "documents": retriever} | NotesReader(
        reader=str(tiny_reader_dir)
    )
    answers = chain.invoke("Where was Ada Smithson born?")
    assert isinstance(answers, list)
    for answer in answers:
        text = (notes_index.parent / answer["source"]).read_text(encoding="utf-8")
        assert text[answer["start"] : answer["end"]] == answer["text"]
    assert NotesReader(reader=str(tiny_reader_dir)).invoke({"question": "q", "documents": []}) == []


def test_embeddings_are_unit_vectors(tiny_embedder_dir):
    emb = NotesEmbeddings(model=str(tiny_embedder_dir))
    vectors = emb.embed_documents(["a", "Boris collected clocks"])
    assert len(vectors) == 2 and len(vectors[0]) == len(emb.embed_query("x"))
    assert all(abs(sum(v * v for v in vec) - 1) < 1e-4 for vec in vectors)


def test_bad_queries_and_counts_are_clear_errors(notes_index, tiny_embedder_dir, tmp_path):
    import pydantic

    with pytest.raises(pydantic.ValidationError):
        NotesRetriever(index_dir=str(notes_index), embedder=str(tiny_embedder_dir), k=-2)
    retriever = NotesRetriever(index_dir=str(notes_index), embedder=str(tiny_embedder_dir))
    with pytest.raises(TypeError, match="query must be a string"):
        retriever.invoke(None)
    with pytest.raises(ValueError, match="k must be a whole number of at least 1"):
        retriever.invoke("Ada", k=0)
    damaged = tmp_path / "index"
    shutil.copytree(notes_index, damaged)
    (damaged / "notes.sqlite").write_bytes(b"garbage" * 64)
    broken = NotesRetriever(index_dir=str(damaged), embedder=str(tiny_embedder_dir))
    with pytest.raises(ValueError, match="damaged.*--rebuild"):
        broken.invoke("Ada")


def test_the_reader_runnable_has_a_confidence_knob(notes_index, tiny_embedder_dir, tiny_reader_dir):
    retriever = NotesRetriever(index_dir=str(notes_index), embedder=str(tiny_embedder_dir), k=3)
    docs = retriever.invoke("Where was Ada Smithson born?")
    question = "Where was Ada Smithson born?"
    always = NotesReader(reader=str(tiny_reader_dir), always_answer=True)
    answers = always.invoke({"question": question, "documents": docs})
    assert answers and "confidence" in answers[0]
    with pytest.raises(ValueError):
        NotesReader(reader=str(tiny_reader_dir), min_confidence=1.5)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"documents": []}, "takes"),
        ({"question": "q"}, "takes"),
        ("just a question", "takes"),
        ({"question": "  ", "documents": []}, "needs a question"),
        ({"question": "q", "documents": "one text"}, "must be a list"),
        ({"question": "q", "documents": [42]}, r"documents\[0\] is a int"),
    ],
)
def test_the_reader_runnable_names_bad_input(given, message, tiny_reader_dir):
    with pytest.raises(ValueError, match=message):
        NotesReader(reader=str(tiny_reader_dir)).invoke(given)


def test_the_reader_runnable_reads_nothing_from_no_documents_and_plain_strings(tiny_reader_dir):
    reader = NotesReader(reader=str(tiny_reader_dir), always_answer=True)
    assert reader.invoke({"question": "Who?", "documents": []}) == []
    answers = reader.invoke(
        {"question": "Who was born in Oslo?", "documents": ["Ada was born in Oslo."]}
    )
    assert answers and answers[0]["context"] == "Ada was born in Oslo."
