"""notesqa's Streamlit app: pick a notes folder, index it, ask questions, see answers with sources.

Start it with ``notesqa app [NOTES_DIR...]`` (or ``streamlit run app/streamlit_app.py``). It only
talks to ``rag.pipeline.NotesQA``; models and the open index are cached with
``st.cache_resource``. Settings come from the environment so that ``notesqa app`` and tests can
choose them: ``NOTESQA_NOTES`` (the folders served, a JSON list; the page offers no other),
``NOTESQA_EMBEDDER`` and ``NOTESQA_READER`` (model folders).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import streamlit as st

from app.ask_options import abstention, slider_confidence
from app.errors import for_terminal
from app.passages import highlighted_passage, inert, inert_line, passage_view, source_link
from app.uploads import ALLOWED_SUFFIXES, MAX_UPLOAD_BYTES, save_upload
from rag.modes import DEFAULT_MODE, MODES
from rag.pipeline import NotesQA

st.set_page_config(page_title="notesqa: ask your notes", layout="wide")


@st.cache_resource(show_spinner="Loading the models…")
def get_notes(notes_dir: str, embedder: str | None, reader: str | None) -> NotesQA:
    """One NotesQA (models loaded once) per notes folder and model choice."""
    return NotesQA.open(notes_dir, embedder=embedder, reader=reader)


def sidebar(qa: NotesQA) -> dict:
    """Folder, uploads, indexing and settings; returns the search settings for ``ask``."""
    st.sidebar.header("Your notes")
    st.sidebar.caption(f"Folder: {inert_line(str(qa.notes_dir))}")
    uploads = st.sidebar.file_uploader(
        "Add notes",
        type=[s.lstrip(".") for s in ALLOWED_SUFFIXES],
        accept_multiple_files=True,
        help=f"{', '.join(ALLOWED_SUFFIXES)} files of up to {MAX_UPLOAD_BYTES / 1e6:g} MB each, "
        "saved into the folder's uploads/ subfolder; click Index notes afterwards.",
    )
    saved = st.session_state.setdefault("saved_uploads", set())
    for upload in uploads or []:
        if (upload.name, upload.size) in saved:  # the uploader keeps its files across reruns
            continue
        saved.add((upload.name, upload.size))
        try:
            path = save_upload(qa.notes_dir, upload.name, upload.getvalue())
        except (ValueError, OSError) as err:
            st.sidebar.error(inert_line(str(err)))
        else:
            note = "" if path.name == upload.name else f" (a file named {upload.name} exists)"
            st.sidebar.success(inert_line(f"Saved {path.relative_to(qa.notes_dir)}{note}"))

    if st.sidebar.button("Index notes", type="primary", width="stretch", key="index"):
        bar = st.sidebar.progress(0.0, text="Reading and splitting your notes…")

        def report(done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=f"Embedding passages: {done}/{total}")

        try:
            summary = qa.index(progress=False, on_progress=report)
        except (ValueError, OSError) as err:  # damaged index, disk full, another indexer...
            bar.empty()
            st.sidebar.error(
                f"Indexing failed, the previous index is unchanged: {inert_line(str(err))}"
            )
        else:
            bar.progress(1.0, text="Done")
            st.sidebar.success(
                f"Indexed {summary.files} files into {summary.chunks} passages in "
                f"{summary.seconds:.1f} s: {len(summary.added)} added, {len(summary.changed)} "
                f"changed, {len(summary.removed)} removed, {summary.unchanged} unchanged."
            )
            if summary.skipped:
                with st.sidebar.expander(f"Skipped {len(summary.skipped)} files"):
                    for path, reason in summary.skipped:  # as text: never Markdown or HTML
                        st.text(f"{for_terminal(path)}: {for_terminal(reason)}")

    st.sidebar.header("Settings")
    k = st.sidebar.slider(
        "Passages to read", 1, 20, 5, help="How many retrieved passages the reader reads."
    )
    answers = st.sidebar.slider("Answers to show", 1, 10, 3)
    mode = st.sidebar.radio(
        "Retrieval",
        MODES,
        index=MODES.index(DEFAULT_MODE),
        horizontal=True,
        key="mode",
        help="hybrid (default, best with the shipped models): keyword search weighed with the "
        "embedder's similarity; rrf: the same two rankings fused by rank (reciprocal rank "
        "fusion); bm25: keywords alone; dense: the embedder alone.",
    )
    path_glob = st.sidebar.text_input("Only files matching", placeholder="biology/*", key="filter")
    try:
        known_tags = [tag for tag, _ in qa.tags()]
    except (FileNotFoundError, ValueError):  # no index yet, or a damaged one (reported below)
        known_tags = []
    tags = st.sidebar.multiselect(
        "Only notes tagged",
        known_tags,
        key="tags",
        disabled=not known_tags,
        help="Front matter `tags:` and inline #tags of your notes; a note must have every tag "
        "chosen (`ml` also keeps `ml/optim`).",
    )
    calibrator = qa.reader.calibrator if qa.reader.settings.multi_passage else None
    min_confidence = None  # not given: the value stored with the reader, as in `notesqa ask`
    if calibrator is not None:
        chosen = st.sidebar.slider(
            "Minimum confidence",
            0.0,
            1.0,
            float(round(calibrator.min_confidence, 2)),
            0.01,
            key="min_confidence",
            help="Show only answers at least this likely to be right (a calibrated "
            "probability), most likely first; it starts at the value stored with the reader. "
            "Lower it to see more guesses, raise it for fewer wrong answers.",
        )
        min_confidence = slider_confidence(chosen, calibrator.min_confidence)
    always_answer = st.sidebar.checkbox(
        "Always show the best span",
        key="always_answer",
        help="By default the reader says 'no answer' when it finds none it trusts; tick this to "
        "see its best guesses anyway.",
    )
    with st.sidebar.expander("Index statistics"):
        try:
            st.json(qa.stats())
        except FileNotFoundError:
            st.write("No index yet.")
        except ValueError as err:  # a damaged index: Index notes rebuilds it
            st.write(f"{inert_line(str(err))}. Click **Index notes** to rebuild it.")
    return {
        "k": k,
        "top_answers": answers,
        "mode": mode,
        "path_glob": path_glob or None,
        "tags": tuple(tags),
        **abstention(min_confidence, always_answer=always_answer),
    }


def show_answers(qa: NotesQA, question: str, settings: dict) -> None:
    try:
        answers = qa.ask(question, **settings)
    except FileNotFoundError:
        st.warning("These notes are not indexed yet: click **Index notes** in the sidebar.")
        return
    except ValueError as err:
        st.error(inert_line(str(err)))
        return
    if not answers:
        st.info("No answer in your notes. The closest passages:")
        search = {
            k: v
            for k, v in settings.items()
            if k not in ("top_answers", "null_threshold", "min_confidence", "always_answer")
        }
        for hit in qa.search(question, **{**search, "k": min(settings["k"], 3)}):
            link = source_link(qa.notes_dir, hit.source, hit.line, hit.column)
            heading = f"› {inert(hit.heading)}" if hit.heading else ""
            tags = "".join(f" #{inert(tag)}" for tag in hit.tags)
            st.markdown(f"{link} {heading}{tags} · score {hit.score:.2f}")
            text = passage_view(hit.source, hit.text)[0]  # as the reader reads it
            st.caption(inert(text[:500]), unsafe_allow_html=True)
        return
    for rank, answer in enumerate(answers, 1):
        with st.container(border=True):
            title = " ".join(answer.text.split())  # an answer may span a line break
            st.markdown(f"### {rank}. {inert(title)}")
            where = source_link(qa.notes_dir, answer.source, answer.line, answer.column)
            where += f" › {inert(answer.heading)}" if answer.heading else ""
            sure = (
                f"confidence {answer.confidence:.0%}"
                if answer.confidence is not None
                else f"score {answer.score:.2f}"
            )
            st.caption(f"{where} · {sure}")
            st.markdown(highlighted_passage(answer), unsafe_allow_html=True)


def example_topic(qa: NotesQA, look_at: int = 50) -> str | None:
    """A topic of these notes for the question box's example: the last heading of the first
    indexed passages that have one (``Optimisers > Adam`` gives ``Adam``); ``None`` without an
    index or headings."""
    try:
        for chunk_id in range(min(look_at, len(qa.store))):
            heading = qa.store.chunk(chunk_id).heading
            if heading.strip():
                return " ".join(heading.split(" > ")[-1].split())[:60]
    except (FileNotFoundError, ValueError, KeyError):  # no index yet, or a damaged one
        return None
    return None


def served_folders() -> list[Path]:
    """The notes folders this app serves, fixed when it starts: ``NOTESQA_NOTES``, a JSON list of
    folders as ``notesqa app A B`` sets it (so that a name holding ``:`` stays whole), or one
    folder, or several joined by the path separator; the browser cannot name another."""
    given = os.environ.get("NOTESQA_NOTES") or "examples/notes"
    try:
        folders = json.loads(given)
    except ValueError:
        folders = None
    if not (isinstance(folders, list) and all(isinstance(f, str) for f in folders)):
        folders = given.split(os.pathsep)
    return [Path(p).expanduser().resolve() for p in folders if p.strip()]


def main() -> None:
    st.title("Ask your notes")
    st.caption("Answers are extracted from your own files, with the file and place they come from.")
    folders = served_folders()
    if len(folders) > 1:
        chosen = st.selectbox(
            "Notes folder",
            folders,
            format_func=lambda p: p.name or str(p),
            key="folder",
            help="The folders this app was started with (`notesqa app FOLDER...`).",
        )
    else:
        chosen = folders[0]
    if not chosen.is_dir():
        st.error(
            f"{inert_line(str(chosen))} is not a folder; start the app with "
            "`notesqa app YOUR_NOTES_FOLDER`."
        )
        return
    qa = get_notes(
        str(chosen),
        os.environ.get("NOTESQA_EMBEDDER") or None,
        os.environ.get("NOTESQA_READER") or None,
    )
    settings = sidebar(qa)
    with st.form("ask"):
        topic = example_topic(qa)
        question = st.text_input(
            "Question",
            placeholder=f"e.g. a question about {topic}" if topic else "Ask your notes",
            key="question",
        )
        asked = st.form_submit_button("Ask", type="primary", key="ask")
    if asked and question.strip():
        show_answers(qa, question, settings)


main()
