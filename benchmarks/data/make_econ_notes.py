"""Turn three chapters of OpenStax *Principles of Economics 3e* (CNXML) into Markdown study notes.

The notes form the economics dev set in ``benchmarks/data/econ_notes`` (see its README.md). Each
chapter section (one CNXML module) becomes one Markdown file under ``<out>/<chapter-folder>/``:
``#``/``##`` headings from the module and section titles, paragraphs, bullet lists, ``**term**``
for key terms, simple Markdown tables, MathML as LaTeX-ish ``$...$``, figures reduced to their
captions (photo credits dropped) and the glossary as a "Key Terms" list. End-of-section material
(summaries, self-check/review/critical-thinking questions, problems, references), exercises and
"Link It Up" boxes are dropped; "Work It Out", "Clear It Up" and "Bring It Home" boxes are kept.

The book is CC BY 4.0 (Greenlaw, Shapiro et al., https://openstax.org/details/books/principles-economics-3e);
the notes are converted and reduced from it.

Usage:
    python benchmarks/data/make_econ_notes.py --mirror PATH --out benchmarks/data/econ_notes/notes

PATH is the book's git repository (read with ``git show HEAD:<path>``) or a checkout of it.
Standard library only.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

COLLECTION = "collections/principles-economics-3e.collection.xml"
# chapter title -> (folder, "module:file-stem ..." in book order)
CHAPTERS: dict[str, tuple[str, str]] = {
    "Choice in a World of Scarcity": (
        "choice-in-a-world-of-scarcity",
        "m63593:introduction m63594:budget-constraint m63610:production-possibilities-frontier "
        "m63611:objections-to-economic-approach",
    ),
    "Demand and Supply": (
        "demand-and-supply",
        "m63600:introduction m63601:demand-supply-equilibrium m63602:shifts-in-demand-and-supply "
        "m63603:four-step-process m63604:price-ceilings-and-floors m63605:demand-supply-efficiency",
    ),
    "Elasticity": (
        "elasticity",
        "m63915:introduction m63916:price-elasticity m63917:polar-cases "
        "m63925:elasticity-and-pricing m63929:other-elasticities",
    ),
}
DROP_SECTIONS = {"summary", "self-check-questions", "review-questions", "critical-thinking"}
DROP_SECTIONS |= {"problems", "references"}
NOTE_LABELS = {"workout": "Work It Out", "clearup": "Clear It Up", "bringhome": "Bring It Home"}
NOTE_LABELS["chapter-objectives"] = "Chapter Objectives"
DROP_NOTES = {"linkup"}
PADDED_OPS = {"=", "+", "–", "−", "×", "÷", "≈", "<", ">"}
OPS_RE = re.compile(r"\s*([=×<>+])\s*")
SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
CREDIT_RE = re.compile(r"\s*\((?:Credit|credit)[^()]*(?:\([^()]*\)[^()]*)*\)")


def tag(el: ET.Element) -> str:
    """Local tag name, without the XML namespace."""
    return el.tag.rsplit("}", 1)[-1]


def squash(text: str) -> str:
    return " ".join(text.split())


def descendants(el: ET.Element, name: str) -> list[ET.Element]:
    """All elements below ``el`` (and ``el`` itself) with local tag ``name``, in document order."""
    return [e for e in el.iter() if tag(e) == name]


def read_source(mirror: Path, path: str) -> str:
    """Read a file from a checkout, or from the git repository's HEAD."""
    if (mirror / path).is_file():
        return (mirror / path).read_text(encoding="utf-8")
    cmd = ["git", "-C", str(mirror), "show", f"HEAD:{path}"]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def math(el: ET.Element) -> str:
    """MathML -> LaTeX-ish text (fractions, sub/superscripts; tokens kept verbatim)."""
    name, kids = tag(el), list(el)
    if name in ("mi", "mn", "mtext", "mo"):
        text = re.sub(r"\s+", " ", el.text or "")
        return f" {text} " if name == "mo" and text.strip() in PADDED_OPS else text
    if name == "mfrac" and len(kids) == 2:
        return f"\\frac{{{math(kids[0]).strip()}}}{{{math(kids[1]).strip()}}}"
    if name in ("msub", "msup") and len(kids) == 2:
        mark = "_" if name == "msub" else "^"
        return f"{math(kids[0])}{mark}{{{math(kids[1]).strip()}}}"
    if name == "mfenced":
        sep = el.get("separators", ",")[:1]
        inner = f"{sep} ".join(math(k) for k in kids)
        return f"{el.get('open', '(')}{inner}{el.get('close', ')')}"
    if name == "mspace":
        return " "
    return "".join(math(k) for k in kids)


def math_rows(el: ET.Element) -> list[str]:
    """One ``$...$`` string per table row (aligned equations), else a single one."""
    rows = descendants(el, "mtr")
    parts = [OPS_RE.sub(r" \1 ", math(r)).replace("$", "\\$") for r in rows or [el]]
    return [f"${squash(p)}$" for p in parts if squash(p)]


class Converter:
    """Renders the modules of one chapter; figure and table numbers run over the chapter."""

    def __init__(self, number: int, docs: list[ET.Element]) -> None:
        self.labels: dict[str, str] = {}
        counts = {"figure": 0, "table": 0}
        for doc in docs:
            for el in doc.iter():
                kind = tag(el)
                if kind in counts and el.get("id"):
                    counts[kind] += 1
                    self.labels[el.get("id", "")] = f"{kind.title()} {number}.{counts[kind]}"

    def inline(self, el: ET.Element) -> str:
        """Text of ``el`` with inline markup (terms, emphasis, links, math) rendered."""
        return (el.text or "") + "".join(self.inline_child(k) + (k.tail or "") for k in el)

    def inline_child(self, el: ET.Element) -> str:
        name = tag(el)
        inner = squash(self.inline(el))
        if name == "term":
            return inner if el.get("class") == "no-emphasis" or not inner else f"**{inner}**"
        if name == "emphasis":
            mark = "**" if el.get("effect") == "bold" else "*"
            return f"{mark}{inner}{mark}" if inner else ""
        if name == "link":
            if inner:
                return inner
            target = el.get("target-id", "")
            return self.labels.get(target, "the table" if "Table" in target else "the figure")
        if name == "math":
            return " ".join(math_rows(el))
        if name == "sub":
            return inner.translate(SUBSCRIPTS) if inner.isdigit() else f"_{inner}"
        if name == "sup":
            return f"^{inner}"
        if name == "quote":
            return f"“{inner}”"
        return inner

    def blocks(self, el: ET.Element, level: int) -> list[str]:
        """Markdown blocks for the children of a container element."""
        out: list[str] = []
        for kid in el:
            out.extend(self.block(kid, level))
        return out

    def block(self, el: ET.Element, level: int) -> list[str]:
        name, cls = tag(el), el.get("class", "")
        if name in ("title", "exercise", "metadata") or cls.split()[-1:] == ["splash"]:
            return []
        if name == "para":
            return self.para(el)
        if name == "section":
            if cls in DROP_SECTIONS:
                return []
            title = el.find("{*}title")
            text = squash(self.inline(title)) if title is not None else ""
            return [f"{'#' * min(level, 6)} {text}"] * bool(text) + self.blocks(el, level + 1)
        if name == "note":
            kind = cls.split()[-1] if cls else ""
            if kind in DROP_NOTES:
                return []
            title = el.find("{*}title")
            text = squash(self.inline(title)) if title is not None else ""
            label = NOTE_LABELS.get(kind, "Note")
            head = label if kind == "chapter-objectives" or not text else f"{label}: {text}"
            return [f"{'#' * min(level, 6)} {head}"] + self.blocks(el, level + 1)
        if name == "list":
            return [self.listing(el)]
        if name == "table":
            return self.table(el)
        if name == "figure":
            return self.figure(el)
        if name == "equation":
            return ["\n".join(math_rows(el))]
        if name == "quote":
            return ["> " + b for b in self.blocks(el, level)]
        if name == "glossary":
            return [f"{'#' * min(level, 6)} Key Terms", self.glossary(el)]
        return self.blocks(el, level)

    def para(self, el: ET.Element) -> list[str]:
        """A paragraph; block children (lists, equations, figures) split it."""
        out: list[str] = []
        text = el.text or ""
        for kid in el:
            if tag(kid) in ("list", "equation", "figure", "table"):
                out += [squash(text)] if squash(text) else []
                out += self.block(kid, 3)
                text = kid.tail or ""
            else:
                text += self.inline_child(kid) + (kid.tail or "")
        return out + ([squash(text)] if squash(text) else [])

    def listing(self, el: ET.Element) -> str:
        numbered = el.get("list-type") == "enumerated"
        items = [squash(self.inline(i)) for i in descendants(el, "item")]
        marks = [f"{n}." if numbered else "-" for n in range(1, len(items) + 1)]
        return "\n".join(f"{m} {t}" for m, t in zip(marks, items, strict=True) if t)

    def table(self, el: ET.Element) -> list[str]:
        rows = [
            [squash(self.inline(e)).replace("|", "\\|") for e in descendants(r, "entry")]
            for r in descendants(el, "row")
        ]
        rows = [r for r in rows if any(r)]
        if not rows:
            return []
        width = max(len(r) for r in rows)
        rows = [r + [""] * (width - len(r)) for r in rows]
        lines = [f"| {' | '.join(rows[0])} |", "|" + "---|" * width]
        lines += [f"| {' | '.join(r)} |" for r in rows[1:]]
        title, caption = el.find("{*}title"), el.find("{*}caption")
        head = squash(self.inline(title)) if title is not None else ""
        tail = squash(self.inline(caption)) if caption is not None else ""
        if not head:
            head, tail = tail, ""
        name = self.labels.get(el.get("id", ""), "Table")
        head = f"**{name}. {head}**" if head else f"**{name}**"
        return [head, "\n".join(lines)] + [tail] * bool(tail)

    def figure(self, el: ET.Element) -> list[str]:
        title, caption = el.find("{*}title"), el.find("{*}caption")
        head = squash(self.inline(title)) if title is not None else ""
        text = CREDIT_RE.sub("", squash(self.inline(caption))) if caption is not None else ""
        if not head and not text:
            return []
        name = self.labels.get(el.get("id", ""), "Figure")
        label = f"*{name}. {head}*" if head else f"*{name}.*"
        return [f"{label} {text}".strip()]

    def glossary(self, el: ET.Element) -> str:
        lines = []
        for d in descendants(el, "definition"):
            term, meaning = d.find("{*}term"), d.find("{*}meaning")
            if term is not None and meaning is not None:
                lines.append(f"- **{squash(self.inline(term))}**: {squash(self.inline(meaning))}")
        return "\n".join(lines)

    def module(self, doc: ET.Element, heading: str) -> str:
        content = doc.find("{*}content")
        body = self.blocks(content, 2) if content is not None else []
        glossary = doc.find("{*}glossary")
        if glossary is not None:
            body += self.block(glossary, 2)
        return "\n\n".join([f"# {heading}"] + body) + "\n"


def chapter_numbers(collection: str) -> dict[str, int]:
    """Chapter title -> chapter number, from the order of the collection's subcollections."""
    root = ET.fromstring(collection)
    titles = [s.find("{*}title") for s in root.iter("{http://cnx.rice.edu/collxml}subcollection")]
    return {squash(t.text or ""): n for n, t in enumerate(titles, 1) if t is not None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mirror", type=Path, required=True, help="book repository or checkout")
    parser.add_argument("--out", type=Path, required=True, help="notes folder to write")
    args = parser.parse_args(argv)
    numbers = chapter_numbers(read_source(args.mirror, COLLECTION))
    total = files = 0
    for chapter, (folder, spec) in CHAPTERS.items():
        number, modules = numbers[chapter], [m.split(":") for m in spec.split()]
        docs = [
            ET.fromstring(read_source(args.mirror, f"modules/{m}/index.cnxml")) for m, _ in modules
        ]
        conv = Converter(number, docs)
        (args.out / folder).mkdir(parents=True, exist_ok=True)
        for section, (doc, (_, stem)) in enumerate(zip(docs, modules, strict=True)):
            title_el = doc.find("{*}title")
            title = squash(conv.inline(title_el)) if title_el is not None else stem
            heading = f"{number}.{section} {title}" if section else f"Chapter {number}: {chapter}"
            text = conv.module(doc, heading)
            if section == 0 and title != chapter:
                text = text.replace("\n\n", f"\n\n*{title}*\n\n", 1)
            (args.out / folder / f"{stem}.md").write_text(text, encoding="utf-8")
            total, files = total + len(text.encode("utf-8")), files + 1
    print(f"wrote {files} files, {total:,} bytes under {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
