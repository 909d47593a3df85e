"""The demo instruction set (``data/sft_demo.jsonl.gz``), generated from the demo corpus.

Why generated: the French instruction data we could find (OASST1-fr as extracted by Vigogne,
the Vigogne seed tasks) is licensed CC BY-NC 4.0, which an MIT project should not ship as its
default. The shipped demo corpus (``data/demo_fr_pd.txt.gz``) is public domain, so questions
*about it* — who wrote a work, who speaks in a play, how a novel begins, which verse follows
another — can be written by a program, with answers read from the text itself. Add a few dozen
small-talk exchanges written by hand for this project (``data/sft_smalltalk.jsonl``: add your
own) and a tiny model has formats simple
enough to learn in minutes: it learns to answer, in French, and to stop.

``causette sft convert --demo`` rebuilds the file; :func:`build_demo` is deterministic (a
seeded RNG, a fixed order, gzip without timestamp), so the same corpus gives the same bytes
(tests/test_sft.py checks the shipped file).
"""

from __future__ import annotations

import gzip
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from causette.utils.paths import DEMO_CORPUS, SMALL_TALK

DEMO_SEED = 2024

# Title line of each work in the corpus → (title as written in French, author, kind).
# Spelled by hand: the corpus' title lines are in capitals and its author lines vary in form.
NOVEL, PLAY = "roman", "pièce"
WORKS = {
    "UNE VIE": ("Une vie", "Guy de Maupassant", NOVEL),
    "LE MISANTHROPE": ("Le Misanthrope", "Molière", PLAY),
    "LE SECRET DE WILHELM STORITZ": ("Le Secret de Wilhelm Storitz", "Jules Verne", NOVEL),
    "LE TARTUFFE": ("Le Tartuffe", "Molière", PLAY),
    "SALAMMBÔ": ("Salammbô", "Gustave Flaubert", NOVEL),
    "L'AVARE": ("L'Avare", "Molière", PLAY),
    "LE PETIT CHOSE": ("Le Petit Chose", "Alphonse Daudet", NOVEL),
    "LE MALADE IMAGINAIRE": ("Le Malade imaginaire", "Molière", PLAY),
    "LE DERNIER AMOUR": ("Le Dernier Amour", "George Sand", NOVEL),
    "PHÈDRE (1697)": ("Phèdre", "Jean Racine", PLAY),
    "REINE MARGOT": ("La Reine Margot", "Alexandre Dumas", NOVEL),
    "ANDROMAQUE": ("Andromaque", "Jean Racine", PLAY),
    "ALBERT SAVARUS": ("Albert Savarus", "Honoré de Balzac", NOVEL),
    "LE CID": ("Le Cid", "Pierre Corneille", PLAY),
    "813 (HUIT-CENT-TREIZE)": ("813", "Maurice Leblanc", NOVEL),
    "L'ILLUSION COMIQUE": ("L'Illusion comique", "Pierre Corneille", PLAY),
    "LA REINE DU SABBAT": ("La Reine du Sabbat", "Gaston Leroux", NOVEL),
    "LE JEU DE L'AMOUR ET DU HASARD": ("Le Jeu de l'amour et du hasard", "Marivaux", PLAY),
    "LES DIEUX ONT SOIF: ÉDITION ELTEC": ("Les dieux ont soif", "Anatole France", NOVEL),
    "LA DOUBLE INCONSTANCE": ("La Double Inconstance", "Marivaux", PLAY),
    "MON FRÈRE YVES": ("Mon frère Yves", "Pierre Loti", NOVEL),
    "LE BARBIER DE SÉVILLE OU LA PRÉCAUTION INUTILE": ("Le Barbier de Séville", "Beaumarchais", PLAY),
    "DU CÔTÉ DE CHEZ SWANN": ("Du côté de chez Swann", "Marcel Proust", NOVEL),
    "RUY BLAS": ("Ruy Blas", "Victor Hugo", PLAY),
    "LES PRINCESSES D'AMOUR : COURTISANES JAPONAISES": ("Les Princesses d'amour", "Judith Gautier", NOVEL),
    "UBU ROI": ("Ubu roi", "Alfred Jarry", PLAY),
    "LE CAPTAIN CAP": ("Le Captain Cap", "Alphonse Allais", NOVEL),
    "L'OURS": ("L'Ours", "Georges Courteline", PLAY),
    "ROMAIN KALBRIS": ("Romain Kalbris", "Hector Malot", NOVEL),
    "LES DEUX TIMIDES": ("Les Deux Timides", "Eugène Labiche", PLAY),
    "MARIE-CLAIRE": ("Marie-Claire", "Marguerite Audoux", NOVEL),
    "AMOUR ET PIANO": ("Amour et Piano", "Georges Feydeau", PLAY),
    "MADAME THÉRÈSE, OU LES VOLONTAIRES DE 92": ("Madame Thérèse", "Erckmann-Chatrian", NOVEL),
    "CRISPIN UN RIVAL DE SON MAITRE": ("Crispin rival de son maître", "Alain-René Lesage", PLAY),
    "MONSIEUR LECOQ": ("Monsieur Lecoq", "Émile Gaboriau", NOVEL),
}
# The plays written in verse (the others are in prose, songs aside).
VERSE_PLAYS = {"Le Misanthrope", "Le Tartuffe", "Phèdre", "Andromaque", "Le Cid", "L'Illusion comique", "Ruy Blas"}

# Several phrasings of each question, one form of each answer: the model must learn that
# different wordings ask the same thing, and the answers stay easy to score.
ASK_AUTHOR = ["Qui a écrit « {t} » ?", "Quel est l'auteur de « {t} » ?", "De qui est « {t} » ?",
              "Qui est l'auteur de « {t} » ?", "« {t} », c'est de qui ?"]
ASK_KIND = ["« {t} » est-il un roman ou une pièce de théâtre ?", "« {t} », c'est un roman ou une pièce ?"]
ASK_WORKS = ["Cite une œuvre {de_a}.", "Qu'a écrit {a} ?", "Quelles œuvres {de_a} connais-tu ?"]
ASK_CAST = ["Quels sont les personnages principaux de « {t} » ?", "Qui sont les personnages de « {t} » ?",
            "Cite des personnages de « {t} »."]
ASK_ROLE = ["Dans quelle pièce trouve-t-on le personnage de {c} ?", "{c} est un personnage de quelle pièce ?"]
ASK_START = ["Quelle est la première phrase de « {t} » ?", "Comment commence « {t} » ?",
             "Cite le début de « {t} »."]
ASK_VERSE = ["Continue ce vers de « {t} » : {v}", "Quel vers suit celui-ci dans « {t} » ? {v}",
             "Dans « {t} », quel vers vient après celui-ci ? {v}"]
ASK_SPEAKER = ["Dans « {t} », qui dit : « {v} » ?", "Qui prononce cette réplique de « {t} » : « {v} » ?"]

_SPEAKER = re.compile(r"([A-ZÀ-Ý][A-ZÀ-Ý' \-]+?)\s*(?:,[^\n]*)?\.?")
_NOT_NAMES = {"TOUS", "ENSEMBLE", "ACTE", "SCÈNE", "LES AUTRES"}
_ABBREVIATIONS = ("M.", "MM.", "Mme.", "Mlle.", "Dr.", "St.")


@dataclass
class Work:
    title: str
    author: str
    kind: str
    text: str
    speeches: list[tuple[str, list[str]]] = field(default_factory=list)  # (speaker, lines), plays only

    @property
    def described(self) -> str:
        what = "une pièce de théâtre" if self.kind == PLAY else "un roman"
        return f"{what} {de(self.author)}"


def de(name: str) -> str:
    """« de Molière », « d'Alphonse Daudet » (elision before a vowel or a mute h)."""
    return f"d'{name}" if name[0] in "AEIOUYÀÂÉÈÊÎÔH" else f"de {name}"


def listing(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " et " + items[-1]


def read_works(corpus: Path = DEMO_CORPUS) -> list[Work]:
    """The works of the demo corpus, in corpus order; plays split into speeches."""
    works = []
    for doc in gzip.open(corpus, "rt", encoding="utf-8").read().split("\n\n\n"):
        head, _, body = doc.partition("\n")
        title, author, kind = WORKS.get(head.strip(), (head.strip().title(), body.split("\n")[0], NOVEL))
        work = Work(title, author, kind, body.partition("\n")[2])
        if kind == PLAY:
            for block in work.text.split("\n\n"):
                first, *lines = block.split("\n")
                m = _SPEAKER.fullmatch(first.strip())
                name = m.group(1).strip() if m else ""
                if name and name.split()[0] not in _NOT_NAMES and lines:
                    work.speeches.append((name.title(), [x.strip() for x in lines if x.strip()]))
        works.append(work)
    return works


def first_sentence(text: str, limit: int = 240) -> str | None:
    """The first sentence of a novel's first real paragraph (headings and short lines skipped)."""
    for para in text.split("\n"):
        para = para.strip()
        if len(para) < 60 or para.startswith("(") or not any(c.islower() for c in para):
            continue
        pieces = re.split(r"(?<=[.!?])\s+(?=[A-ZÀ-Ý«—])", para)
        sentence = pieces[0]
        for nxt in pieces[1:]:  # glue back pieces split after "M." and the like
            if len(sentence) >= 40 and not sentence.endswith(_ABBREVIATIONS):
                break
            sentence += " " + nxt
        return sentence if len(sentence) <= limit else None
    return None


def _verse(line: str) -> bool:
    return 20 <= len(line) <= 70 and not line.startswith(("(", "-", "—")) and line[0].isupper()


def _one(rng: random.Random, templates: list[str], answer: str, **fields) -> list[dict]:
    return [{"role": "user", "content": rng.choice(templates).format(**fields)},
            {"role": "assistant", "content": answer}]


def build_demo(corpus: Path = DEMO_CORPUS, seed: int = DEMO_SEED, small_talk: Path = SMALL_TALK) -> list[dict]:
    """Every conversation of the demo set, as records ``{"id", "task", "messages"}``."""
    from causette.sft.data import iter_jsonl, to_messages

    rng = random.Random(seed)
    works = read_works(corpus)
    out: list[tuple[str, list[dict]]] = []
    # A character name heard in two plays (Valère, Silvia…) would make an ambiguous question.
    names = Counter(name for w in works for name in {s for s, _ in w.speeches})
    by_author: dict[str, list[str]] = {}
    for w in works:
        by_author.setdefault(w.author, []).append(f"« {w.title} »")
        t = w.title
        for template in rng.sample(ASK_AUTHOR, 3):
            out.append(("author", _one(rng, [template], f"« {t} » est {w.described}.", t=t)))
        kind = "une pièce de théâtre, écrite par" if w.kind == PLAY else "un roman, écrit par"
        out.append(("kind", _one(rng, ASK_KIND, f"C'est {kind} {w.author}.", t=t)))
        if w.kind == NOVEL:
            sentence = first_sentence(w.text)
            if sentence:
                for template in rng.sample(ASK_START, 2):
                    out.append(("opening", _one(rng, [template], f"« {t} » commence ainsi : {sentence}", t=t)))
            continue
        counts = Counter(s for s, _ in w.speeches)
        cast = [c for c, _ in counts.most_common(4)]
        if len(cast) >= 2:
            answer = f"Les principaux personnages de « {t} » sont {listing(cast)}."
            out.append(("cast", _one(rng, ASK_CAST, answer, t=t)))
        for c in cast[:3]:
            if names[c] == 1:
                out.append(("role", _one(rng, ASK_ROLE, f"On trouve {c} dans « {t} », {w.described}.", c=c)))
        speeches = [(s, [x for x in ls if not x.startswith("(")]) for s, ls in w.speeches]
        if t in VERSE_PLAYS:
            pairs = [(a, b) for _, ls in speeches for a, b in zip(ls, ls[1:]) if _verse(a) and _verse(b)]
            for a, b in rng.sample(pairs, min(8, len(pairs))):
                out.append(("verse", _one(rng, ASK_VERSE, b, t=t, v=a)))
        said = [(s, ls[0]) for s, ls in speeches if ls and 25 <= len(ls[0]) <= 90 and counts[s] >= 10]
        for speaker, line in rng.sample(said, min(3, len(said))):
            out.append(("speaker", _one(rng, ASK_SPEAKER, f"C'est {speaker} qui le dit.", t=t, v=line)))
    for author, titles in by_author.items():
        answer = f"{author} a écrit {listing(titles)}."
        out.append(("works", _one(rng, ASK_WORKS, answer, a=author, de_a=de(author))))
    out += [("smalltalk", to_messages(record)) for _, record in iter_jsonl(Path(small_talk))]
    counter: Counter = Counter()
    records = []
    for task, messages in out:
        counter[task] += 1
        records.append({"id": f"demo-{task}-{counter[task]:03d}", "task": task, "messages": messages})
    return records


def write_demo(out: str | Path, corpus: Path = DEMO_CORPUS, seed: int = DEMO_SEED) -> int:
    """Build the demo set and write it to ``out`` (``.gz``: reproducible bytes); returns its size."""
    from causette.sft.convert import write_jsonl

    return write_jsonl(out, build_demo(corpus, seed))
