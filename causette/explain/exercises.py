"""The exercises of docs/exercices.md and their checker: ``python -m causette.explain check EXERCICE FICHIER.py``.

The learner writes one function in a file of their own; :func:`check` imports that file, runs the
function on fixed inputs and compares each answer with what Causette's own code gives, in order:
the first difference is shown (which input, expected, got) with a hint, else « juste » with what
was compared. The reference is always the project's code (``train_bpe``, the model's attention,
``render_chat``, ``top_p_filter``), never a second copy, so the exercise cannot drift from it.

Each checker returns ``(ok, text)``; a file that cannot be imported, lacks the function or raises
is a :class:`CausetteError` (one line).
"""

from __future__ import annotations

import importlib.util
import math
import sys
import traceback
from pathlib import Path
from typing import Callable

import torch

from causette.errors import CausetteError
from causette.utils.lang import num, tr


class Verdict(str):
    """The text :func:`check` prints, with ``ok``: the command's exit code is 0 when True."""

    ok: bool = True


# ============================================================================== the learner's file


def load_function(path: str, name: str) -> Callable:
    """The function ``name`` of the learner's file ``path`` (imported as a fresh module)."""
    file = Path(path)
    if not file.is_file():
        raise CausetteError(tr(f"{path} : pas de tel fichier", f"{path}: no such file"))
    module_name = f"_causette_exercise_{abs(hash(str(file.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise CausetteError(tr(f"{path} : ce n'est pas un fichier Python", f"{path}: not a Python file"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(file.resolve().parent))  # as `python FICHIER.py`: its neighbours import
    try:
        spec.loader.exec_module(module)
    except BaseException as e:  # the learner's code: any error, even SystemExit, is one line
        if isinstance(e, KeyboardInterrupt):
            raise
        raise CausetteError(tr(f"{path} : l'import a échoué ({_where(e, file)})",
                               f"{path}: importing it failed ({_where(e, file)})")) from None
    finally:
        sys.modules.pop(module_name, None)
        sys.path.remove(str(file.resolve().parent))
    fn = getattr(module, name, None)
    if not callable(fn):
        raise CausetteError(tr(f"{path} : pas de fonction {name}(...) dans ce fichier",
                               f"{path}: no function {name}(...) in this file"))
    return _guarded(fn, file)


def _where(e: BaseException, file: Path) -> str:
    """``ValueError: message, ligne 12``: the error and the last line of the learner's file it went through."""
    line = None
    for frame in traceback.extract_tb(e.__traceback__):
        if Path(frame.filename).resolve() == file.resolve():
            line = frame.lineno
    if isinstance(e, SyntaxError) and e.lineno:
        line = e.lineno
    text = f"{type(e).__name__}: {e}".strip().rstrip(":").replace("\n", " ")
    return text + (tr(f", ligne {line}", f", line {line}") if line else "")


def _guarded(fn: Callable, file: Path) -> Callable:
    def call(*args, what: str = ""):
        try:
            return fn(*args)
        except KeyboardInterrupt:
            raise
        except BaseException as e:
            raise CausetteError(tr(f"{fn.__name__}({what}) a levé {_where(e, file)}",
                                   f"{fn.__name__}({what}) raised {_where(e, file)}")) from None

    return call


def _fail(what: str, expected: str, got: str, hint: str) -> tuple[bool, str]:
    return False, "\n".join([
        tr(f"différence : {what}", f"difference: {what}"),
        tr(f"  attendu : {expected}", f"  expected: {expected}"),
        tr(f"  obtenu  : {got}", f"  got:      {got}"),
        tr(f"indice : {hint}", f"hint: {hint}"),
    ])


def _ok(lines: list[str]) -> tuple[bool, str]:
    return True, "\n".join([tr("juste", "correct")] + [f"  {line}" for line in lines])


# ============================================================================== 1. BPE

BPE_PARAGRAPH = (
    "Le petit chat de la voisine dort sur le rebord de la fenêtre. Quand le soleil tourne, il se "
    "lève, s'étire et va dormir un peu plus loin, sur le tapis du salon. La voisine dit que son "
    "chat est le plus paresseux du quartier ; les enfants de l'école disent qu'il est le plus sage. "
    "Le dimanche, il regarde passer les vélos et les chiens, puis il retourne dormir.\n"
)
BPE_INPUTS = [  # ((French, English name), text, number of merges)
    (("le paragraphe", "the paragraph"), BPE_PARAGRAPH, 60),
    (("« aaaaaaa aaa »", "'aaaaaaa aaa'"), "aaaaaaa aaa", 10),
    (("« été été été »", "'été été été'"), "été été été", 10),
]


def reference_merges(text: str, num_merges: int) -> list[tuple[int, int]]:
    """Causette's merges for ``text``: GPT-4's pre-tokenisation, then :func:`train_bpe` (min_frequency 2)."""
    from causette.tokenizer.bpe import train_bpe
    from causette.tokenizer.pattern import GPT4_PATTERN
    from causette.tokenizer.train import count_chunks

    counts, _ = count_chunks([text], GPT4_PATTERN, [], workers=1)
    return train_bpe(counts, num_merges, min_frequency=2)


def _as_merges(value) -> list[tuple[int, int]] | None:
    try:
        out = [(int(a), int(b)) for a, b in value]
    except (TypeError, ValueError):
        return None
    return out


def check_bpe(train: Callable) -> tuple[bool, str]:
    from causette.tokenizer.bpe import BPETokenizer
    from causette.tokenizer.pattern import GPT4_PATTERN

    done = []
    for names, text, n in BPE_INPUTS:
        name = tr(*names)
        expected = reference_merges(text, n)
        got_raw = train(text, n, what=f"{name}, {n}")
        got = _as_merges(got_raw)
        if got is None:
            return _fail(tr(f"train({name}, {n}) doit rendre une liste de paires d'entiers",
                            f"train({name}, {n}) must return a list of pairs of ints"),
                         "[(101, 32), ...]", repr(got_raw)[:80],
                         tr("une fusion est un tuple (id gauche, id droit)", "a merge is a tuple (left id, right id)"))
        vocab = [bytes([b]) for b in range(256)]
        for k in range(max(len(expected), len(got))):
            e = expected[k] if k < len(expected) else None
            g = got[k] if k < len(got) else None
            if e != g:
                return _fail(tr(f"{name}, {n} fusions demandées : la fusion n° {k} (le token {256 + k})",
                                f"{name}, {n} merges asked: merge {k} (token {256 + k})"),
                             _show_merge(e, vocab), _show_merge(g, vocab), _bpe_hint(k, e, g, expected, len(got)))
            vocab.append(vocab[e[0]] + vocab[e[1]])
        tok_ref = BPETokenizer(expected, GPT4_PATTERN, {})
        ids = BPETokenizer(got, GPT4_PATTERN, {}).encode(text)
        assert ids == tok_ref.encode(text)  # same merges, same ids: what the merges are for
        done.append(tr(f"{name} : {len(expected)} fusions identiques, {len(ids)} tokens identiques "
                       f"({num(len(text.encode()), ',')} octets)",
                       f"{name}: {len(expected)} identical merges, {len(ids)} identical tokens "
                       f"({len(text.encode()):,} bytes)"))
    return _ok(done)


def _show_merge(m, vocab) -> str:
    if m is None:
        return tr("aucune (la liste s'arrête là)", "none (the list ends there)")
    a, b = m
    if not (0 <= a < len(vocab) and 0 <= b < len(vocab)):
        return tr(f"{m} (id inconnu à ce stade)", f"{m} (unknown id at this point)")
    return f"{m} = {vocab[a]!r} + {vocab[b]!r}"


def _bpe_hint(k, e, g, expected, n_got) -> str:
    if e is None:
        return tr("arrêtez-vous quand la paire la plus fréquente apparaît moins de 2 fois",
                  "stop when the most frequent pair occurs fewer than 2 times")
    if g is None:
        return tr(f"vous rendez {n_got} fusions : continuez tant qu'une paire apparaît au moins 2 fois "
                  "(ou que le nombre demandé n'est pas atteint)",
                  f"you return {n_got} merges: go on while a pair occurs at least 2 times "
                  "(or the number asked is not reached)")
    if k == 0 or g in expected:
        return tr("à égalité de fréquence, la paire la plus petite gagne : min des (a, b) par ordre de tuple ; "
                  "et comptez les paires à l'intérieur de chaque morceau du pré-découpage (GPT4_PATTERN), "
                  "pondérées par le nombre de fois où le morceau apparaît",
                  "on a tie in frequency the smallest pair wins: min of the (a, b) as tuples; and count "
                  "pairs inside each chunk of the pre-tokenisation (GPT4_PATTERN), weighted by how often "
                  "the chunk occurs")
    return tr("après une fusion, remplacez chaque occurrence de la paire de gauche à droite (« a a a » → "
              "« X a ») avant de recompter, et ne comptez jamais une paire à cheval sur deux morceaux",
              "after a merge, replace every occurrence of the pair left to right ('a a a' → 'X a') before "
              "counting again, and never count a pair across two chunks")


# ============================================================================== 2. attention

ATTENTION_SHAPES = [(1, 4), (5, 8), (9, 16)]  # (T, d) of random q, k, v


def check_attention(attention: Callable) -> tuple[bool, str]:
    import torch.nn.functional as F

    done = []
    g = torch.Generator().manual_seed(0)
    for T, d in ATTENTION_SHAPES:
        q, k, v = (torch.randn(T, d, generator=g) * 2 for _ in range(3))
        expected = F.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=True)[0]
        name = tr(f"q, k, v aléatoires de forme ({T}, {d})", f"random q, k, v of shape ({T}, {d})")
        got = attention(q.clone(), k.clone(), v.clone(), what=f"q, k, v ({T}, {d})")
        bad = _compare(expected, got, name, q, k, v)
        if bad:
            return bad
        done.append(tr(f"{name} : comme F.scaled_dot_product_attention(is_causal=True)",
                       f"{name}: same as F.scaled_dot_product_attention(is_causal=True)"))
    bad, line = _attention_on_the_model(attention)
    if bad:
        return bad
    return _ok(done + [line])


def _wrong_shape(expected, got, name, hint):
    """The failure when ``got`` is not a tensor of ``expected``'s shape, else None."""
    if isinstance(got, torch.Tensor) and got.shape == expected.shape:
        return None
    shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
    return _fail(tr(f"{name} : la forme", f"{name}: the shape"), str(tuple(expected.shape)), str(shape), hint)


def _compare(expected, got, name, q, k, v):
    bad = _wrong_shape(expected, got, name, tr("rendez un tenseur (T, d) : une ligne par requête, poids @ v",
                                                "return a (T, d) tensor: one row per query, weights @ v"))
    if bad:
        return bad
    got = got.detach().float()
    if torch.allclose(got, expected, atol=1e-4, rtol=1e-4):
        return None
    i, j = divmod(int((got - expected).abs().argmax()), expected.shape[1])
    return _fail(tr(f"{name} : la ligne {i} (requête {i}), colonne {j}", f"{name}: row {i} (query {i}), column {j}"),
                 num(float(expected[i, j]), ".4f"), num(float(got[i, j]), ".4f"), _attention_hint(got, q, k, v, i))


def _attention_hint(got, q, k, v, i) -> str:
    T, d = q.shape
    scores = q @ k.T
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    variants = {
        "no_mask": (scores / math.sqrt(d)).softmax(-1) @ v,
        "no_scale": scores.masked_fill(future, float("-inf")).softmax(-1) @ v,
        "wrong_side": (scores / math.sqrt(d)).masked_fill(future.T, float("-inf")).softmax(-1) @ v,
        "wrong_axis": (scores / math.sqrt(d)).masked_fill(future, float("-inf")).softmax(0).nan_to_num() @ v,
    }
    hints = {
        "no_mask": tr("vous n'appliquez pas le masque causal : la requête i ne doit voir que les clés j <= i "
                      "(mettez -inf au-dessus de la diagonale avant le softmax)",
                      "no causal mask: query i may only see keys j <= i (put -inf above the diagonal "
                      "before the softmax)"),
        "no_scale": tr(f"divisez les scores q·k par √d = √{d} avant le softmax",
                       f"divide the q·k scores by √d = √{d} before the softmax"),
        "wrong_side": tr("le masque cache le passé au lieu du futur : masquez j > i (triu(1)), pas j < i",
                         "the mask hides the past instead of the future: mask j > i (triu(1)), not j < i"),
        "wrong_axis": tr("le softmax se prend sur chaque ligne (sur les clés, dim=-1), pas sur les colonnes",
                         "the softmax runs over each row (over the keys, dim=-1), not over columns"),
    }
    for key, value in variants.items():
        if torch.allclose(got, value, atol=1e-4, rtol=1e-4):
            return hints[key]
    if i == 0:
        return tr("la requête 0 ne voit que la clé 0 : sa sortie est exactement v[0]",
                  "query 0 sees key 0 only: its output is exactly v[0]")
    return tr("scores = q @ k.T / √d, -inf où j > i, softmax sur chaque ligne, puis poids @ v",
              "scores = q @ k.T / √d, -inf where j > i, softmax over each row, then weights @ v")


def _attention_on_the_model(attention: Callable):
    """The learner's function in place of the fused kernel, head by head, in layer 0 of the demo model."""
    from causette.config import load_config
    from causette.explain.attention import heads_qkv
    from causette.explain.common import capture, demo_tokenizer, encode
    from causette.model.transformer import Transformer

    tok = demo_tokenizer()
    cfg = load_config("model/demo").model
    cfg.vocab_size = tok.vocab_size
    torch.manual_seed(0)
    model = Transformer(cfg).eval()
    text = "Le chat dort sur le lit."
    ids = encode(tok, text)
    attn = model.blocks[0].attn
    (x, rope, _cache), out = capture(attn, model, ids)
    H, hd, T = attn.n_head, attn.head_dim, len(ids)
    with torch.no_grad():
        q, k, v = heads_qkv(attn, x, rope)  # the model's own split, RoPE and key sharing
        heads = []
        for h in range(H):
            y = attention(q[0, h].clone(), k[0, h].clone(), v[0, h].clone(), what=tr(f"tête {h}", f"head {h}"))
            if not isinstance(y, torch.Tensor) or y.shape != (T, hd):
                return _compare(torch.zeros(T, hd), y, tr(f"tête {h} du modèle", f"model head {h}"),
                                q[0, h], k[0, h], v[0, h]), ""
            heads.append(y.float())
        y = attn.proj(torch.stack(heads, 1).reshape(1, T, H * hd))
    diff = float((y - out).abs().max())
    if diff > 1e-4:
        bad = _fail(tr(f"couche 0 du modèle de démo sur « {text} »", f"layer 0 of the demo model on '{text}'"),
                    tr("la sortie de l'attention du modèle", "the model's attention output"),
                    tr(f"un écart de {num(diff, '.1e')}", f"a difference of {diff:.1e}"),
                    tr("votre fonction reçoit q, k, v d'une tête (T, taille de tête) : ne supposez pas d = 8",
                       "your function gets one head's q, k, v (T, head size): do not assume d = 8"))
        return bad, ""
    return None, tr(f"couche 0 du modèle de démo (poids aléatoires) sur « {text} » : vos {H} têtes, recollées et "
                    f"projetées, donnent la sortie de l'attention fusionnée du modèle (|écart| max {num(diff, '.1e')})",
                    f"layer 0 of the demo model (random weights) on '{text}': your {H} heads, concatenated and "
                    f"projected, give the model's fused attention output (max |difference| {diff:.1e})")


# ============================================================================== 3. the SFT loss mask

MASK_CONVERSATIONS = [  # ((French, English name), messages, add_generation_prompt)
    (("un tour", "one turn"), [{"role": "user", "content": "Bonjour !"},
                 {"role": "assistant", "content": "Bonjour, que puis-je faire pour vous ?"}], False),
    (("avec un message système, deux tours", "a system message, two turns"),
     [{"role": "system", "content": "Tu es concis."},
      {"role": "user", "content": "Capitale de la France ?"},
      {"role": "assistant", "content": "Paris."},
      {"role": "user", "content": "Et de l'Italie ?"},
      {"role": "assistant", "content": "Rome."}], False),
    (("une réponse qui commence par un saut de ligne", "a reply starting with a line break"),
     [{"role": "user", "content": "Écris deux vers."},
      {"role": "assistant", "content": "\n\nLe vent se lève,\nil faut tenter de vivre."}], False),
    (("une réponse qui contient « <|im_end|> » comme texte", "a reply holding '<|im_end|>' as text"),
     [{"role": "user", "content": "Que veut dire <|im_end|> ?"},
      {"role": "assistant", "content": "Le texte <|im_end|> n'est ici que du texte."}], False),
    (("une question qui attend sa réponse (add_generation_prompt)", "a question awaiting its reply (add_generation_prompt)"),
     [{"role": "user", "content": "Quelle heure est-il ?"}], True),
]


def check_mask(mask: Callable) -> tuple[bool, str]:
    from causette.data.chat_template import render_chat
    from causette.explain.common import demo_tokenizer, label

    tok = demo_tokenizer()
    done = []
    for names, messages, gen in MASK_CONVERSATIONS:
        name = tr(*names)
        ids, expected = render_chat(tok, messages, add_generation_prompt=gen)
        got = mask(list(ids), tok, what=name)
        try:
            got = [int(m) for m in got]
        except (TypeError, ValueError):
            return _fail(tr(f"{name} : le type", f"{name}: the type"), tr("une liste de 0 et de 1", "a list of 0 and 1"),
                         repr(got)[:80], tr("rendez une liste d'entiers, un par id", "return a list of ints, one per id"))
        if len(got) != len(expected):
            return _fail(tr(f"{name} : la longueur", f"{name}: the length"), str(len(expected)), str(len(got)),
                         tr("un 0 ou un 1 par id, ni plus ni moins", "one 0 or 1 per id, no more, no less"))
        for i, (e, g) in enumerate(zip(expected, got)):
            if e != g:
                around = " ".join(("[" + label(tok, t) + "]") if j == i else label(tok, t)
                                  for j, t in enumerate(ids) if abs(j - i) <= 3)
                return _fail(tr(f"{name} : la position {i}, le token « {label(tok, ids[i])} » (…{around}…)",
                                f"{name}: position {i}, token '{label(tok, ids[i])}' (…{around}…)"),
                             str(e), str(g), _mask_hint(tok, ids, i, e))
        done.append(tr(f"{name} : {len(ids)} tokens, dont {sum(expected)} appris, comme render_chat",
                       f"{name}: {len(ids)} tokens, {sum(expected)} of them trained, as render_chat"))
    return _ok(done)


def _mask_hint(tok, ids, i, expected) -> str:
    from causette.data.chat_template import IM_END, IM_START

    start, end = tok.special_id(IM_START), tok.special_id(IM_END)
    token = ids[i]
    if token == end:
        return tr("le <|im_end|> qui clôt une réponse de l'assistant est appris (le modèle doit apprendre à "
                  "s'arrêter) ; celui des autres rôles ne l'est pas",
                  "the <|im_end|> closing an assistant reply is trained (the model must learn to stop); "
                  "those of other roles are not")
    if token in tok.special_ids or (i > 0 and ids[i - 1] == end):
        return tr("<|bos|>, <|im_start|> et le saut de ligne après <|im_end|> ne sont jamais appris",
                  "<|bos|>, <|im_start|> and the line break after <|im_end|> are never trained")
    # inside a turn: where does it start, and how many bytes before this token?
    s = max(j for j in range(i) if ids[j] == start)
    before = b"".join(tok.token_bytes(t) for t in ids[s + 1: i])
    if expected == 0 and not before.startswith(b"assistant\n"[: len(before)]):
        return tr("seules les réponses de l'assistant sont apprises, pas les messages user ni system",
                  "only the assistant's replies are trained, not user or system messages")
    if expected == 0:
        return tr("l'en-tête « assistant↵ » est donné, pas appris : ses tokens valent 0",
                  "the 'assistant↵' header is given, not learned: its tokens get 0")
    if len(before) < len(b"assistant\n"):
        return tr("ce token est à cheval sur l'en-tête et le contenu (« assistant↵ » et le contenu sont "
                  "encodés ensemble) : il contient des octets du contenu, il est donc appris. Comptez les "
                  "octets (tokenizer.token_bytes) plutôt que les tokens",
                  "this token straddles the header and the content ('assistant↵' and the content are encoded "
                  "together): it holds content bytes, so it is trained. Count bytes (tokenizer.token_bytes), "
                  "not tokens")
    return tr("tout le contenu d'une réponse de l'assistant est appris, jusqu'à son <|im_end|> (un "
              "« <|im_end|> » écrit dans le texte n'est que du texte : comparez les ids, pas le texte décodé)",
              "the whole content of an assistant reply is trained, up to its <|im_end|> (an '<|im_end|>' "
              "written in the text is only text: compare ids, not decoded text)")


# ============================================================================== 4. top-p

def _top_p_inputs() -> list[tuple[str, torch.Tensor, float]]:
    g = torch.Generator().manual_seed(0)
    inf = float("-inf")
    return [
        (tr("10 logits aléatoires, p = 0,9", "10 random logits, p = 0.9"), torch.randn(10, generator=g) * 2, 0.9),
        (tr("50 logits aléatoires, p = 0,5", "50 random logits, p = 0.5"), torch.randn(50, generator=g) * 3, 0.5),
        (tr("un lot (4, 20), p = 0,7", "a batch (4, 20), p = 0.7"), torch.randn(4, 20, generator=g), 0.7),
        (tr("p = 1 (tout garder)", "p = 1 (keep all)"), torch.randn(12, generator=g), 1.0),
        (tr("p minuscule (1e-6)", "tiny p (1e-6)"), torch.randn(12, generator=g), 1e-6),
        (tr("des ex aequo, p = 0,6", "ties, p = 0.6"), torch.tensor([1.0, 3.0, 3.0, 1.0, 0.0, 3.0]), 0.6),
        (tr("tout égal, p = 0,3", "all equal, p = 0.3"), torch.zeros(8), 0.3),
        (tr("déjà des -inf (après top-k), p = 0,9", "already -inf (after top-k), p = 0.9"),
         torch.tensor([inf, 1.0, 2.5, inf, 0.5, 2.0]), 0.9),
    ]


def check_top_p(top_p: Callable) -> tuple[bool, str]:
    from causette.inference.sampling import top_p_filter

    done = []
    for name, logits, p in _top_p_inputs():
        expected = top_p_filter(logits.clone(), p)
        got = top_p(logits.clone(), p, what=name)
        bad = _wrong_shape(expected, got, name, tr("rendez des logits de la même forme, -inf pour les tokens écartés",
                                                   "return logits of the same shape, -inf for the removed tokens"))
        if bad:
            return bad
        got = got.detach().float()
        kept_e, kept_g = torch.isfinite(expected), got > float("-inf")
        rows_e, rows_g = kept_e.reshape(-1, kept_e.shape[-1]), kept_g.reshape(-1, kept_g.shape[-1])
        for r in range(rows_e.shape[0]):
            if not torch.equal(rows_e[r], rows_g[r]):
                row = tr(f", ligne {r}", f", row {r}") if logits.dim() > 1 else ""
                probs = torch.softmax(logits.reshape(-1, logits.shape[-1])[r].float(), -1)
                return _fail(tr(f"{name}{row} : les tokens gardés", f"{name}{row}: the tokens kept"),
                             _kept(rows_e[r], probs), _kept(rows_g[r], probs),
                             _top_p_hint(rows_e[r], rows_g[r], probs, p))
        if not torch.equal(torch.where(kept_e, got, 0), torch.where(kept_e, expected, 0)):
            return _fail(tr(f"{name} : les valeurs gardées", f"{name}: the values kept"),
                         tr("les logits d'origine", "the original logits"), tr("d'autres valeurs", "other values"),
                         tr("ne changez pas les logits gardés (pas de softmax ni de renormalisation) : mettez "
                            "seulement -inf sur les autres",
                            "do not change the kept logits (no softmax, no renormalisation): only put -inf on "
                            "the others"))
        n = int(kept_e.sum())
        done.append(tr(f"{name} : {n} token{'s' if n > 1 else ''} gardé{'s' if n > 1 else ''} sur {kept_e.numel()}, "
                       "comme top_p_filter", f"{name}: {n} of {kept_e.numel()} tokens kept, as top_p_filter"))
    return _ok(done)


def _kept(mask: torch.Tensor, probs: torch.Tensor) -> str:
    idx = mask.nonzero().flatten().tolist()
    mass = float(probs[mask].sum())
    shown = ", ".join(map(str, idx[:12])) + (", …" if len(idx) > 12 else "")
    return tr(f"{len(idx)} token{'s' if len(idx) > 1 else ''} [{shown}], masse {num(mass, '.3f')}",
              f"{len(idx)} tokens [{shown}], mass {mass:.3f}")


def _top_p_hint(expected, got, probs, p) -> str:
    if got.sum() == 0:
        return tr("gardez toujours au moins le token le plus probable", "always keep at least the most probable token")
    if bool((got & ~expected).any()) and not bool((expected & ~got).any()):
        return tr("vous en gardez trop : arrêtez dès que la masse des tokens gardés atteint p (le token qui fait "
                  "franchir p est le dernier gardé)",
                  "you keep too many: stop as soon as the mass of the kept tokens reaches p (the token that "
                  "crosses p is the last one kept)")
    if bool((expected & ~got).any()) and not bool((got & ~expected).any()):
        return tr("il vous en manque : le token qui fait franchir p est gardé ; un token est gardé quand la masse "
                  "des tokens triés AVANT lui est encore < p",
                  "some are missing: the token that crosses p is kept; a token is kept when the mass of the "
                  "tokens sorted BEFORE it is still < p")
    return tr("triez par probabilité décroissante ; à égalité, le plus petit indice passe d'abord "
              "(torch.sort(..., descending=True, stable=True))",
              "sort by decreasing probability; on a tie the smallest index comes first "
              "(torch.sort(..., descending=True, stable=True))")


# ============================================================================== the command

EXERCISES = {  # name: (function the learner writes, checker, its signature in the docs)
    "bpe": ("train", check_bpe),
    "attention": ("attention", check_attention),
    "masque": ("mask", check_mask),
    "top-p": ("top_p", check_top_p),
}
ALIASES = {"mask": "masque", "top_p": "top-p", "topp": "top-p"}


def check(exercise: str, path: str) -> Verdict:
    """Run the checker of ``exercise`` on the learner's file ``path``: « juste » or the first difference."""
    exercise = ALIASES.get(exercise, exercise)
    if exercise not in EXERCISES:
        raise CausetteError(tr(f"exercice inconnu {exercise!r} : {', '.join(EXERCISES)}",
                               f"unknown exercise {exercise!r}: {', '.join(EXERCISES)}"))
    name, checker = EXERCISES[exercise]
    fn = load_function(path, name)
    ok, text = checker(fn)
    verdict = Verdict(text)
    verdict.ok = ok
    return verdict
