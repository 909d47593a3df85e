"""Corpus readers: every format, compression and archive, encodings, and every bad input."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import re
import socket
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from causette.corpus.config import SourceConfig
from causette.corpus.document import Report
from causette.corpus.readers.encoding import decode_bytes, sniff_binary
from causette.corpus.readers.gutenberg import split_gutenberg
from causette.corpus.readers.tei_render import split_speaker
from causette.corpus.sources import read_source
from causette.corpus.readers.text import guess_kind, split_stream
from causette.errors import CausetteError

FIXTURES = Path(__file__).parent / "fixtures" / "corpus"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

NOVEL = (
    "UNE VEILLÉE\n"
    "Jeanne, ayant fini ses malles, s'approcha de la fenêtre, mais la pluie ne cessait pas.\n"
    "L'averse, toute la nuit, avait sonné contre les carreaux et les toits.\n"
    "— Partirons-nous demain ? demanda-t-elle à son père, qui lisait près du feu.\n"
)
PLAY = (
    "LE MISANTHROPE\nMolière\n\nACTE I\n\nSCÈNE PREMIÈRE. Philinte, Alceste.\n\n"
    "PHILINTE.\nQu'est-ce donc ? Qu'avez-vous ?\n\nALCESTE.\nLaissez-moi, je vous prie.\n\n"
    "PHILINTE.\nMais, encor, dites-moi, quelle bizarrerie...\n\n"
    "ALCESTE.\nLaissez-moi là, vous dis-je, et courez vous cacher.\n\n"
    "PHILINTE.\nMais on entend les gens, au moins, sans se fâcher.\n\n"
    "ALCESTE.\nMoi, je veux me fâcher, et ne veux point entendre.\n"
)


def read(path, report: Report | None = None, **settings_) -> tuple[list, Report]:
    """All documents of one source, and the report (warnings collected, never printed)."""
    report = report if report is not None else Report(echo=lambda line: None)
    docs = list(read_source(SourceConfig(path=str(path), **settings_), report))
    return docs, report


def messages(report: Report) -> list[tuple[str, str, int | None]]:
    return [(Path(p.file.split(":")[0]).name, p.message, p.line) for p in report.problems]


# -- plain text, folders, compression -------------------------------------------------------------


def test_folder_is_read_recursively_in_sorted_order_without_hidden_files(tmp_path):
    root = tmp_path / "src"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "b.txt").write_text(NOVEL, encoding="utf-8")
    (root / "a.txt").write_text(NOVEL.replace("Jeanne", "Marie"), encoding="utf-8")
    (root / "sub" / "deeper" / "c.md").write_text("Un texte en profondeur.\n", encoding="utf-8")
    (root / "z.txt").write_text("Le dernier, après le dossier.\n", encoding="utf-8")
    (root / ".cache.txt").write_text("caché", encoding="utf-8")
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main", encoding="utf-8")

    docs, report = read(root)
    assert [d.id for d in docs] == ["a", "b", "c", "z"]  # sorted by path: sub/ before z.txt
    assert [Path(d.source).relative_to(root).as_posix() for d in docs] == [
        "a.txt", "b.txt", "sub/deeper/c.md", "z.txt"
    ]
    assert [Path(f.path).name for f in report.files] == ["a.txt", "b.txt", "c.md", "z.txt"]
    assert not report.problems
    first = report.files[0]
    assert len(first.sha256) == 64 and first.size == len(NOVEL.replace("Jeanne", "Marie").encode("utf-8"))
    assert (first.format, first.encoding, first.documents) == ("text", "utf-8", 1)
    assert docs[0].title == "UNE VEILLÉE"
    assert docs[0].kind == "prose" and docs[0].meta["encoding"] == "utf-8"
    assert "Marie, ayant fini" in docs[0].text


def test_single_file_and_kind_from_the_source_overrides_the_guess(tmp_path):
    path = tmp_path / "piece.txt"
    path.write_text(PLAY, encoding="utf-8")
    (doc,), _ = read(path)
    assert (doc.id, doc.title, doc.kind) == ("piece", "LE MISANTHROPE", "theatre")
    (doc,), _ = read(path, kind="poetry")
    assert doc.kind == "poetry"


def test_long_first_line_makes_a_title_of_at_most_120_characters(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text("\n\n  " + "mot " * 100 + "\nsuite", encoding="utf-8")
    (doc,), _ = read(path)
    assert doc.title.startswith("mot mot") and len(doc.title) <= 120


@pytest.mark.parametrize(
    "name, compress",
    [("t.txt.gz", gzip.compress), ("t.txt.bz2", bz2.compress), ("t.txt.xz", lzma.compress),
     ("misnamed.txt", gzip.compress)],  # gzip recognised by its magic bytes, whatever the name
)
def test_compressed_files_are_read_transparently(tmp_path, name, compress):
    (tmp_path / name).write_bytes(compress(NOVEL.encode("utf-8")))
    (doc,), report = read(tmp_path / name)
    assert doc.text == NOVEL.strip("\n")
    assert doc.id == name.split(".")[0]
    assert report.files[0].size == (tmp_path / name).stat().st_size  # the size on disk


def test_doc_separator_splits_a_file_streaming(tmp_path):
    parts = ["PREMIER\nUn.", "DEUXIÈME\nDeux.\n\nAvec un paragraphe.", "TROISIÈME\nTrois."]
    path = tmp_path / "recueil.txt.gz"
    # four newlines between the last two, and Windows line ends in a copy: still three documents
    content = parts[0] + "\n\n\n" + parts[1] + "\n\n\n\n" + parts[2] + "\n\n\n"
    path.write_bytes(gzip.compress(content.encode()))
    docs, report = read(path, doc_separator="\n\n\n")
    assert [d.id for d in docs] == ["recueil#1", "recueil#2", "recueil#3"]
    assert [d.text for d in docs] == parts
    assert [d.title for d in docs] == ["PREMIER", "DEUXIÈME", "TROISIÈME"]
    assert report.files[0].documents == 3

    crlf = tmp_path / "windows.txt"
    crlf.write_bytes("\r\n\r\n\r\n".join(parts).encode("utf-8").replace(b"\n\n", b"\r\n\r\n"))
    docs, _ = read(crlf, doc_separator="\n\n\n")
    assert len(docs) == 3


def test_split_stream_finds_separators_across_chunk_boundaries():
    data = b"a\n\n\nbb\n\n\nccc\r\n\r\n\r\nd"
    for chunk in range(1, 8):
        assert list(split_stream(io.BytesIO(data), b"\n\n\n", chunk=chunk)) == [b"a", b"bb", b"ccc", b"d"]


def test_tar_xz_archive_is_read_member_by_member(tmp_path):
    archive = tmp_path / "pieces.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        for name, data in [
            ("corpus/b.txt", NOVEL.encode()),
            ("corpus/a.xml", (FIXTURES / "moliere-misanthrope.xml").read_bytes()),
            ("corpus/._a.xml", b"\x00\x05\x16\x07 macOS resource fork"),  # hidden: skipped
            ("corpus/c.jsonl.gz", gzip.compress(b'{"text": "Un texte dans un fichier compress\xc3\xa9."}\n')),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    docs, report = read(archive)
    assert [d.source for d in docs] == [
        f"{archive}:corpus/b.txt", f"{archive}:corpus/a.xml", f"{archive}:corpus/c.jsonl.gz"
    ]
    assert [d.id for d in docs] == ["b", "a", "c#1"]
    assert [d.kind for d in docs] == ["prose", "theatre", "prose"]
    assert docs[2].text == "Un texte dans un fichier compressé."
    (entry,) = report.files  # the archive is the input file; its members are counted in it
    assert (entry.path, entry.format, entry.documents, entry.problems) == (str(archive), "tar", 3, 0)


def test_zip_archive_and_problems_of_members_count_for_the_archive(tmp_path):
    archive = tmp_path / "lot.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("lot/un.txt", NOVEL)
        z.writestr("lot/vide.txt", "")
        z.writestr("__MACOSX/lot/._un.txt", b"\x00\x01")
        z.writestr("lot/deux.txt", PLAY)
    docs, report = read(archive)
    assert [d.source.split(":")[-1] for d in docs] == ["lot/un.txt", "lot/deux.txt"]
    assert [p.file for p in report.problems] == [f"{archive}:lot/vide.txt"]
    assert report.problems[0].message == "empty file"
    (entry,) = report.files
    assert (entry.format, entry.documents, entry.problems) == ("zip", 2, 1)


def test_tar_gz_with_tei_and_an_archive_in_an_archive(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("roman.xml", (FIXTURES / "eltec-roman.xml").read_text(encoding="utf-8"))
    archive = tmp_path / "tout.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("inner.zip")
        info.size = len(inner.getvalue())
        tar.addfile(info, io.BytesIO(inner.getvalue()))
    (doc,), report = read(archive)
    assert doc.source == f"{archive}:inner.zip:roman.xml" and doc.id == "roman"
    assert report.files[0].documents == 1


def test_limit_stops_reading_without_opening_more_files(tmp_path):
    for name in "abcde":
        (tmp_path / f"{name}.txt").write_text(NOVEL, encoding="utf-8")
    docs, report = read(tmp_path, limit=2)
    assert [d.id for d in docs] == ["a", "b"]
    assert len(report.files) == 2
    (tmp_path / "many.jsonl").write_text("".join(json.dumps({"text": f"t{i}"}) + "\n" for i in range(50)))
    docs, _ = read(tmp_path / "many.jsonl", limit=7)
    assert len(docs) == 7


# -- encodings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, encoding, text",
    [
        ("Été, cœur, « œuvre »".encode("utf-8"), "utf-8", "Été, cœur, « œuvre »"),
        (b"\xef\xbb\xbf" + "Été".encode("utf-8"), "utf-8-sig", "Été"),
        (b"\xc9t\xe9, c\x9cur \x92", "cp1252", "Été, cœur ’"),
        (b"\xc9t\xe9 \x81", "latin-1", "Été \x81"),  # 0x81 is undefined in CP1252
        (b"plain ascii", "utf-8", "plain ascii"),
    ],
)
def test_decode_bytes(data, encoding, text):
    assert decode_bytes(data) == (text, encoding)


def test_real_utf8_is_never_taken_for_cp1252():
    # every UTF-8 encoded French letter is 2 bytes that CP1252 would also decode (as "Ã©"...)
    text = "àâäçéèêëîïôöùûüÿœæÀÂÄÇÉÈÊËÎÏÔÖÙÛÜŸŒÆ«»—–…’"
    assert decode_bytes(text.encode("utf-8")) == (text, "utf-8")


@pytest.mark.parametrize(
    "data, encoding",
    [
        ("Été, un cœur.".encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + "Été, un cœur.".encode("utf-8"), "utf-8-sig"),
        ("Été, un cœur.".encode("cp1252"), "cp1252"),
    ],
)
def test_encoding_is_recorded_in_the_input_file_and_the_document(tmp_path, data, encoding):
    (tmp_path / "t.txt").write_bytes(data)
    (doc,), report = read(tmp_path / "t.txt")
    assert doc.text == "Été, un cœur."  # BOM removed, CP1252 decoded
    assert report.files[0].encoding == encoding
    assert doc.meta["encoding"] == encoding


def test_latin1_file(tmp_path):
    (tmp_path / "t.txt").write_bytes(b"Une cha\xeene \x81 \xe9trange.")
    (doc,), report = read(tmp_path / "t.txt")
    assert report.files[0].encoding == "latin-1" and doc.text.startswith("Une chaîne")


def test_mixed_encodings_in_one_jsonl_file_are_decoded_line_by_line(tmp_path):
    path = tmp_path / "mix.jsonl"
    path.write_bytes(
        '{"text": "un été"}\n'.encode("utf-8")
        + '{"text": "un cœur"}\n'.encode("cp1252")
        + b'{"text": "ascii"}\n'
    )
    docs, report = read(path)
    assert [d.text for d in docs] == ["un été", "un cœur", "ascii"]
    assert [d.meta["encoding"] for d in docs] == ["utf-8", "cp1252", "utf-8"]
    assert report.files[0].encoding == "utf-8+cp1252"


# -- bad inputs ---------------------------------------------------------------------------------


def test_bad_files_are_problems_naming_the_file_and_reading_goes_on(tmp_path):
    (tmp_path / "a_nul.txt").write_bytes(b"\x00\x01\x02\xff" * 100)
    (tmp_path / "b_controls.txt").write_bytes(b"abc\x01\x02\x03\x04\x05\x06" * 50)
    (tmp_path / "c_empty.txt").write_bytes(b"")
    (tmp_path / "d_blank.txt").write_bytes(b"  \n\n \t\n")
    (tmp_path / "e_utf16.txt").write_bytes("Bonjour".encode("utf-16"))
    (tmp_path / "f_truncated.txt.gz").write_bytes(gzip.compress(NOVEL.encode() * 50)[:200])
    (tmp_path / "g_good.txt").write_text(NOVEL, encoding="utf-8")
    warnings: list[str] = []
    docs, report = read(tmp_path, Report(echo=warnings.append))
    assert [d.id for d in docs] == ["e_utf16", "g_good"]  # UTF-16 is read (issue 24), not refused
    assert docs[0].text == "Bonjour" and report.files[4].encoding == "utf-16-le"
    got = messages(report)
    assert got[:4] == [
        ("a_nul.txt", "binary file, skipped", None),
        ("b_controls.txt", "binary file, skipped", None),
        ("c_empty.txt", "empty file", None),
        ("d_blank.txt", "empty file (only white space)", None),
    ]
    assert got[4][0] == "f_truncated.txt.gz" and got[4][1].startswith("unreadable file (")
    assert len(warnings) == 5 and warnings[0] == f"warning: {tmp_path / 'a_nul.txt'}: binary file, skipped"
    assert [f.problems for f in report.files] == [1, 1, 1, 1, 0, 1, 0]
    assert [f.format for f in report.files] == ["text", "text", "auto", "text", "text", "auto", "text"]


def test_a_one_document_file_too_big_is_a_problem_not_a_memory_blowup(tmp_path, monkeypatch):
    import causette.corpus.readers.context as context

    monkeypatch.setattr(context, "MAX_DOCUMENT_BYTES", 100)
    (tmp_path / "gros.txt").write_text("mot " * 30, encoding="utf-8")
    docs, report = read(tmp_path / "gros.txt")
    assert docs == [] and report.problems[0].message.startswith("too big to be one document")
    docs, report = read(tmp_path / "gros.txt", doc_separator="\n\n\n")  # streamed: no limit
    assert len(docs) == 1 and not report.problems


def test_missing_path_raises_at_once_with_one_line():
    with pytest.raises(CausetteError) as e:
        read_source(SourceConfig(path="/no/such/corpus"), Report())  # not even iterated
    assert str(e.value) == "/no/such/corpus: no such file or directory"
    with pytest.raises(CausetteError):
        read_source(SourceConfig(path=""), Report())


def test_empty_folder_is_a_problem(tmp_path):
    (tmp_path / ".hidden").write_text("x")
    docs, report = read(tmp_path)
    assert docs == [] and "no input files" in report.problems[0].message


def test_strict_mode_raises_on_the_first_problem(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"\x00binary")
    (tmp_path / "b.txt").write_text(NOVEL, encoding="utf-8")
    with pytest.raises(CausetteError, match=r"a\.txt: binary file, skipped \(--strict\)"):
        read(tmp_path, Report(strict=True))


def test_sniff_binary():
    assert sniff_binary(b"Du texte\n\ttabul\xe9.\r\n") is None
    assert sniff_binary(b"\x1b[31mrouge\x1b[0m et du texte normal autour, assez long pour passer") is None
    assert sniff_binary(b"%PDF-1.4\n\x00\x00") == "binary file, skipped"


def test_readers_never_print(tmp_path, capsys):
    (tmp_path / "x.txt").write_bytes(b"")
    (tmp_path / "y.jsonl").write_text("pas du json\n")
    read(tmp_path)
    assert capsys.readouterr() == ("", "")


# -- format choice --------------------------------------------------------------------------------


def test_auto_format_from_content_and_explicit_format_overrides(tmp_path):
    tei = (FIXTURES / "eltec-roman.xml").read_bytes()
    (tmp_path / "sans_extension").write_bytes(tei)
    (doc,), report = read(tmp_path / "sans_extension")
    assert report.files[0].format == "tei" and doc.title == "Le Petit Village"
    (tmp_path / "roman.txt").write_bytes(tei)
    (doc,), report = read(tmp_path / "roman.txt", format="tei")
    assert report.files[0].format == "tei" and "<p>" not in doc.text
    (doc,), report = read(FIXTURES / "eltec-roman.xml", format="text")
    assert report.files[0].format == "text" and "<teiHeader>" in doc.text


@pytest.mark.parametrize("name, fmt", [("a.ndjson", "jsonl"), ("a.json", "jsonl"), ("a.JSONL.gz", "jsonl")])
def test_json_extensions(tmp_path, name, fmt):
    data = b'{"text": "Un texte."}\n'
    (tmp_path / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    (doc,), report = read(tmp_path / name)
    assert report.files[0].format == fmt and doc.text == "Un texte."


# -- Project Gutenberg --------------------------------------------------------------------------

LICENCE_WORDS = re.compile(
    r"gutenberg|licen[cs]e|trademark|donation|e-?book|e-?text|small print|produced by|réalisé", re.I
)


@pytest.mark.parametrize("name", ["gutenberg_en.txt", "gutenberg_fr_old.txt"])
def test_gutenberg_header_footer_and_licence_are_removed(name):
    (doc,), report = read(FIXTURES / name)
    assert report.files[0].format == "gutenberg"
    assert not LICENCE_WORDS.search(doc.text), doc.text
    assert doc.text.split("\n")[0] in ("LE PETIT CONTE", "LA FABLE DU RENARD")
    assert doc.text.endswith("sans rien dire.") or doc.text.endswith("le ventre vide.")
    assert doc.meta["gutenberg_end_found"] is True
    expected = {
        "gutenberg_en.txt": ("Le Petit Conte Histoire du village", "Jeanne Durand"),
        "gutenberg_fr_old.txt": ("La Fable du Renard", "Jean Martin"),
    }[name]
    assert (doc.title, doc.meta["author"]) == expected


@pytest.mark.parametrize(
    "start, end",
    [
        ("***START OF THE PROJECT GUTENBERG EBOOK X***", "***END OF THE PROJECT GUTENBERG EBOOK X***"),
        ("*** start of this project gutenberg ebook x ***", "*** end of this project gutenberg ebook x ***"),
        ("*** DÉBUT DU PROJET GUTENBERG X ***", "*** FIN DU PROJET GUTENBERG X ***"),
        ("*** START OF THE PROJECT GUTENBERG EBOOK X ***", "End of Project Gutenberg's X, by Y"),
        ("*** START OF THE PROJECT GUTENBERG EBOOK X ***", "FIN DE CE LIVRE DU PROJET"),
    ],
)
def test_gutenberg_marker_variants(start, end):
    text = f"Header Project Gutenberg\n\n{start}\n\nLe corps du livre.\n\n{end}\n\nlicence Gutenberg\n"
    header, body, facts = split_gutenberg(text)
    assert body == "Le corps du livre."
    assert facts == {"gutenberg_start_found": True, "gutenberg_end_found": True}


def test_gutenberg_without_end_marker_keeps_the_body_and_cuts_a_licence():
    text = (
        "*** START OF THE PROJECT GUTENBERG EBOOK X ***\nLe corps du livre.\nSuite.\n\n"
        "*** START: FULL LICENSE ***\nTHE FULL PROJECT GUTENBERG LICENSE\nDonations.\n"
    )
    _, body, facts = split_gutenberg(text)
    assert body == "Le corps du livre.\nSuite."
    assert facts["gutenberg_end_found"] is False
    _, body, facts = split_gutenberg("*** START OF THE PROJECT GUTENBERG EBOOK X ***\nLe corps.\n")
    assert (body, facts["gutenberg_end_found"]) == ("Le corps.", False)


def test_gutenberg_without_start_marker_drops_leading_boilerplate(tmp_path):
    path = tmp_path / "sans_debut.txt"
    path.write_text(
        "The Project Gutenberg EBook of X\n\nTitle: Le Conte\n\nRelease Date: 2004\n\n"
        "IL ÉTAIT UNE FOIS\n\nUne histoire sans marque de début.\n\n"
        "End of the Project Gutenberg EBook of X\n",
        encoding="utf-8",
    )
    (doc,), _ = read(path)
    assert doc.text == "IL ÉTAIT UNE FOIS\n\nUne histoire sans marque de début."
    assert doc.meta["gutenberg_start_found"] is False and doc.title == "Le Conte"


# -- TEI ------------------------------------------------------------------------------------------

PLAY_TEXT_KEEP = """Le Misanthrope
Jean-Baptiste Poquelin

ACTE I

SCÈNE PREMIÈRE. Philinte, Alceste.
(Philinte entre.)
PHILINTE : Qu'est-ce donc ? Qu'avez-vous ?
ALCESTE : (assis.) Laissez-moi, je vous prie.
PHILINTE : Mais, encor, dites-moi, quelle bizarrerie...
(Alceste se lève.) Dans vos brusques chagrins je ne puis vous comprendre,
Et quoique amis enfin, je suis tout des premiers...

ACTE II

SCÈNE II
DUBOIS : Monsieur, il faut faire retraite. Vite. (Il tremble.) Sans dire adieu. Le temps presse.
(Ils sortent.)"""


def test_tei_play_with_stage_directions_kept():
    (doc,), report = read(FIXTURES / "moliere-misanthrope.xml")
    assert doc.text == PLAY_TEXT_KEEP
    assert (doc.id, doc.title, doc.kind) == ("moliere-misanthrope", "Le Misanthrope", "theatre")
    assert doc.meta == {"encoding": "utf-8", "author": "Jean-Baptiste Poquelin", "year": 1666}
    assert "MARKER" not in doc.text  # no header, front, back or note text
    assert report.files[0].format == "tei"


def test_tei_play_with_stage_directions_dropped():
    (doc,), _ = read(FIXTURES / "moliere-misanthrope.xml", stage_directions="drop")
    expected = PLAY_TEXT_KEEP
    directions = ["(Philinte entre.)\n", "\n(Ils sortent.)", "(assis.) ", "(Alceste se lève.) "]
    directions.append("(Il tremble.) ")
    for direction in directions:
        expected = expected.replace(direction, "")
    assert doc.text == expected
    assert "(" not in doc.text and "tremble" not in doc.text and "assis" not in doc.text


def test_tei_novel_without_namespace():
    (doc,), _ = read(FIXTURES / "eltec-roman.xml")
    assert doc.text == (
        "Le Petit Village\nDurand, Jeanne\n\nI\nLe village dormait sous la neige.\n"
        "— Qui va là ? demanda la vieille.\n\nII UN SOIR\nElle chanta :\nDans les champs de l'été,\n"
        "les blés ont tant chanté.\nPuis elle se tut."
    )
    assert (doc.kind, doc.title) == ("prose", "Le Petit Village")
    assert (doc.meta["author"], doc.meta["year"]) == ("Durand, Jeanne", 1850)


def test_tei_several_authors_and_plain_author_text(tmp_path):
    (tmp_path / "duo.tei").write_text(
        '<TEI xmlns="http://www.tei-c.org/ns/1.0"><teiHeader><fileDesc><titleStmt><title>Duo</title>'
        "<author><persName><forename>Eugène</forename><surname>Labiche</surname></persName></author>"
        '<author>Marc-Michel <idno type="isni">0000</idno></author>'
        "</titleStmt></fileDesc></teiHeader>"
        "<text><body><sp><speaker>A.</speaker><p>Oui.</p></sp></body></text></TEI>",
        encoding="utf-8",
    )
    (doc,), _ = read(tmp_path / "duo.tei")
    assert doc.meta["author"] == "Eugène Labiche, Marc-Michel"
    assert doc.text == "Duo\nEugène Labiche, Marc-Michel\n\nA : Oui."


@pytest.mark.parametrize(
    "speaker, expected",
    [
        ("ALCESTE.", ("ALCESTE", "")),
        ("Philinte :", ("PHILINTE", "")),
        ("M. JOURDAIN.", ("M. JOURDAIN", "")),
        ("ARGANTE, à part.", ("ARGANTE", "à part.")),
        ("L'AMIRAL, avec le ton ferme.", ("L'AMIRAL", "avec le ton ferme.")),
    ],
)
def test_split_speaker(speaker, expected):
    assert split_speaker(speaker) == expected


def test_malformed_xml_is_reported_with_its_line(tmp_path):
    (tmp_path / "a_casse.xml").write_text("<TEI>\n<text>\n<body>\n<p>texte</body>\n</text>\n</TEI>\n")
    (tmp_path / "b_sans_corps.xml").write_text("<TEI><teiHeader/></TEI>")
    (tmp_path / "c_bon.xml").write_bytes((FIXTURES / "eltec-roman.xml").read_bytes())
    docs, report = read(tmp_path)
    assert [d.id for d in docs] == ["c_bon"]
    assert messages(report) == [
        ("a_casse.xml", "malformed XML: mismatched tag", 4),
        ("b_sans_corps.xml", "no TEI <text><body> found", None),
    ]


def test_external_entities_are_never_resolved(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-CONTENT")
    (tmp_path / "xxe.xml").write_text(
        f'<?xml version="1.0"?>\n<!DOCTYPE TEI [<!ENTITY x SYSTEM "file://{secret}">]>\n'
        "<TEI><text><body><p>avant &x; après</p></body></text></TEI>"
    )
    docs, report = read(tmp_path / "xxe.xml")
    assert docs == [] and report.problems[0].message.startswith("malformed XML: undefined entity")


def test_tei_in_cp1252_without_declaration_and_with_a_declared_encoding(tmp_path):
    body = "<TEI><text><body><p>Un cœur d'été.</p></body></text></TEI>"
    (tmp_path / "a.xml").write_bytes(body.encode("cp1252"))
    declared = b'<?xml version="1.0" encoding="ISO-8859-1"?>'
    (tmp_path / "b.xml").write_bytes(declared + body.replace("œ", "oe").encode("latin-1"))
    docs, report = read(tmp_path)
    assert [d.text for d in docs] == ["Un cœur d'été.", "Un coeur d'été."]
    assert [f.encoding for f in report.files] == ["cp1252", "iso-8859-1"]


@settings(max_examples=40, deadline=None)
@given(
    speeches=st.lists(
        st.tuples(
            st.text(alphabet="ABCDÉÈLMNOPRSTU", min_size=2, max_size=10),
            st.lists(
                st.text(alphabet="abcdeéèàôœ ,;!?'«»—", min_size=1, max_size=30).filter(str.strip),
                min_size=1, max_size=4,
            ),
        ),
        min_size=1, max_size=5,
    )
)
def test_tei_speeches_property(speeches):
    """Whatever the names and verses, each speech renders as NAME : first verse, then its verses."""
    from xml.sax.saxutils import escape

    sps = "".join(
        f"<sp><speaker>{escape(name)}.</speaker>"
        + "".join(f"<l>  {escape(v)}\n </l>" for v in verses)
        + "</sp>"
        for name, verses in speeches
    )
    xml = f'<TEI xmlns="http://www.tei-c.org/ns/1.0"><text><body><div>{sps}</div></body></text></TEI>'
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.xml"
        path.write_text(xml, encoding="utf-8")
        (doc,), _ = read(path)
    expected = []
    for name, verses in speeches:
        lines = [" ".join(v.split()) for v in verses]
        lines = [line for line in lines if line]
        if lines:
            lines[0] = f"{name} : {lines[0]}"
            expected.extend(lines)
    assert doc.text == "\n".join(expected)


# -- JSONL and Parquet --------------------------------------------------------------------------


def test_jsonl_fields_and_every_bad_line(tmp_path):
    lines = [
        json.dumps({"contenu": "Premier texte.", "titre": "Un", "ident": "doc-1", "auteur": "Hugo",
                    "annee": 1831, "note": 4.5, "brouillon": False, "tags": ["a"], "vide": None}),
        "{pas du json",
        "[1, 2, 3]",
        json.dumps({"texte": "mauvais champ"}),
        json.dumps({"contenu": "   "}),
        json.dumps({"contenu": 42}),
        "",
        json.dumps({"contenu": "Sans id ni titre.", "kind": "poetry"}),
        "[" * 100_000,
    ]
    (tmp_path / "recs.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    fields = {"text_field": "contenu", "title_field": "titre", "id_field": "ident"}
    docs, report = read(tmp_path / "recs.jsonl", kind="legal", **fields)
    assert [(d.id, d.title, d.kind, d.text) for d in docs] == [
        ("doc-1", "Un", "legal", "Premier texte."),
        ("recs#8", "", "poetry", "Sans id ni titre."),
    ]
    meta = {"auteur": "Hugo", "annee": 1831, "note": 4.5, "brouillon": False, "encoding": "utf-8"}
    assert docs[0].meta == meta  # scalars only: no list, no null
    got = messages(report)
    assert got[0][1].startswith("invalid JSON (") and got[0][2] == 2
    assert got[1:5] == [
        ("recs.jsonl", "not a JSON object (a list)", 3),
        ("recs.jsonl", 'no "contenu" field', 4),
        ("recs.jsonl", '"contenu" field is empty', 5),
        ("recs.jsonl", '"contenu" field is not a string (it is int)', 6),
    ]
    assert got[5][1].startswith("invalid JSON") and got[5][2] == 9
    assert report.files[0].documents == 2 and report.files[0].problems == 6


def test_a_json_array_file_gets_a_hint(tmp_path):
    (tmp_path / "tout.json").write_text('[\n  {"text": "a"},\n  {"text": "b"}\n]\n')
    docs, report = read(tmp_path / "tout.json")
    assert docs == [] and "JSON array, not JSON Lines" in report.problems[0].message


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(st.text(max_size=40), st.binary(max_size=40)), max_size=8))
def test_jsonl_reader_never_crashes(tmp_path, lines):
    raw = [line.encode("utf-8") if isinstance(line, str) else line for line in lines]
    raw = [line.replace(b"\n", b" ") for line in raw]
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(b"\n".join(raw))
    docs, report = read(path)
    file_level = [p for p in report.problems if p.line is None]
    if file_level:  # empty or binary-looking: one problem for the file, no documents
        assert len(report.problems) == 1 and docs == []
    else:
        assert len(docs) + len(report.problems) == sum(1 for line in raw if line.strip())
    assert all(isinstance(d.text, str) and d.text.strip() for d in docs)


def _write_parquet(path, table):
    import pyarrow.parquet as pq

    pq.write_table(table, path, row_group_size=3)


def test_parquet_rows_are_streamed_with_fields_and_problems(tmp_path):
    import pyarrow as pa

    table = pa.table({
        "contenu": ["Un.", "", None, "Quatre.", "Cinq.", "Six.", "Sept."],
        "titre": ["T1", None, None, "T4", "T5", "T6", "T7"],
        "annee": [1800, 1801, 1802, 1803, 1804, 1805, 1806],
        "tags": [["x"], [], [], [], [], [], []],  # not a scalar: not in meta
    })
    _write_parquet(tmp_path / "t.parquet", table)
    docs, report = read(tmp_path / "t.parquet", text_field="contenu", title_field="titre")
    assert [(d.id, d.title, d.text) for d in docs] == [
        ("t#1", "T1", "Un."), ("t#4", "T4", "Quatre."), ("t#5", "T5", "Cinq."),
        ("t#6", "T6", "Six."), ("t#7", "T7", "Sept."),
    ]
    assert docs[0].meta == {"annee": 1800, "encoding": "utf-8"}
    assert messages(report) == [
        ("t.parquet", '"contenu" field is empty', 2),
        ("t.parquet", '"contenu" field is not a string (it is NoneType)', 3),
    ]
    assert (report.files[0].format, report.files[0].documents) == ("parquet", 5)


def test_parquet_missing_column_compressed_and_corrupt(tmp_path):
    import pyarrow as pa

    _write_parquet(tmp_path / "a.parquet", pa.table({"body": ["x"]}))
    buffer = io.BytesIO()
    _write_parquet(buffer, pa.table({"text": ["Un texte."]}))
    (tmp_path / "b.parquet.gz").write_bytes(gzip.compress(buffer.getvalue()))
    (tmp_path / "c.parquet").write_bytes(b"PAR1 not really parquet PAR1")
    (tmp_path / "d.dat").write_bytes(buffer.getvalue())  # recognised by its magic bytes
    docs, report = read(tmp_path)
    assert [d.source for d in docs] == [str(tmp_path / "b.parquet.gz"), str(tmp_path / "d.dat")]
    got = messages(report)
    assert got[0] == ("a.parquet", 'no "text" column (columns: body)', None)
    assert got[1][0] == "c.parquet" and got[1][1].startswith("unreadable Parquet file")


# -- Hugging Face datasets (offline, local folder) -------------------------------------------------


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network at all: offline flags set and sockets refusing to connect."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))

    def refuse(*args, **kwargs):
        raise OSError("network access attempted in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    if "datasets" in sys.modules:
        monkeypatch.setattr(sys.modules["datasets"].config, "HF_DATASETS_OFFLINE", True, raising=False)


def test_hf_local_folder_streaming(offline, tmp_path):
    pytest.importorskip("datasets")
    folder = tmp_path / "jeu"
    folder.mkdir()
    rows = [
        {"text": "Premier document.", "id": "x1", "source": "essai"},
        {"text": ""},
        {"text": "Troisième.", "title": "T"},
    ]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    report = Report(echo=lambda s: None)
    docs = list(read_source(SourceConfig(path=str(folder), format="hf", split="train"), report))
    assert [(d.id, d.title, d.text) for d in docs] == [
        ("x1", "", "Premier document."), ("jeu#3", "T", "Troisième."),
    ]
    assert docs[0].meta["source"] == "essai"
    assert [(p.message, p.line) for p in report.problems] == [('"text" field is empty', 2)]
    assert (report.files[0].format, report.files[0].documents) == ("hf", 2)
    limited = SourceConfig(path=str(folder), format="hf", limit=1)
    docs = list(read_source(limited, Report(echo=lambda s: None)))
    assert len(docs) == 1


def test_hf_errors_are_one_line(offline, tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    with pytest.raises(CausetteError, match="cannot open the Hugging Face dataset") as e:
        read_source(SourceConfig(path=str(tmp_path / "absent"), format="hf"), Report())
    assert "\n" not in str(e.value)
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if not installed
    with pytest.raises(CausetteError, match="pip install datasets"):
        read_source(SourceConfig(path="quelque/jeu", format="hf"), Report())


# -- guess_kind ----------------------------------------------------------------------------------


def test_guess_kind():
    assert guess_kind(PLAY) == "theatre"
    assert guess_kind(NOVEL * 3) == "prose"
    rendered = "\n".join(["ALCESTE : Laissez-moi.", "PHILINTE : Mais encor ?"] * 3)
    assert guess_kind(rendered) == "theatre"
    # chapter titles in capitals do not make a play: they never repeat
    chapters = "\n".join(f"{title}.\nIl marchait longtemps dans la forêt sombre." for title in
                         ["UNE VEILLÉE", "LE DÉPART", "LA ROUTE", "LE RETOUR", "II", "III"])
    assert guess_kind(chapters) == "prose"
    assert guess_kind("") == "prose"


# -- real data (skipped when ../shared/data is absent) -------------------------------------------


@pytest.mark.shared
def test_fredracor_plays_from_the_shared_archive():
    archive = SHARED_DATA / "pretrain" / "fredracor_tei.tar.xz"
    if not archive.is_file():
        pytest.skip(f"{archive} not available")
    docs, report = read(archive, limit=3)
    assert len(docs) == 3 and not report.problems
    assert report.files[0].documents == 3 and report.files[0].format == "tar"
    for doc in docs:
        assert doc.kind == "theatre" and doc.meta.get("author")
        assert len(re.findall(r"^[A-ZÀ-ÖØ-Þ][A-ZÀ-ÖØ-Þ'. -]* : \S", doc.text, re.M)) > 50
        for leak in ("CC BY-NC-SA", "wikidata", "DraCor", "Paul FIEVRE", "http", "isni"):
            assert leak not in doc.text, leak
        assert doc.source.startswith(f"{archive}:fredracor/tei/")


@pytest.mark.shared
def test_demo_corpus_kinds_are_guessed():
    demo = SHARED_DATA / "demo" / "demo_fr_pd.txt.gz"
    if not demo.is_file():
        pytest.skip(f"{demo} not available")
    docs, _ = read(demo, doc_separator="\n\n\n")
    assert len(docs) == 35
    assert [d.kind for d in docs] == ["prose", "theatre"] * 17 + ["prose"]
