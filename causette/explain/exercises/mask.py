"""Exercise 3: the SFT loss mask, checked against ``render_chat``'s."""

from __future__ import annotations

from typing import Callable

from causette.data.chat_template import IM_END, IM_START, render_chat
from causette.explain.common import demo_tokenizer, label
from causette.explain.exercises.common import _fail, _ok
from causette.utils.lang import tr

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
