"""``notesqa serve``: a local JSON HTTP API over one index, for editor plugins and scripts.

    GET  /search?q=...&k=5&mode=hybrid&tag=exam&path_glob=ml/*   the passages, best first
    POST /ask        {"question", "k", "answers", "min_confidence", "always_answer", ...}
    POST /ask/batch  {"questions": [...], same options}
    GET  /stats      files, passages, the embedder and the index's settings
    GET  /health     {"status": "ok", ...}
    GET  /docs       the OpenAPI page (the schema at /openapi.json)

Answers and hits carry the fields of ``notesqa ask --json``. The index is opened once and shared
(``app.notes_service``: one question at a time through the models, which use every core for
each), an index updated by ``notesqa watch`` is read by the next request, a body over
``MAX_BODY_BYTES`` is refused with 413 and bad arguments with 422 naming them.

Example (in-process, as the tests do; the demo notes indexed into a temporary folder):
    >>> import tempfile
    >>> from fastapi.testclient import TestClient
    >>> from rag import NotesQA
    >>> index_dir = tempfile.mkdtemp()
    >>> NotesQA.open("examples/notes", index_dir=index_dir).index(progress=False).files
    5
    >>> client = TestClient(create_app(NotesService(index_dir)))
    >>> client.get("/health").json()["status"]
    'ok'
    >>> reply = client.post("/ask", json={"question": "What does Adam keep for every parameter?"})
    >>> reply.status_code, reply.json()["answers"][0]["source"]
    (200, 'optimisers.md')
    >>> client.get("/search", params={"q": "momentum", "k": 99}).status_code
    422
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from app.notes_service import MAX_ANSWERS, MAX_BATCH, MAX_K, MAX_TEXT, NotesService
from rag.modes import DEFAULT_MODE, MODES

MAX_BODY_BYTES = 256_000  # a batch of MAX_BATCH questions of MAX_TEXT characters fits


class AskOptions(BaseModel):
    k: int = Field(5, ge=1, le=MAX_K, description="passages the reader reads")
    answers: int = Field(3, ge=1, le=MAX_ANSWERS, description="answers returned, at most")
    min_confidence: float | None = Field(
        None, ge=0.0, le=1.0, description="show only answers this likely right (default: stored)"
    )
    always_answer: bool = Field(
        False, description="never abstain: the best guesses, however unsure"
    )
    tags: list[str] = Field(default_factory=list, description="only notes with every one of these")
    path_glob: str | None = Field(
        None, max_length=500, description="only notes matching, e.g. ml/*"
    )


class AskRequest(AskOptions):
    question: str = Field(min_length=1, max_length=MAX_TEXT)


class BatchRequest(AskOptions):
    questions: list[Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]] = Field(
        min_length=1, max_length=MAX_BATCH
    )


def create_app(service: NotesService) -> FastAPI:
    """The API over ``service`` (one index, opened once)."""
    api = FastAPI(
        title="notesqa",
        summary="Answers and passages from your own notes, with their sources.",
        version="1",
    )

    @api.middleware("http")
    async def limit_body(request: Request, call_next):
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return JSONResponse(
                {"detail": f"request body over {MAX_BODY_BYTES} bytes; send fewer questions"},
                status_code=413,
            )
        return await call_next(request)

    def run(call, *args, **kwargs):
        try:
            return call(*args, **kwargs)
        except ValueError as error:  # an argument the service refused, named in the message
            raise HTTPException(status_code=422, detail=str(error)) from None

    @api.get("/health")
    def health() -> dict:
        return {"status": "ok", "index": str(service.qa.index_dir)}

    @api.get("/stats")
    async def stats() -> dict:
        return await run_in_threadpool(run, service.stats)

    @api.get("/search")
    async def search(
        q: Annotated[str, Query(min_length=1, max_length=MAX_TEXT, description="what to find")],
        k: Annotated[int, Query(ge=1, le=MAX_K)] = 5,
        mode: Annotated[str, Query(pattern="^(" + "|".join(MODES) + ")$")] = DEFAULT_MODE,
        tag: Annotated[list[str] | None, Query(description="repeat for several")] = None,
        path_glob: Annotated[str | None, Query(max_length=500)] = None,
    ) -> dict:
        return await run_in_threadpool(
            run, service.search, q, k=k, mode=mode, tags=tag or [], path_glob=path_glob
        )

    @api.post("/ask")
    async def ask(body: AskRequest) -> dict:
        options = body.model_dump(exclude={"question"})
        return await run_in_threadpool(run, service.ask, body.question, **options)

    @api.post("/ask/batch")
    async def ask_batch(body: BatchRequest) -> dict:
        options = body.model_dump(exclude={"questions"})
        results = await run_in_threadpool(run, service.ask_batch, body.questions, **options)
        return {"results": results}

    return api
