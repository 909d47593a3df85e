"""Build the French grammar suite: minimal pairs made from the sentences of UD treebanks.

Each pair is an attested sentence (good) and the same sentence with **one word** changed into
**another attested form of the same lemma** (bad), chosen in the treebanks' own inventory
(:class:`causette.eval.forms.Inventory`) so that it differs from the original exactly in the
feature the phenomenon tests. The dependency tree says which words agree: the subject (``nsubj``)
and the finite verb or auxiliary, the determiner (``det``) or adjective (``amod``) and its noun,
the predicate of ``être`` (``cop``, ``aux``) and its subject… A sentence gives at most one pair per
phenomenon (the candidate is drawn with a seed made of the sentence id and the phenomenon), and
the output is sorted: the same treebanks always give the same file.

    python -m causette.eval.pair_builder --ud ../shared/data/eval/ud --out causette/demo/grammaire.jsonl.gz

The phenomena, their rules and the share of pairs found wrong by hand are in
``causette/demo/README.md`` and ``bench/grammaire_review.md``. The inventory of forms is read
from every treebank given, even with ``--no-gsd`` (which leaves the GSD sentences out of the pairs).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from causette.errors import CausetteError
from causette.eval.conllu import Sentence, Word, read_conllu, sentence_text
from causette.eval.forms import APOSTROPHES, Inventory, bundle, is_typo, respell
from causette.utils.io import atomic_write

SEED = 25
MAX_CHARS = 400  # longer sentences are left out: every pair fits well in a small model's context
GSD_FILES = ("fr_gsd-ud-dev.conllu.gz", "fr_gsd-ud-test.conllu.gz")

SUBJECT = ("nsubj", "nsubj:pass")
# pronoun subjects whose agreement is not the plain rule: relatives, interrogatives, « ce sont »…
ODD_PRONOUNS = {"ce", "c'", "ça", "cela", "ceci", "qui", "que", "quoi", "lequel", "dont", "où", "tout", "rien",
                "personne", "chacun", "quelqu'un", "beaucoup", "plusieurs", "certains", "la plupart"}
# nouns of quantity: « la majorité des électeurs a voté » and « … ont voté » are both written
COLLECTIVE_NOUNS = {"plupart", "moitié", "majorité", "minorité", "nombre", "partie", "part", "totalité", "reste",
                    "ensemble", "tiers", "quart", "proportion", "pourcentage", "%", "pour cent", "dizaine",
                    "douzaine", "quinzaine", "vingtaine", "trentaine", "quarantaine", "cinquantaine", "centaine",
                    "millier", "million", "milliard", "foule", "masse", "multitude", "infinité", "poignée", "série",
                    "quantité", "groupe", "nuée", "kyrielle", "flopée", "tas", "peu", "beaucoup"}
DETERMINERS = {"le", "un", "ce", "son", "aucun", "quel", "nul"}
# nouns with both genders, or with a meaning per gender: a change of gender around them may be correct
BOTH_GENDERS = {
    # one meaning per gender
    "tour", "livre", "poste", "mode", "manche", "voile", "mémoire", "critique", "physique", "page", "somme", "vase",
    "moule", "solde", "aide", "garde", "guide", "pendule", "enseigne", "greffe", "mousse", "crêpe", "politique",
    "mort", "vague", "espace", "radio", "finale", "geste", "orgue", "amour", "délice", "gens", "après-midi",
    "œuvre", "oeuvre", "office", "merci", "parallèle", "pupille", "aigle", "foudre", "hymne", "chose", "personne",
    # people, either gender
    "ministre", "secrétaire", "juge", "élève", "enfant", "adulte", "collègue", "responsable", "membre", "camarade",
    "propriétaire", "fonctionnaire", "libraire", "interprète", "partenaire", "bénévole", "malade", "patient",
    "locataire", "stagiaire", "cadre", "chef", "auteur", "docteur", "professeur", "médecin", "maire", "peintre",
    "poète", "témoin", "diplomate", "scientifique", "pilote", "otage", "capitaine", "disciple", "athlète",
    "astronaute", "commissaire", "comptable", "concierge", "destinataire", "émissaire", "gendarme", "hôte",
    "mannequin", "notaire", "philosophe", "titulaire", "vétérinaire", "ingénieur", "écrivain", "successeur",
    "prédécesseur", "juré", "adversaire", "bibliothécaire", "dignitaire", "mandataire", "signataire", "ancêtre",
    "complice", "compatriote", "convive", "esclave", "gosse", "héritier", "pensionnaire", "protagoniste", "sosie",
    "star", "vedette", "victime", "recrue", "sentinelle", "personnage", "individu", "parent", "acteur", "leader",
    "manager", "coach", "reporter", "designer", "DJ", "fan", "internaute", "homologue", "porte-parole",
    "néophyte", "cinéaste", "photographe", "géographe", "démocrate", "aristocrate", "bureaucrate",
}
EITHER_GENDER_ENDINGS = ("iste", "logue", "graphe", "crate", "iatre", "naute", "phile", "phobe")


@dataclass(frozen=True)
class Change:
    """One candidate: word ``word`` gets the features of the first of ``targets`` that has an
    attested form (``feature`` says which features differ)."""

    word: Word
    targets: tuple[dict, ...]
    feature: str


def _with(word: Word, **changes: str | None) -> dict:
    target = dict(bundle(word))
    for name, value in changes.items():
        if value is None:
            target.pop(name, None)
        else:
            target[name] = value
    return target


def _flip(value: str) -> str:
    return {"Sing": "Plur", "Plur": "Sing", "Masc": "Fem", "Fem": "Masc"}[value]


class Grammar:
    """The agreement relations of one sentence, read from its dependency tree."""

    def __init__(self, sentence: Sentence, nouns: dict):
        self.s = sentence
        self.nouns = nouns  # lemma → genders attested for NOUN

    def children(self, word: Word, *deprels: str) -> list[Word]:
        return [w for w in self.s.children(word.id) if not deprels or w.deprel in deprels]

    def finite(self, head: Word) -> Word | None:
        """The word of a clause that agrees with its subject: its first finite auxiliary or
        copula, else the head itself when it is finite."""
        for w in self.children(head):
            if (w.deprel.startswith("aux") or w.deprel == "cop") and w.feats.get("VerbForm") == "Fin":
                return w
        return head if head.upos in ("VERB", "AUX") and head.feats.get("VerbForm") == "Fin" else None

    def subject(self, head: Word, relative: bool = False) -> Word | None:
        """The one subject of ``head`` that agrees by the plain rule (not « ce », « qui », « la
        plupart », not coordinated). ``relative``: for the relative « qui », its antecedent instead."""
        subjects = self.children(head, *SUBJECT)
        if len(subjects) != 1 or self.children(head, "expl:subj"):
            return None  # « il est arrivé des choses »
        s = subjects[0]
        if relative:
            s = self.antecedent(s, head)
            if s is None:
                return None
        if s.upos not in ("NOUN", "PROPN", "PRON") or "Number" not in s.feats or is_typo(s):
            return None
        if s.upos == "PRON" and (s.lower in ODD_PRONOUNS or s.lemma in ODD_PRONOUNS
                                 or s.feats.get("PronType") in ("Rel", "Int", "Ind", "Neg")):
            return None
        if s.lemma in COLLECTIVE_NOUNS or s.lower in COLLECTIVE_NOUNS or self.children(s, "conj"):
            return None  # « Pierre et Marie »
        return s

    def antecedent(self, qui: Word, head: Word) -> Word | None:
        """The noun that the relative « qui » stands for, when no other noun could: « les
        enfants qui jouent », not « la mère des enfants qui joue » (either noun could agree)."""
        if qui.lower != "qui" or qui.feats.get("PronType") != "Rel" or head.deprel != "acl:relcl" or head.head == 0:
            return None
        noun = self.s.word(head.head)
        if noun.deprel in ("nmod", "conj", "appos") or noun.id > qui.id:
            return None
        between = self.s.words[noun.id:qui.id - 1]
        if any(w.upos not in ("ADJ", "PUNCT", "ADV") for w in between):
            return None
        return noun

    def subject_verb(self, relative: bool = False) -> Iterator[tuple[Word, Word]]:
        """(subject, finite verb) pairs that agree in number and person, subject first
        (``relative``: the antecedent of « qui » and the verb of the relative clause)."""
        for head in self.s.words:
            s = self.subject(head, relative)
            f = self.finite(head) if s is not None else None
            if f is None or f.id < s.id or is_typo(f) or f.lower.endswith(APOSTROPHES):
                continue
            if s.feats["Number"] != f.feats.get("Number"):
                continue
            if s.feats.get("Person", "3") != f.feats.get("Person"):
                continue
            yield s, f

    def noun_gender_fixed(self, noun: Word) -> bool:
        return (noun.lemma not in BOTH_GENDERS and len(self.nouns.get(noun.lemma, ())) <= 1
                and not noun.lemma.endswith(EITHER_GENDER_ENDINGS))

    @staticmethod
    def noun_number_marked(noun: Word) -> bool:
        """Does the noun's spelling show its number? (« prix », « pays » do not.)"""
        if noun.feats.get("Number") == "Plur":
            return noun.lower != noun.lemma.lower()
        return not noun.lemma.lower().endswith(("s", "x", "z"))

    def modifiers(self, deprel: str, upos: str) -> Iterator[tuple[Word, Word]]:
        """(word, noun) for each ``deprel`` of a common noun, both marked for gender and number, agreeing."""
        for w in self.s.words:
            if w.deprel != deprel or w.upos != upos or w.head == 0 or is_typo(w):
                continue
            noun = self.s.word(w.head)
            if noun.upos != "NOUN" or is_typo(noun) or w.lower.endswith(APOSTROPHES):
                continue
            if "Gender" not in noun.feats or "Number" not in noun.feats:
                continue
            if any(w.feats.get(k, noun.feats[k]) != noun.feats[k] for k in ("Gender", "Number")):
                continue
            yield w, noun

    def other_hosts(self, adj: Word, noun: Word) -> list[Word]:
        """The other nouns an adjective after ``noun`` could modify: those ``noun`` depends on
        (« les comités d'entreprises turques ») and those between the two."""
        if adj.id < noun.id:
            return []
        hosts = [w for w in self.s.words[noun.id:adj.id - 1] if w.upos in ("NOUN", "PROPN", "PRON")]
        n = noun
        while n.deprel.startswith("nmod") and n.head and self.s.word(n.head).upos in ("NOUN", "PROPN", "PRON"):
            n = self.s.word(n.head)
            hosts.append(n)
        return hosts

    def predicates(self) -> Iterator[tuple[Word, Word]]:
        """(predicate, subject): an adjective with the copula « être », or a participle with the
        auxiliary « être » (passive or compound tense, not pronominal)."""
        for w in self.s.words:
            if is_typo(w):
                continue
            if w.upos == "ADJ":
                if not any(c.lemma == "être" for c in self.children(w, "cop")):
                    continue
            elif w.upos == "VERB" and w.feats.get("VerbForm") == "Part":
                if not any(c.lemma == "être" for c in self.children(w, "aux:pass", "aux:tense")):
                    continue
                if self.children(w, "expl:pv", "expl:comp", "expl:pass", "iobj") or any(
                        c.upos == "PRON" and c.lemma == "se" for c in self.children(w)):
                    continue
            else:
                continue
            s = self.subject(w) or self.subject(w, relative=True)
            if s is None or s.lemma in ("on", "nous", "vous") or s.lower in ("on", "nous", "vous"):
                continue
            if s.feats["Number"] != w.feats.get("Number") or w.feats.get("Gender") not in (None, s.feats.get("Gender")):
                continue
            yield w, s


def subject_verb_number(g: Grammar, adjacent: bool) -> Iterator[Change]:
    for s, f in g.subject_verb():
        between = g.s.words[s.id:f.id - 1]
        if adjacent != (not between):
            continue
        if not adjacent and (len(between) < 2 or s.upos == "PRON"):
            continue
        yield Change(f, (_with(f, Number=_flip(f.feats["Number"])),), "Number")


def subject_verb_number_relative(g: Grammar) -> Iterator[Change]:
    """« les enfants qui jouent » → « qui joue »: the verb agrees with the antecedent of « qui »."""
    for _s, f in g.subject_verb(relative=True):
        yield Change(f, (_with(f, Number=_flip(f.feats["Number"])),), "Number")


PERSON_ORDER = {"1": ("3", "2"), "2": ("3", "1"), "3": ("1", "2")}


def subject_verb_person(g: Grammar) -> Iterator[Change]:
    for s, f in g.subject_verb():
        if s.upos != "PRON" or s.feats.get("PronType") != "Prs" or "Person" not in s.feats:
            continue
        yield Change(f, tuple(_with(f, Person=p) for p in PERSON_ORDER[f.feats["Person"]]), "Person")


def determiner_noun(g: Grammar, feature: str) -> Iterator[Change]:
    for d, noun in g.modifiers("det", "DET"):
        if d.lemma not in DETERMINERS or d.lower in ("de", "du", "d'"):
            continue
        if d.feats.get("Poss") == "Yes" and "Person[psor]" not in d.feats:
            continue  # a possessive annotated without its possessor: « votre » and « ses » look alike
        if feature == "Gender":
            if "Gender" in d.feats and g.noun_gender_fixed(noun):
                yield Change(d, (_with(d, Gender=_flip(d.feats["Gender"])),), "Gender")
        elif g.noun_number_marked(noun):
            number = _flip(noun.feats["Number"])
            # plural determiners are often annotated without gender (« les »)
            yield Change(d, (_with(d, Number=number, Gender=noun.feats["Gender"]), _with(d, Number=number, Gender=None)),
                         "Number")


def adjective_noun(g: Grammar, feature: str) -> Iterator[Change]:
    for a, noun in g.modifiers("amod", "ADJ"):
        if feature not in a.feats or noun.deprel == "conj" or g.children(noun, "conj"):
            continue  # « un homme et une femme engagés » agrees with both
        if feature == "Gender" and not g.noun_gender_fixed(noun) or feature == "Number" and not g.noun_number_marked(noun):
            continue
        target = _with(a, **{feature: _flip(a.feats[feature])})
        if any(all(h.feats.get(k, target.get(k)) == target.get(k) for k in ("Gender", "Number"))
               for h in g.other_hosts(a, noun)):
            continue  # « les comités d'entreprises turques » → « turcs » would agree with « comités »
        yield Change(a, (target,), feature)


def etre_predicate(g: Grammar, feature: str) -> Iterator[Change]:
    """« la maison est petite / construite » → « petit / construit »: the adjective or participle
    of « être » agrees with the subject."""
    for p, s in g.predicates():
        if feature in p.feats and feature in s.feats:
            yield Change(p, (_with(p, **{feature: _flip(p.feats[feature])}),), feature)


def participle_avoir(g: Grammar) -> Iterator[Change]:
    """« elles ont mangé » → « elles ont mangées »: the participle of « avoir » made to agree with the subject."""
    for p in g.s.words:
        if p.upos != "VERB" or p.feats.get("VerbForm") != "Part" or is_typo(p):
            continue
        if (p.feats.get("Gender"), p.feats.get("Number")) != ("Masc", "Sing"):
            continue
        auxes = g.children(p, "aux:tense", "aux:pass")
        if len(auxes) != 1 or auxes[0].lemma != "avoir" or auxes[0].deprel != "aux:tense":
            continue
        if any(c.deprel in ("obj", "expl:pv", "expl:comp") and c.id < p.id for c in g.children(p)):
            continue  # a direct object before the participle: it agrees with it
        s = g.subject(p) or g.subject(p, relative=True)
        if s is None or "Gender" not in s.feats or (s.feats["Gender"], s.feats["Number"]) == ("Masc", "Sing"):
            continue
        target = _with(p, Gender=s.feats["Gender"], Number=s.feats["Number"])
        feature = "+".join(k for k in ("Gender", "Number") if target[k] != p.feats[k])
        yield Change(p, (target,), feature)


# id → (how it is found, the feature(s) changed); the French labels are the scorer's
PHENOMENA: dict[str, Callable[[Grammar], Iterable[Change]]] = {
    "subject_verb_number": lambda g: subject_verb_number(g, adjacent=True),
    "subject_verb_number_distant": lambda g: subject_verb_number(g, adjacent=False),
    "subject_verb_number_relative": subject_verb_number_relative,
    "subject_verb_person": subject_verb_person,
    "determiner_noun_gender": lambda g: determiner_noun(g, "Gender"),
    "determiner_noun_number": lambda g: determiner_noun(g, "Number"),
    "adjective_noun_gender": lambda g: adjective_noun(g, "Gender"),
    "adjective_noun_number": lambda g: adjective_noun(g, "Number"),
    "etre_predicate_gender": lambda g: etre_predicate(g, "Gender"),
    "etre_predicate_number": lambda g: etre_predicate(g, "Number"),
    "participle_avoir": participle_avoir,
}


def read_treebanks(ud_dir: str | Path, names: Iterable[str] | None = None) -> list[Sentence]:
    """The sentences of the ``.conllu.gz`` files of ``ud_dir`` (``names``: only those), in name order."""
    ud_dir = Path(ud_dir)
    if not ud_dir.is_dir():
        raise CausetteError(f"{ud_dir}: no such folder (the UD treebanks, e.g. ../shared/data/eval/ud)")
    files = sorted(p for p in ud_dir.iterdir() if p.name.endswith((".conllu", ".conllu.gz")))
    if names is not None:
        files = [p for p in files if p.name in set(names)]
    if not files:
        raise CausetteError(f"{ud_dir}: no .conllu or .conllu.gz file")
    return [s for p in files for s in read_conllu(p)]


def _pair(sentence: Sentence, phenomenon: str, change: Change, bad_form: str) -> dict | None:
    index = change.word.id - 1
    replace = respell(sentence, index, bad_form)
    if replace is None:
        return None
    bad = sentence_text(sentence, replace)
    if bad == sentence.text:
        return None
    return {"sentence_good": sentence.text, "sentence_bad": bad, "phenomenon": phenomenon,
            "source": f"{sentence.file.removesuffix('.gz')}:{sentence.sent_id}", "lemma": change.word.lemma,
            "good_form": change.word.form, "bad_form": replace[change.word.id][0], "position": index,
            "feature": change.feature}


def usable(sentence: Sentence) -> bool:
    """A sentence the suite may use: its words give back its text, it is at most
    :data:`MAX_CHARS` long and not written in capitals (the headings of drug leaflets)."""
    text = sentence.text
    if len(text) > MAX_CHARS or sentence_text(sentence) != text:
        return False
    letters = [c for c in text if c.isalpha()]
    return sum(c.isupper() for c in letters) <= len(letters) / 2


def build_pairs(sentences: Iterable[Sentence], inventory: Inventory, seed: int = SEED,
                phenomena: Iterable[str] | None = None) -> list[dict]:
    """One pair per sentence and phenomenon where the sentence has one, sorted by source then
    phenomenon (in the order of :data:`PHENOMENA`). Only :func:`usable` sentences are read."""
    nouns = inventory.noun_genders
    chosen = list(phenomena or PHENOMENA)
    pairs = []
    for sentence in sentences:
        if not usable(sentence):
            continue
        g = Grammar(sentence, nouns)
        for name in chosen:
            found = []
            for change in PHENOMENA[name](g):
                bad_form = next(filter(None, (inventory.alternative(change.word, t) for t in change.targets)), None)
                pair = _pair(sentence, name, change, bad_form) if bad_form else None
                if pair is not None:
                    found.append(pair)
            if found:
                rng = random.Random(f"{seed}:{sentence.file}:{sentence.sent_id}:{name}")
                pairs.append(rng.choice(found))
    order = {name: k for k, name in enumerate(PHENOMENA)}
    pairs.sort(key=lambda p: (p["source"], order[p["phenomenon"]]))  # a sentence's pairs together: gzip packs them
    seen: set[tuple[str, str]] = set()  # a text found twice (« Liens externes ») gives one pair
    unique = []
    for p in pairs:
        if (p["phenomenon"], p["sentence_good"]) not in seen:
            seen.add((p["phenomenon"], p["sentence_good"]))
            unique.append(p)
    return unique


def write_pairs(pairs: list[dict], path: str | Path) -> None:
    """JSONL, gzip-compressed when the name ends in ``.gz`` (with no date or name in the gzip
    header: the same pairs always give the same bytes)."""
    text = "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs).encode("utf-8")
    if str(path).endswith(".gz"):
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
            gz.write(text)
        text = buf.getvalue()
    with atomic_write(path, "wb") as f:
        f.write(text)


def counts(pairs: Iterable[dict]) -> Counter:
    return Counter(p["phenomenon"] for p in pairs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m causette.eval.pair_builder", description=__doc__.split("\n\n")[0])
    ap.add_argument("--ud", type=Path, required=True, help="folder of the UD French .conllu.gz files")
    ap.add_argument("--out", type=Path, required=True, help="the pairs file to write (.jsonl or .jsonl.gz)")
    ap.add_argument("--no-gsd", action="store_true", help="leave the GSD sentences out of the suite")
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)
    try:
        sentences = read_treebanks(args.ud)
        inventory = Inventory(sentences)
        suite = [s for s in sentences if not (args.no_gsd and s.file in GSD_FILES)]
        pairs = build_pairs(suite, inventory, seed=args.seed)
        write_pairs(pairs, args.out)
    except CausetteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    n = counts(pairs)
    for name in PHENOMENA:
        print(f"{name:32} {n[name]:6d}")
    print(f"{'total':32} {len(pairs):6d}  → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
