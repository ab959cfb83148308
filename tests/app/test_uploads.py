import pytest

from app.uploads import MAX_UPLOAD_BYTES, check_upload, save_upload


@pytest.mark.parametrize(
    "name", ["../evil.md", "/etc/passwd.md", "a/b.md", "..\\x.md", "..", ".hidden.md", ""]
)
def test_names_that_could_escape_or_hide_are_refused(tmp_path, name):
    with pytest.raises(ValueError):
        save_upload(tmp_path, name, b"# hi")
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("setup.exe", b"MZ", "not a notes file"),
        ("slides.pdf", b"<html>not a pdf", "is not a PDF"),
        ("big.md", b"a" * (MAX_UPLOAD_BYTES + 1), "limit"),
        ("bin.txt", b"abc\x00def", "binary"),
        ("latin.txt", "café".encode("latin-1"), "not UTF-8"),
    ],
)
def test_bad_uploads_get_a_clear_message(name, data, message):
    with pytest.raises(ValueError, match=message):
        check_upload(name, data)


def test_good_upload_is_written_inside_the_notes_folder(tmp_path):
    path = save_upload(tmp_path, "week 1 (intro).md", "# Week 1\n\nÉcole".encode())
    assert path == (tmp_path / "uploads" / "week 1 (intro).md").resolve()
    assert path.read_text(encoding="utf-8").endswith("École")
    assert [p.name for p in path.parent.iterdir()] == ["week 1 (intro).md"]  # no temp file left


def test_a_very_long_name_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="300 characters long"):
        save_upload(tmp_path, "a" * 297 + ".md", b"# hi")
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_an_upload_never_overwrites_a_note_of_the_same_name(tmp_path):
    first = save_upload(tmp_path, "week1.md", b"# Week 1\n\nmy edits")
    again = save_upload(tmp_path, "week1.md", b"# Week 1\n\nmy edits")
    other = save_upload(tmp_path, "week1.md", b"# Week 1\n\nanother version")
    assert again == first and other.name == "week1 (2).md"
    assert first.read_bytes() == b"# Week 1\n\nmy edits"
    assert other.read_bytes() == b"# Week 1\n\nanother version"


def test_binary_looking_text_without_nul_bytes_is_refused():
    noise = bytes(range(1, 32)) * 20
    with pytest.raises(ValueError, match="looks binary"):
        check_upload("noise.txt", noise)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("page.html", b"<h1>Adam</h1><p>two moving averages</p>"),
        ("slides.pdf", b"%PDF-1.4\n%\xe2\xe3"),
    ],
)
def test_every_type_the_index_reads_can_be_uploaded(tmp_path, name, data):
    from rag.documents import SUPPORTED_EXTENSIONS

    path = save_upload(tmp_path, name, data)
    assert path.read_bytes() == data and path.suffix in SUPPORTED_EXTENSIONS
