"""``notesqa app``: the Streamlit app on this machine only (unless told), serving the folders it
was started with, with a ``notesqa watch`` beside it on request.

Example:
    $ notesqa app ~/notes --watch          # http://127.0.0.1:8501
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

LOCALHOST = "127.0.0.1"


def cmd_app(args) -> int:
    import importlib.util
    import subprocess

    if importlib.util.find_spec("streamlit") is None:
        raise FileNotFoundError("streamlit is not installed; run `pip install 'notesqa[app]'`")
    folders = []
    for given in args.notes_dir:
        notes = Path(given).expanduser().resolve()
        if not notes.is_dir():
            raise NotADirectoryError(f"{given} is not a folder; pass your notes folder")
        folders.append(str(notes))
    script = Path(__file__).resolve().with_name("streamlit_app.py")
    # the app serves these folders and no other: it has no box for a path of the user's choice
    env = {**os.environ, "NOTESQA_NOTES": os.pathsep.join(folders)}
    for key, value in (("NOTESQA_EMBEDDER", args.embedder), ("NOTESQA_READER", args.reader)):
        if value:
            local = Path(value).expanduser()
            env[key] = str(local.resolve()) if local.exists() else value
    if args.host not in (LOCALHOST, "localhost", "::1"):
        print(
            f"notesqa: warning: serving on {args.host}: anyone who can reach this machine on port "
            f"{args.port} can read the notes in {', '.join(folders)}",
            file=sys.stderr,
        )
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.address",
        args.host,
        "--server.port",
        str(args.port),
        "--browser.gatherUsageStats",
        "false",
        "--server.maxUploadSize",
        "5",  # MB, as app/uploads.py enforces
    ]
    watchers = []
    if args.watch:  # one `notesqa watch` per folder beside the app; the app reads each update
        for folder in folders:
            watch = [sys.executable, "-m", "app.cli", "watch", folder]
            if args.embedder:
                watch += ["--embedder", env.get("NOTESQA_EMBEDDER", args.embedder)]
            watchers.append(subprocess.Popen(watch, env=env))
    try:
        return subprocess.call(command, env=env)
    finally:
        for watcher in watchers:
            watcher.terminate()  # safe at any moment: the index is swapped in atomically
            watcher.wait(timeout=30)
