"""``notesqa app``: the Streamlit app on this machine only (unless told), serving the folders it
was started with, with a ``notesqa watch`` beside it on request.

Every process it starts runs with a safe import path: ``python -I`` (no current folder, no
``PYTHON*`` variables) with the user's site-packages and ``PYTHONPATH`` folders added back
(never the current folder's), and the app package's folder as its working directory, so that
nothing in the notes folder (a ``streamlit/`` package, an ``app/cli.py``, a
``.streamlit/config.toml``) is ever imported, run or read as settings.

Example:
    $ notesqa app ~/notes --watch          # http://127.0.0.1:8501
"""

from __future__ import annotations

import json
import os
import site
import sys
from pathlib import Path

from app.ask_options import add_reader_options
from app.errors import for_terminal
from rag.option_types import model_folder, port_number

LOCALHOST = "127.0.0.1"
APP_FOLDER = Path(__file__).resolve().parent  # the working directory of every child process

# Run ``sys.argv[3]`` as ``python -m`` would, from the folder ``sys.argv[2]``, with the import path
# of ``python -I`` plus the folders given as JSON in ``sys.argv[1]`` (:func:`import_path`).
_RUN_MODULE = (
    "import json, os, runpy, site, sys; "
    "extra = json.loads(sys.argv[1]); "
    "[site.addsitedir(p) for p in extra['site']]; "
    "sys.path += [p for p in extra['path'] if p not in sys.path]; "
    "os.chdir(sys.argv[2]); "
    "module = sys.argv[3]; "
    "sys.argv = [module, *sys.argv[4:]]; "
    "runpy.run_module(module, run_name='__main__', alter_sys=True)"
)


def import_path(exclude: list[Path] = ()) -> dict[str, list[str]]:
    """What ``python -I`` leaves off the import path that this process has, for a child to add
    back: the user's site-packages (``site``, its ``.pth`` files read) and the ``PYTHONPATH``
    folders (``path``), but never the current folder (``''``, ``.``, a relative entry, the working
    directory itself) nor anything inside ``exclude`` (the notes folders).

    Example:
        >>> "" in import_path()["path"] or os.getcwd() in import_path()["path"]
        False
    """
    banned = Path.cwd().resolve()
    inside = [Path(p).resolve() for p in exclude]

    def safe(entry: str) -> bool:
        if not entry or not os.path.isabs(entry):
            return False
        resolved = Path(entry).resolve()
        return resolved != banned and not any(resolved.is_relative_to(b) for b in inside)

    user_site = site.getusersitepackages() if site.ENABLE_USER_SITE else ""
    sites = [user_site] if user_site in sys.path and safe(user_site) else []
    given = "" if sys.flags.ignore_environment else os.environ.get("PYTHONPATH", "")
    paths = []
    for entry in given.split(os.pathsep):
        if safe(entry) and entry not in paths:
            paths.append(entry)
    return {"site": sites, "path": paths}


def python_module_command(module: str, args: list[str], exclude: list[Path] = ()) -> list[str]:
    """The command that runs ``python -m MODULE ARGS`` safely: isolated mode (``-I``, which
    Python 3.10 has, unlike ``-P``: no current folder, no ``PYTHON*`` variables), with the user's
    site-packages and ``PYTHONPATH`` folders added back (:func:`import_path`), from the app
    package's folder (so that no settings file of the current folder is read either).

    Example:
        >>> python_module_command("app.cli", ["watch", "/notes"])[1:3]
        ['-I', '-c']
    """
    return [
        sys.executable,
        "-I",
        "-c",
        _RUN_MODULE,
        json.dumps(import_path(exclude)),
        str(APP_FOLDER),
        module,
        *args,
    ]


def served_value(folders: list[str]) -> str:
    """``NOTESQA_NOTES`` for these folders: one folder as its path, else a JSON list, so that
    any folder name works (one holding ``:`` is not split).

    Example:
        >>> served_value(["/notes"]), served_value(["/a:b"])
        ('/notes', '["/a:b"]')
    """
    if len(folders) == 1 and os.pathsep not in folders[0] and not folders[0].startswith("["):
        return folders[0]
    return json.dumps(folders)


def child_environment(folders: list[str], args) -> dict[str, str]:
    """The environment of the app and its watchers: the served folders (:func:`served_value`),
    the models and the cache as absolute paths (the children run elsewhere)."""
    env = {**os.environ, "NOTESQA_NOTES": served_value(folders)}
    for key, value in (("NOTESQA_EMBEDDER", args.embedder), ("NOTESQA_READER", args.reader)):
        if value:
            local = Path(value).expanduser()
            env[key] = str(local.resolve()) if local.exists() else value
    if env.get("NOTESQA_CACHE"):
        env["NOTESQA_CACHE"] = str(Path(env["NOTESQA_CACHE"]).expanduser().resolve())
    return env


def streamlit_arguments(host: str, port: int) -> list[str]:
    """``streamlit run`` on notesqa's app page, as ``notesqa app`` starts it.

    Example:
        >>> streamlit_arguments("127.0.0.1", 8501)[:2] == ["run", str(APP_FOLDER / "streamlit_app.py")]
        True
    """
    return [
        "run",
        str(APP_FOLDER / "streamlit_app.py"),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.maxUploadSize",
        "5",  # MB, as app/uploads.py enforces
        "--client.toolbarMode",
        "minimal",  # no "Deploy" button or developer menu: this is a reader's page
        "--server.headless",
        "true",  # no first-run e-mail prompt in the terminal; the page's address is printed
    ]


def warn_if_exposed(host: str, port: int, what: str) -> None:
    """Say on stderr who can read ``what`` when ``host`` is not this machine alone."""
    if host not in (LOCALHOST, "localhost", "::1"):
        print(
            f"notesqa: warning: serving on {for_terminal(host)}: anyone who can reach this "
            f"machine on port {port} can read {for_terminal(what)}",
            file=sys.stderr,
        )


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
    # the app serves these folders and no other: it has no box for a path of the user's choice
    env = child_environment(folders, args)
    warn_if_exposed(args.host, args.port, f"the notes in {', '.join(folders)}")
    served = [Path(f) for f in folders]
    streamlit = streamlit_arguments(args.host, args.port)
    watchers = []
    if args.watch:  # one `notesqa watch` per folder beside the app; the app reads each update
        for folder in folders:
            watch = ["watch", folder]
            if args.embedder:
                watch += ["--embedder", env.get("NOTESQA_EMBEDDER", args.embedder)]
            command = python_module_command("app.cli", watch, served)
            watchers.append(subprocess.Popen(command, env=env))
    try:
        command = python_module_command("streamlit", streamlit, served)
        return subprocess.call(command, env=env)
    finally:
        for watcher in watchers:
            watcher.terminate()  # safe at any moment: the index is swapped in atomically
            watcher.wait(timeout=30)


def add_app_command(sub) -> None:
    """Mount ``notesqa app`` on the ``notesqa`` command line's subparsers."""
    p = sub.add_parser(
        "app",
        help="start the Streamlit notes Q&A app in your browser",
        description="Runs `streamlit run` on notesqa's app (needs the `app` extra). It listens "
        "on 127.0.0.1 unless --host says otherwise, and serves only the folders given here.",
    )
    p.add_argument(
        "notes_dir",
        nargs="*",
        default=["."],
        help="notes folder(s) the app serves, and only these (default: the current folder)",
    )
    p.add_argument(
        "--embedder",
        type=model_folder,
        help="embedder folder, or hf:ORG/NAME (default: the shipped one)",
    )
    add_reader_options(p)
    p.add_argument("--port", type=port_number, default=8501)
    p.add_argument(
        "--watch",
        action="store_true",
        help="also run `notesqa watch` on each folder, so edited notes are searchable within "
        "seconds",
    )
    p.add_argument(
        "--host",
        default=LOCALHOST,
        help=f"address to listen on (default {LOCALHOST}: this machine only); 0.0.0.0 opens the "
        "app and your notes to the network",
    )
    p.set_defaults(func=cmd_app)
