"""``causette import hf``: a small random ``LlamaForCausalLM`` saved by transformers, with a
byte-level BPE trained by Hugging Face ``tokenizers``, becomes our checkpoint: same token cuts
(renumbered), same logits, same greedy generation. A model exported by ``causette export hf``
comes back identical. Unsupported models are refused with a reason.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
import torch

from causette.checkpoint.load import load_checkpoint
from causette.cli import main as cli_main
from causette.errors import CausetteError
from causette.export.importer import import_hf
from causette.inference.engine import Engine
from causette.inference.sampling import SamplingParams
from causette.tokenizer.io import byte_to_unicode

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

ROOT = Path(__file__).resolve().parents[1]
ATOL = 1e-4
TEXTS = [
    "Le petit chat dort près de la fenêtre, et l'homme qu'il regarde rêve.",
    "« Qu'est-ce que c'est ? » demanda-t-elle ; il répondit : 1789 !\n\nÀ demain, œuvre.",
]


def french_text(chars: int = 20000) -> str:
    return gzip.decompress((ROOT / "data" / "demo_fr_pd.txt.gz").read_bytes()).decode("utf-8")[:chars]


def hf_bpe_tokenizer():
    """A GPT-2-style byte-level BPE trained by ``tokenizers`` (its own id order: specials, then
    the alphabet in its order, then merges)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=500,
        special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator([french_text()], trainer)
    return tk


@pytest.fixture(scope="module")
def hf_model_dir(tmp_path_factory):
    os.environ["HF_HUB_OFFLINE"] = "1"
    path = tmp_path_factory.mktemp("hf") / "llama"
    tk = hf_bpe_tokenizer()
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    fast.save_pretrained(path)
    cfg = transformers.LlamaConfig(
        vocab_size=tk.get_vocab_size(),
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        initializer_range=0.3,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
    )
    cfg.rope_parameters = {"rope_type": "default", "rope_theta": 5000.0}
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.uniform_(0.5, 1.5)
    model.save_pretrained(path)
    return path, model, tk


@pytest.fixture(scope="module")
def imported(hf_model_dir, tmp_path_factory):
    path, _, _ = hf_model_dir
    out = tmp_path_factory.mktemp("imp") / "ckpt"
    assert cli_main(["import", "hf", str(path), str(out)]) == 0
    return load_checkpoint(out, device="cpu", precision="fp32")


def their_id_of(tk, tok) -> dict[int, int]:
    """Our id → their id, from the token strings (specials by the documented rules)."""
    char = byte_to_unicode()
    vocab = tk.get_vocab()
    out = {i: vocab["".join(char[b] for b in tok.vocab[i])] for i in range(len(tok.vocab))}
    out[tok.bos_id] = vocab["<s>"]
    out[tok.end_id] = vocab["</s>"]
    out[tok.pad_id] = vocab["<pad>"]
    return out


def test_import_gives_same_token_cuts(imported, hf_model_dir):
    _, _, tk = hf_model_dir
    tok = imported.tokenizer
    assert imported.stage == "pretrain"
    assert set(tok.special_tokens) == {
        "<|bos|>",
        "<|pad|>",
        "<|im_start|>",
        "<|im_end|>",
    }
    ours_to_theirs = their_id_of(tk, tok)
    for text in TEXTS + [french_text(30000)[20000:]]:
        assert [ours_to_theirs[i] for i in tok.encode(text)] == tk.encode(text).ids
        assert tok.decode(tok.encode(text)) == text


def test_import_gives_same_logits_and_greedy_generation(imported, hf_model_dir):
    _, hf, tk = hf_model_dir
    model, tok = imported.model, imported.tokenizer
    cfg = model.cfg
    assert (cfg.n_kv_head, cfg.mlp_hidden, cfg.rope_theta, cfg.norm_eps, cfg.tie_embeddings) == (
        2,
        96,
        5000.0,
        1e-6,
        False,
    )
    mapping = their_id_of(tk, tok)
    ids = tok.encode(TEXTS[0] + TEXTS[1])[:64]
    with torch.no_grad():
        ours = model(torch.tensor([ids]))[0][0]
        theirs = hf(torch.tensor([[mapping[i] for i in ids]])).logits[0]
    cols = sorted(mapping)
    assert theirs.abs().max() > 0.1
    torch.testing.assert_close(ours[:, cols], theirs[:, [mapping[c] for c in cols]], atol=ATOL, rtol=0)

    prompt = tok.encode(TEXTS[0])[:10]
    specials = {mapping[i] for i in tok.special_ids if i in mapping}
    with torch.no_grad():
        gen = hf.generate(torch.tensor([[mapping[i] for i in prompt]]), max_new_tokens=20, do_sample=False)
    their_new = gen[0, len(prompt) :].tolist()
    cut = next((k for k, t in enumerate(their_new) if t in specials), len(their_new))
    params = SamplingParams(temperature=0.0, max_new_tokens=20, stop_token_ids=tuple(sorted(tok.special_ids)))
    [g] = Engine(model, tok).generate([prompt], params)
    assert [mapping[i] for i in g.token_ids] == their_new[:cut]


def test_round_trip_through_our_export(tmp_path):
    """export hf → import hf gives back our tokenizer, weights and stage."""
    from causette.tokenizer import train_tokenizer
    from causette.tokenizer.config import TokenizerConfig
    from tests.test_export import FRENCH, make_checkpoint

    tok = train_tokenizer(TokenizerConfig(vocab_size=400, workers=1), [french_text(8000)])
    model = make_checkpoint(tmp_path / "ckpt", tok, overrides=["model.n_kv_head=2"])
    assert cli_main(["export", "hf", str(tmp_path / "ckpt"), str(tmp_path / "hf")]) == 0
    result = import_hf(tmp_path / "hf", tmp_path / "back")
    assert result.stage == "sft" and not result.notes
    back = load_checkpoint(tmp_path / "back", device="cpu", precision="fp32")
    assert back.tokenizer.to_dict() == tok.to_dict()
    ids = torch.tensor([tok.encode(FRENCH[1])[:64]])
    with torch.no_grad():
        torch.testing.assert_close(back.model(ids)[0], model(ids)[0], atol=0, rtol=0)


def test_import_refuses_unsupported_models(hf_model_dir, tmp_path):
    import shutil

    path, _, _ = hf_model_dir
    bad = tmp_path / "bad"
    shutil.copytree(path, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0}
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CausetteError, match="RoPE scaling"):
        import_hf(bad, tmp_path / "o1")

    shutil.copy(path / "config.json", bad / "config.json")
    tj = json.loads((bad / "tokenizer.json").read_text())
    tj["model"] = {"type": "Unigram", "vocab": [["a", 0.0]], "unk_id": 0}
    (bad / "tokenizer.json").write_text(json.dumps(tj))
    with pytest.raises(CausetteError, match="byte-level BPE only"):
        import_hf(bad, tmp_path / "o2")
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_imported_model_fine_tunes_with_lora_and_chats(imported, tmp_path):
    """`causette sft --base OUT` (LoRA) runs on an imported checkpoint, and the result chats."""
    from causette.data.chat_template import render_chat

    data = tmp_path / "chats.jsonl"
    chats = [("Bonjour !", "Bonjour."), ("Qui a écrit Le Cid ?", "Corneille."), ("Merci !", "Avec plaisir !")]
    data.write_text(
        "".join(
            json.dumps(
                {"messages": [{"role": "user", "content": u}, {"role": "assistant", "content": a}]},
                ensure_ascii=False,
            )
            + "\n"
            for u, a in chats * 2
        ),
        encoding="utf-8",
    )
    sets = [
        f"run.dir={tmp_path}",
        f"sft.data=[{data}]",
        "sft.val_fraction=0",
        "sft.train.device=cpu",
        "sft.train.precision=fp32",
        "sft.train.batch_size=2",
        "sft.train.max_steps=3",
        "sft.train.warmup_steps=1",
        "sft.train.eval_every=0",
        "sft.train.ckpt_every=3",
        "sft.train.tensorboard=false",
        "sft.eval_answers=0",
    ]
    args = [a for s in sets for a in ("--set", s)]
    assert (
        cli_main(
            ["sft", "--base", str(imported.path), "--lora-r", "2", "--no-progress", "--name", "imp", *args]
        )
        == 0
    )
    chat = load_checkpoint(tmp_path / "imp" / "sft", device="cpu", precision="fp32")
    assert chat.is_chat_model
    prompt, _ = render_chat(
        chat.tokenizer, [{"role": "user", "content": "Bonjour !"}], add_generation_prompt=True
    )
    params = SamplingParams(
        temperature=0.0, max_new_tokens=5, stop_token_ids=tuple(sorted(chat.tokenizer.special_ids))
    )
    [g] = Engine(chat.model, chat.tokenizer).generate([prompt], params)
    assert g.finish_reason in ("stop_token", "length")
