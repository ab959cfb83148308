"""Peak memory of `notesqa index` on a big vault: a folder of generated Markdown notes at two sizes.

Indexing must stream: its peak memory grows with a batch of passages and with the index itself,
not with the text of the folder. This writes a vault of ``--mb`` megabytes of generated lecture
notes (headings, prose, fenced code, shell commands, inline and display math, lists; every
passage different) and a baseline vault of ``--baseline-mb``, indexes each with the real
``notesqa index`` in a fresh process, and reports each one's peak resident memory (the process's
``ru_maxrss``), seconds and passages, and the ratio of the two peaks (1.0 = flat in the size of
the folder). ``--big-note-mb`` adds one note of that size to the big vault (a single huge note is
processed the same way).

The default sizes (10 MB against 2 MB) take about 12 minutes on 2 cores, almost all of it
embedding; ``--mb 50 --baseline-mb 5`` (the issue's 50 MB vault) takes about 45.

Example:
    $ python benchmarks/index_memory.py --mb 10 --baseline-mb 2
    {"baseline": {"mb": 2.0, "peak_rss_mb": ..., "seconds": ..., "passages": ...},
     "big": {"mb": 10.0, ...}, "peak_ratio": ...}
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_WORDS = (
    "gradient descent momentum adam optimiser parameter tensor matrix vector kernel layer "
    "network loss function training batch epoch learning rate weight decay variance bias "
    "regularisation dropout convolution pooling attention transformer encoder decoder token "
    "embedding softmax logits probability entropy likelihood estimator sample distribution "
    "gaussian posterior prior inference graph node edge queue stack heap hash table array "
    "pointer memory cache thread process scheduler mutex deadlock socket protocol packet "
    "compiler parser grammar syntax semantic type inference closure recursion iteration "
    "complexity bound proof lemma theorem corollary integral derivative limit series"
).split()
_CODE = [
    "def step(params, grads, lr={n}):\n    return [p - lr * g for p, g in zip(params, grads)]",
    "for epoch in range({n}):\n    loss = model(x).sum()\n    loss.backward()",
    "x = torch.randn({n}, 256)\ny = x @ x.T\nprint(y.shape)",
]
_SHELL = ["pip install numpy=={n}.0", "git log --oneline -n {n}", "ls -la /tmp/run{n} | head"]


def _term(rng: random.Random) -> str:
    """A word of the shared vocabulary, or a rarer made-up term (a vault's vocabulary grows)."""
    if rng.random() < 0.03:
        return rng.choice(_WORDS)[:4] + str(rng.randrange(1000))
    return rng.choice(_WORDS)


def _sentence(rng: random.Random) -> str:
    words = [_term(rng) for _ in range(rng.randint(8, 22))]
    if rng.random() < 0.2:
        words.insert(rng.randrange(len(words)), f"$\\alpha_{rng.randint(1, 9)} x^2$")
    return " ".join(words).capitalize() + "."


def generate_note(rng: random.Random, target_bytes: int) -> str:
    """One Markdown lecture note of about ``target_bytes`` bytes."""
    parts = [f"# Lecture {rng.randrange(1000)}: {_term(rng)} and {_term(rng)}\n"]
    size = len(parts[0])
    while size < target_bytes:
        kind = rng.random()
        n = rng.randint(1, 999)
        if kind < 0.08:
            block = f"## {_term(rng).capitalize()} {_term(rng)}\n"
        elif kind < 0.16:
            block = f"```python\n{rng.choice(_CODE).format(n=n)}\n```\n"
        elif kind < 0.20:
            block = f"```bash\n$ {rng.choice(_SHELL).format(n=n)}\n```\n"
        elif kind < 0.24:
            block = f"$$\n\\sum_{{i=1}}^{{{n}}} x_i^2 = \\frac{{1}}{{{n}}}\n$$\n"
        elif kind < 0.34:
            block = "".join(f"- {_sentence(rng)}\n" for _ in range(rng.randint(2, 5)))
        else:
            block = " ".join(_sentence(rng) for _ in range(rng.randint(2, 6))) + "\n"
        parts.append(block + "\n")
        size += len(block) + 1
    return "".join(parts)


def write_vault(root: Path, megabytes: float, big_note_mb: float = 0.0, seed: int = 0) -> int:
    """Fill ``root`` with ``megabytes`` of notes (about 40 KB each, 50 per folder); bytes written."""
    rng = random.Random(seed)
    total, target, i = 0, int(megabytes * 1_000_000), 0
    while total < target:
        folder = root / f"course{i // 50:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        text = generate_note(rng, min(rng.randint(20_000, 60_000), target - total + 200))
        (folder / f"lecture{i:05d}.md").write_text(text, encoding="utf-8")
        total += len(text.encode())
        i += 1
    if big_note_mb:
        text = generate_note(rng, int(big_note_mb * 1_000_000))
        (root / "big-note.md").write_text(text, encoding="utf-8")
        total += len(text.encode())
    return total


def index_peak(notes: Path) -> dict:
    """Index ``notes`` with the real ``notesqa index`` in a fresh process: its peak RSS."""
    code = (
        "import resource, sys; from app.cli import main; "
        "rc = main(['index', sys.argv[1], '--json']); "
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); "
        "sys.exit(rc)"
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, str(notes)], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"notesqa index failed:\n{done.stderr[-3000:]}")
    peak_kb = int(done.stderr.rsplit("PEAK", 1)[1].split()[0])  # ru_maxrss is in KiB on Linux
    summary = json.loads(done.stdout)
    return {
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "seconds": round(seconds, 1),
        "files": summary.get("files"),
        "passages": summary.get("chunks"),
        "vectors": summary.get("vectors"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=10.0, help="size of the big vault (MB)")
    parser.add_argument("--baseline-mb", type=float, default=2.0, help="size of the baseline")
    parser.add_argument("--big-note-mb", type=float, default=0.0, help="one note this big too")
    parser.add_argument("--keep", type=Path, help="write the vaults here and keep them")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="notesqa-memory-") as scratch:
        base = args.keep or Path(scratch)
        result: dict = {}
        for name, mb, big in (
            ("baseline", args.baseline_mb, 0.0),
            ("big", args.mb, args.big_note_mb),
        ):
            notes = base / f"vault-{name}"
            written = write_vault(notes, mb, big)
            result[name] = {"mb": round(written / 1e6, 1), **index_peak(notes)}
            print(json.dumps({name: result[name]}), file=sys.stderr, flush=True)
        result["peak_ratio"] = round(
            result["big"]["peak_rss_mb"] / result["baseline"]["peak_rss_mb"], 3
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
