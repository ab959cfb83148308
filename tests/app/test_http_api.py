"""The local HTTP API: in-process through its test client, and once through a real uvicorn."""

import concurrent.futures
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.http_api import MAX_BODY_BYTES, create_app
from app.notes_service import NotesService
from rag.pipeline import NotesQA


@pytest.fixture
def index(tmp_path, tiny_embedder_dir, tiny_reader_dir):
    notes = tmp_path / "notes"
    (notes / "sub").mkdir(parents=True)
    (notes / "sub" / "ada.md").write_text("# Ada\n\nAda Smithson was born in Oslo in 1850.\n")
    (notes / "plain.txt").write_text("Boris Kirason collected clocks from every country.\n")
    NotesQA.open(notes, embedder=tiny_embedder_dir).index(progress=False)
    return notes / ".notesqa"


@pytest.fixture
def client(index, tiny_embedder_dir, tiny_reader_dir):
    service = NotesService(index, embedder=str(tiny_embedder_dir), reader=str(tiny_reader_dir))
    return TestClient(create_app(service))


def test_search_ask_batch_stats_and_health_answer_with_sources(client, index):
    assert client.get("/health").json()["status"] == "ok"
    hits = client.get("/search", params={"q": "clocks", "k": 2}).json()["hits"]
    assert len(hits) == 2 and {h["source"] for h in hits} == {"plain.txt", "sub/ada.md"}
    assert all(h["uri"].startswith("file://") for h in hits)
    question = {"question": "Where was Ada Smithson born?", "always_answer": True}
    answers = client.post("/ask", json=question).json()["answers"]
    assert answers and all(
        {"text", "confidence", "source", "line", "uri"} <= set(a) for a in answers
    )
    note = (index.parent / answers[0]["source"]).read_text()
    assert note[answers[0]["start"] : answers[0]["end"]] == answers[0]["text"]
    batch = client.post("/ask/batch", json={"questions": ["Who collected clocks?"] * 3}).json()
    assert len(batch["results"]) == 3
    assert client.get("/stats").json()["files"] == 2
    assert "/ask" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize(
    ("method", "path", "payload", "status"),
    [
        ("get", "/search", {"q": "clocks", "k": 0}, 422),
        ("get", "/search", {"q": "clocks", "k": 51}, 422),
        ("get", "/search", {"q": "clocks", "mode": "magic"}, 422),
        ("post", "/ask", {"question": ""}, 422),
        ("post", "/ask", {"question": "Who?", "min_confidence": 1.5}, 422),
        ("post", "/ask/batch", {"questions": []}, 422),
        ("get", "/nothing-here", None, 404),
    ],
)
def test_bad_requests_get_clear_4xx_errors(client, method, path, payload, status):
    if method == "get":
        reply = client.get(path, params=payload)
    else:
        reply = client.post(path, json=payload)
    assert reply.status_code == status
    assert reply.json()["detail"]


def test_an_oversized_body_is_refused_before_it_is_read(client):
    big = {"questions": ["x" * 1000] * (MAX_BODY_BYTES // 1000 + 10)}
    reply = client.post("/ask/batch", json=big)
    assert reply.status_code == 413 and "bytes" in reply.json()["detail"]


def test_an_index_updated_by_watch_is_read_without_a_restart(client, index, tiny_embedder_dir):
    (index.parent / "new.md").write_text("Carla Quintero painted lighthouses in Porto.\n")
    NotesQA.open(index.parent, embedder=tiny_embedder_dir).index(progress=False)
    assert client.get("/stats").json()["files"] == 3
    hits = client.get("/search", params={"q": "lighthouses", "k": 3}).json()["hits"]
    assert "new.md" in {h["source"] for h in hits}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_real_server_on_localhost_serves_concurrent_requests(
    index, tiny_embedder_dir, tiny_reader_dir
):
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "app.cli",
        "serve",
        "--index",
        str(index),
        "--port",
        str(port),
        "--embedder",
        str(tiny_embedder_dir),
        "--reader",
        str(tiny_reader_dir),
    ]
    server = subprocess.Popen(command, cwd=Path(__file__).resolve().parents[2],
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        questions = [f"Who collected clocks? ({i})" for i in range(16)]
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            replies = list(
                pool.map(
                    lambda q: httpx.post(f"{base}/ask", json={"question": q}, timeout=120),
                    questions,
                )
            )
        assert [r.status_code for r in replies] == [200] * 16
        assert [r.json()["question"] for r in replies] == questions
        too_big = httpx.post(f"{base}/ask", content=b"x" * (MAX_BODY_BYTES + 1),
                             headers={"content-type": "application/json"})  # fmt: skip
        assert too_big.status_code == 413
        assert httpx.get(f"{base}/no-such-route").status_code == 404
        assert json.loads(httpx.get(f"{base}/openapi.json").text)["info"]["title"] == "notesqa"
    finally:
        server.terminate()
        server.wait(timeout=30)
