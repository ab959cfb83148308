"""Front matter, HTML and PDF notes: what text gets indexed, and that offsets stay honest."""

from __future__ import annotations

import time

import pytest

from rag.documents import load_notes
from rag.formats import blank_front_matter, html_to_text, pdf_to_text


def _pdf(text: str) -> bytes:
    """A valid one-page PDF showing ``text`` in Helvetica (objects, xref table and trailer)."""
    stream = f"BT /F1 18 Tf 20 100 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 144] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (
        f"trailer << /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


def test_front_matter_is_blanked_and_offsets_stay_those_of_the_file():
    raw = "---\ntitle: Cells\ntags: [bio]\n---\n# Cells\n\nMitochondria make ATP.\n"
    text = blank_front_matter(raw)
    assert len(text) == len(raw) and "title" not in text
    start = raw.index("Mitochondria")
    assert text[start : start + 12] == "Mitochondria"
    assert blank_front_matter("# No front matter\n---\n") == "# No front matter\n---\n"


def test_html_gives_the_visible_text_with_headings():
    page = (
        "<html><head><title>T</title><style>p{}</style></head><body><h2>Cells</h2>"
        "<p>Mitochondria <b>make</b>&nbsp;ATP.</p><script>alert(1)</script><ul><li>one</li></ul>"
        "</body></html>"
    )
    text = html_to_text(page)
    assert "## Cells" in text and "Mitochondria make ATP." in text and "one" in text
    assert "alert" not in text and "p{}" not in text


def test_pdf_text_is_extracted():
    assert "Mitochondria make ATP." in pdf_to_text(_pdf("Mitochondria make ATP."))


def test_a_folder_with_every_format_loads_and_a_broken_pdf_is_skipped(tmp_path):
    (tmp_path / "a.md").write_text("---\ntitle: A\n---\nAda was born in Oslo.\n")
    (tmp_path / "b.html").write_text("<p>Boris collected clocks.</p>")
    (tmp_path / "c.pdf").write_bytes(_pdf("Chloe painted maps."))
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf \x00\x01")
    docs, report = load_notes(tmp_path)
    texts = {d.path: d.text for d in docs}
    assert set(texts) == {"a.md", "b.html", "c.pdf"}
    assert "title" not in texts["a.md"] and texts["a.md"].endswith("Ada was born in Oslo.\n")
    assert texts["b.html"] == "Boris collected clocks."
    assert "Chloe painted maps." in texts["c.pdf"]
    assert [path for path, _ in report.skipped] == ["broken.pdf"]


@pytest.mark.parametrize("junk", ["<p>unclosed", "<<<>>>", ""])
def test_odd_html_never_crashes(junk):
    assert isinstance(html_to_text(junk), str)


def test_html_details_a_reader_sees():
    page = (
        "<!DOCTYPE html><!-- hidden note --><p title='a > b'>Cells &amp; tissues</p>"
        "<STYLE>p > b {}</STYLE><noscript>enable scripts</noscript><p>x < y</p>"
        '<script type="text/javascript">if (a < b) {}</script><h3 class="x">Sub</h3>'
    )
    assert html_to_text(page) == "Cells & tissues\n\nx < y\n\n### Sub"
    assert html_to_text("<p>kept</p><!-- a comment that never ends <p>lost</p>") == "kept"


MB = 1_000_000


@pytest.mark.parametrize(
    "piece", ["<a ", '<a b="', "<a\n", "</", "<?", "<", "<!--", "<p>x", "<a b='c'", "&#"]
)
def test_a_megabyte_of_hostile_html_is_read_in_linear_time(piece):
    started = time.perf_counter()
    html_to_text(piece * (MB // len(piece)))
    assert time.perf_counter() - started < 3.0  # html.parser took seconds on 20 KB of "<a "


def test_front_matter_without_its_closing_line_is_left_in_linear_time():
    note = "---\n" + "key: value\n" * (MB // 11)
    started = time.perf_counter()
    assert blank_front_matter(note) == note
    assert time.perf_counter() - started < 3.0
