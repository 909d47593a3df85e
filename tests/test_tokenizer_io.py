"""Tokenizer files, bad input, the Hugging Face export and the `causette tokenizer` commands."""

from __future__ import annotations

import argparse
import gzip
import json
import sys

import pytest
import tokenizers

from causette.config import load_config
from causette.errors import CausetteError, ConfigError
from causette.tokenizer import BPETokenizer, CharTokenizer, load_tokenizer, train_tokenizer
from causette.tokenizer.config import TokenizerConfig
from causette.tokenizer.io import byte_to_unicode, save_tokenizer

TEXT = (
    "Il était une fois, dans un village de Provence, une bergère qui s'appelait Jeanne. "
    "« Qu'est-ce que tu fais là ? » lui demanda-t-on un jour. Elle répondit : « J'attends l'été. »\n"
) * 40


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    out = tmp_path_factory.mktemp("tok")
    tok = train_tokenizer(TokenizerConfig(vocab_size=380), [TEXT], out_dir=out)
    return tok, out


# ------------------------------------------------------------------------------ our file


def test_save_and_load_round_trip(saved):
    tok, out = saved
    data = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
    assert data["format"] == "causette-tokenizer" and data["version"] == 1 and data["type"] == "bpe"
    assert data["vocab_size"] == 380 and data["pattern_name"] == "gpt4"
    assert data["merges"] == [list(m) for m in tok.merges]
    assert data["special_tokens"]["<|bos|>"] == 256 + len(tok.merges)
    again = load_tokenizer(out)  # a folder, or the file itself
    assert isinstance(again, BPETokenizer) and again.merges == tok.merges
    assert load_tokenizer(out / "tokenizer.json").hash == tok.hash
    assert again.encode(TEXT) == tok.encode(TEXT)


def test_char_tokenizer_file(tmp_path):
    tok = train_tokenizer(TokenizerConfig(type="char", vocab_size=400), [TEXT], out_dir=tmp_path)
    assert not (tmp_path / "hf").exists()  # no Hugging Face export for the char tokenizer
    again = load_tokenizer(tmp_path)
    assert isinstance(again, CharTokenizer) and again.chars == tok.chars
    assert again.decode(again.encode("Été 😀")) == "Été 😀"


def write_variant(tmp_path, saved, **changes) -> str:
    data = json.loads((saved[1] / "tokenizer.json").read_text(encoding="utf-8"))
    data.update(changes)
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_bad_tokenizer_files_give_one_line_errors(tmp_path, saved):
    def error(path) -> str:
        with pytest.raises(CausetteError) as e:
            load_tokenizer(path)
        assert "\n" not in str(e.value)
        return str(e.value)

    assert (
        error(tmp_path / "nothing")
        == f"{tmp_path / 'nothing'}: no tokenizer here (run `causette tokenizer train` first)"
    )
    bad = tmp_path / "latin1.json"
    bad.write_bytes('{"format": "été"}'.encode("latin-1"))  # é is byte E9 in Latin-1
    assert error(bad) == f"{bad}: not a tokenizer file (not UTF-8 text: byte 12)"
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": ', encoding="utf-8")
    assert error(broken).startswith(f"{broken}: not a tokenizer file (invalid JSON at line 1")
    path = write_variant(tmp_path, saved, version=2)
    assert error(path) == (
        f"{path}: tokenizer format version 2, but this Causette reads version 1"
        " (retrain it with `causette tokenizer train`)"
    )
    path = write_variant(tmp_path, saved, format="other")
    assert error(path) == f'{path}: not a Causette tokenizer file (no "format": "causette-tokenizer")'
    assert "this is a Hugging Face tokenizer.json" in error(saved[1] / "hf" / "tokenizer.json")
    path = write_variant(tmp_path, saved, merges="oops")
    assert error(path) == f"{path}: field 'merges' must be a list, got str"
    path = write_variant(tmp_path, saved, merges=[[1, 2], [3]])
    assert error(path) == f"{path}: 'merges' must be a list of [id, id] pairs"
    path = write_variant(tmp_path, saved, merges=[[1, 2], [9999, 2]])
    assert error(path).startswith(f"{path}: corrupt tokenizer (merge 1 refers to token ids not created yet")
    path = write_variant(tmp_path, saved, type="wordpiece")
    assert error(path) == f"{path}: unknown tokenizer type 'wordpiece' (expected 'bpe' or 'char')"
    path = write_variant(tmp_path, saved, vocab_size=123)
    assert error(path) == f"{path}: says vocab_size 123 but holds 380 tokens"
    data = json.loads((saved[1] / "tokenizer.json").read_text(encoding="utf-8"))
    del data["pattern"]
    (tmp_path / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    assert error(tmp_path) == f"{tmp_path / 'tokenizer.json'}: missing field 'pattern'"


def test_writes_are_atomic(tmp_path, saved, monkeypatch):
    import causette.tokenizer.io as tio

    tok, _ = saved
    save_tokenizer(tok, tmp_path)
    before = (tmp_path / "tokenizer.json").read_bytes()

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tio, "_dump_with_one_item_per_line", crash)
    bigger = train_tokenizer(TokenizerConfig(vocab_size=390), [TEXT])
    with pytest.raises(RuntimeError):
        save_tokenizer(bigger, tmp_path)
    assert (tmp_path / "tokenizer.json").read_bytes() == before  # the old file, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf", "tokenizer.json"]  # no temp file left


# ------------------------------------------------------------------------------ bad training input


def test_empty_corpus_is_a_clear_error():
    for kind in ("bpe", "char"):
        with pytest.raises(CausetteError, match="^no text to train the tokenizer on: the corpus is empty$"):
            train_tokenizer(TokenizerConfig(type=kind), ["", ""])


def test_vocab_size_too_small_is_a_config_error():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["tokenizer.vocab_size=200"])
    assert str(e.value) == (
        "--set tokenizer.vocab_size=200: tokenizer.vocab_size 200 is too small:"
        " 256 byte tokens + 32 special slots need at least 288"
    )
    with pytest.raises(
        ValueError, match="special_slots \\(3\\) is smaller than the number of special tokens"
    ):
        TokenizerConfig(special_slots=3).validate()
    with pytest.raises(ValueError, match="neither a known name nor a valid regex"):
        TokenizerConfig(pattern="([a-z").validate()
    cfg = TokenizerConfig(vocab_size=288)
    cfg.validate()  # exactly the minimum: bytes and specials, no merge
    assert cfg.num_merges == 0


def test_bad_pattern_is_caught_before_training():
    with pytest.raises(CausetteError, match="drops characters"):
        train_tokenizer(TokenizerConfig(pattern=r"\p{L}+"), [TEXT])


# ------------------------------------------------------------------------------ Hugging Face export


def test_byte_level_alphabet():
    mapping = byte_to_unicode()
    assert len(set(mapping.values())) == 256
    assert mapping[ord("a")] == "a" and mapping[0x20] == "Ġ" and mapping[0x0A] == "Ċ"
    assert mapping[0xC3] == "Ã" and mapping[0xA9] == "©"
    assert set(mapping.values()) == set(tokenizers.pre_tokenizers.ByteLevel.alphabet())


def test_hf_export_loads_and_matches(saved):
    tok, out = saved
    hf = tokenizers.Tokenizer.from_file(str(out / "hf" / "tokenizer.json"))
    assert hf.get_vocab_size() == tok.vocab_size
    assert hf.token_to_id("<|im_start|>") == tok.special_tokens["<|im_start|>"]
    text = "Qu'est-ce que c'est ? <|im_start|> l'été jusqu'à 2024"
    assert hf.encode(text).ids == tok.encode(text, allowed_special="all")
    hf.encode_special_tokens = True
    assert hf.encode(text).ids == tok.encode(text)
    assert hf.decode(tok.encode(text)) == text


# ------------------------------------------------------------------------------ the commands


def run_cli(argv: list[str]) -> int:
    """`causette ...` in-process (registers the tokenizer commands if the front does not yet)."""
    from causette import cli

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "tokenizer" not in sub.choices:
        from causette.tokenizer import cli as tokenizer_cli

        tokenizer_cli.register(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CausetteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def make_corpus(folder, texts_train, texts_val):
    folder.mkdir(parents=True)
    texts = texts_train + texts_val
    docs = [
        {"id": f"d{k}", "text": t, "source": "test", "title": "", "kind": "prose"}
        for k, t in enumerate(texts)
    ]
    with gzip.open(folder / "docs.jsonl.gz", "wt", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    split = {
        "train": [d["id"] for d in docs[: len(texts_train)]],
        "val": [d["id"] for d in docs[len(texts_train) :]],
    }
    (folder / "manifest.json").write_text(json.dumps({"split": split}), encoding="utf-8")


def test_cli_train_and_stats_on_a_corpus(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    make_corpus(
        tmp_path / "runs" / "essai" / "corpus", [TEXT, TEXT.upper()], ["Jeanne attend l'été, dit-on."]
    )
    code = run_cli(["tokenizer", "train", "--name", "essai", "--set", "tokenizer.vocab_size=420"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("tokenizer: 420 tokens (256 bytes + 132 merges + 32 specials) in ")
    assert "bytes/token on val → runs/essai/tokenizer/tokenizer.json" in out
    tok = load_tokenizer(tmp_path / "runs" / "essai" / "tokenizer")
    assert tok.metadata["trained_on"] == "runs/essai/corpus (train split)"
    assert (tmp_path / "runs" / "essai" / "tokenizer" / "hf" / "tokenizer.json").is_file()

    assert run_cli(["tokenizer", "stats", "--name", "essai", "--color", "never"]) == 0
    report = capsys.readouterr().out
    assert "bytes per token: " in report and "vocabulary usage: " in report
    from causette.tokenizer.stats import SAMPLE_SENTENCES, segment

    first = segment(tok, SAMPLE_SENTENCES[0])
    assert f"[{len(first):3d} tokens] " + "|".join(first) in report
    assert "\x1b[" not in report
    assert run_cli(["tokenizer", "stats", "--name", "essai", "--color", "always"]) == 0
    assert "\x1b[48;5;" in capsys.readouterr().out


def test_cli_train_on_text_files(tmp_path, capsys):
    (tmp_path / "a.txt").write_text(TEXT, encoding="utf-8")
    (tmp_path / "b.txt.gz").write_bytes(gzip.compress(TEXT.lower().encode("utf-8")))
    out = tmp_path / "tok"
    argv = ["tokenizer", "train", str(tmp_path / "a.txt"), str(tmp_path / "b.txt.gz"), "--out", str(out)]
    assert run_cli(argv + ["--set", "tokenizer.vocab_size=300"]) == 0
    assert load_tokenizer(out).vocab_size == 300
    assert run_cli(argv + ["--set", "tokenizer.type=char"]) == 0
    assert isinstance(load_tokenizer(out), CharTokenizer)
    capsys.readouterr()


@pytest.mark.parametrize(
    "argv, message",
    [
        ("tokenizer train {tmp}/empty.txt --out {tmp}/o",
         "error: no text to train the tokenizer on: {tmp}/empty.txt is empty"),
        ("tokenizer train {tmp}/latin1.txt --out {tmp}/o",
         "error: {tmp}/latin1.txt: not UTF-8 text (invalid byte 0xe9 at offset 0)"),
        ("tokenizer train {tmp}/empty.txt --set tokenizer.vocab_size=100",
         "error: --set tokenizer.vocab_size=100: tokenizer.vocab_size 100 is too small: 256 byte tokens"
         " + 32 special slots need at least 288"),
        ("tokenizer train --corpus {tmp}/nope",
         "error: {tmp}/nope/manifest.json: no corpus manifest here (run `causette corpus build` first)"),
        ("tokenizer stats --tokenizer {tmp}/nope {tmp}/x.txt",
         "error: {tmp}/nope: no tokenizer here (run `causette tokenizer train` first)"),
    ],
)  # fmt: skip
def test_cli_errors_are_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("été".encode("latin-1"))
    assert run_cli(argv.format(tmp=tmp_path).split()) == 1
    err = capsys.readouterr().err
    assert err == message.format(tmp=tmp_path) + "\n"
