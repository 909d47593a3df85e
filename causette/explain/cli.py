"""The command line: ``python -m causette.explain TOPIC [TEXT] [options]``."""

from __future__ import annotations

import argparse
import sys

from causette.errors import CausetteError
from causette.explain.common import TOPICS, TRAINED, build
from causette.explain.pictures import PICTURES
from causette.utils.lang import add_lang_argument, lang_from_argv, set_language, tr
from causette.utils.ranges import SEED, Range, number_in

DESCRIPTION = "See the concepts of docs/ at work on a real model: python -m causette.explain TOPIC [TEXT]."
DESCRIPTION_FR = "Voir les notions de docs/ à l'œuvre sur un vrai modèle : python -m causette.explain SUJET [TEXTE]."
DEFAULT_TEXT = "Le chat dort sur le lit."

# The numeric options, checked while parsing: a bad value is one line, never a traceback.
COUNT = number_in(Range(min=1))  # how many (steps, tokens, ...)
NATURAL = number_in(Range(min=0))  # 0 or more: an index (the topic checks its upper bound), warmup steps
TOP = number_in(Range(1, 100))  # rows of a table: more would not be read (and a vocabulary has >= 256)
PROBABILITY = number_in(Range(0, 1), float)


def even_dim(text: str) -> int:
    """``--dim``: an even vector size (sines and cosines come in pairs), at most 1024."""
    value = number_in(Range(2, 1024))(text)
    if value % 2:
        raise argparse.ArgumentTypeError(f"must be even (sines and cosines come in pairs), got {value}")
    return value


class OneLineParser(argparse.ArgumentParser):
    """A mistake in the options is one line (no usage block): ``... error: argument --top: must be >= 1``."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    ap = OneLineParser(prog="python -m causette.explain", description=tr(DESCRIPTION_FR, DESCRIPTION))
    add_lang_argument(ap)  # before the topic too: python -m causette.explain --lang en --help
    sub = ap.add_subparsers(dest="topic", metavar=tr("<sujet>", "<topic>"), required=True)
    for name, (_fn, (help_fr, help_en), takes_text) in TOPICS.items():
        help_ = tr(help_fr, help_en)
        p = sub.add_parser(name, help=help_, description=help_, parents=[common])
        if takes_text:
            p.add_argument("text", nargs="?", default=DEFAULT_TEXT,
                           help=tr("la phrase à regarder", "the sentence to look at"))
        elif name not in ("sampling", "bleu"):  # they have their own texts; the others accept one too
            p.add_argument("text", nargs="?", default=None,
                           help=tr("une phrase (ce sujet n'en a pas besoin)", "a sentence (this topic needs none)"))
    _add_model_topic_options(sub.choices)
    _add_training_topic_options(sub.choices)
    _add_check(sub)
    return ap


def _common_options() -> OneLineParser:
    """The options every topic takes (a parent parser): which model, which block and head, how many rows, a picture."""
    common = OneLineParser(add_help=False)
    common.add_argument("--checkpoint", help=tr("un run, un dossier checkpoints ou d'un pas (défaut : un modèle de "
                                                "démo aléatoire)",
                                                "a run, checkpoints or step folder (default: a random demo model)"))
    common.add_argument("--tokenizer", help=tr("dossier ou fichier du tokeniseur du modèle aléatoire (défaut : appris "
                                               "en mémoire)",
                                               "tokenizer folder or file for the random model (default: learned in "
                                               "memory)"))
    common.add_argument("--config", help=tr("config du modèle aléatoire (défaut : model/demo ; model/moe pour moe)",
                                            "model config of the random model (default: model/demo; model/moe for moe)"))
    common.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help=tr("p. ex. --set model.pos=learned", "e.g. --set model.pos=learned"))
    common.add_argument("--seed", type=number_in(SEED), default=0,
                        help=tr("graine des poids aléatoires (défaut 0)", "seed of the random weights (default 0)"))
    common.add_argument("--layer", type=NATURAL, default=0, help=tr("quel bloc (défaut 0)", "which block (default 0)"))
    common.add_argument("--head", type=NATURAL, default=0,
                        help=tr("quelle tête d'attention (défaut 0)", "which attention head (default 0)"))
    common.add_argument("--top", type=TOP, default=6, help=tr("combien de voisins ou de candidats montrer",
                                                              "how many neighbours or candidates to show"))
    common.add_argument("--png", metavar=tr("FICHIER", "FILE"),
                        help=tr("écrire aussi l'image du sujet dans ce fichier PNG (sujets : "
                                + ", ".join(sorted(PICTURES)) + ")",
                                "also write the topic's picture to this PNG file (topics: "
                                + ", ".join(sorted(PICTURES)) + ")"))
    add_lang_argument(common)
    return common


def _add_model_topic_options(topics: dict[str, argparse.ArgumentParser]) -> None:
    """The own options of the topics about the model and its generation: positions, mask, cache, sampling."""
    topics["positions"].add_argument("--dim", type=even_dim, default=8,
                                     help=tr("taille des vecteurs (paire, défaut 8)", "vector size (even, default 8)"))
    topics["mask"].add_argument("--window", type=COUNT, default=None,
                                help=tr("taille de la fenêtre glissante montrée à côté (défaut : celle du "
                                        "modèle, sinon 3)",
                                        "size of the sliding window shown next to it (default: the model's, "
                                        "else 3)"))
    topics["cache"].add_argument("--prefill", type=COUNT, default=None,
                                 help=tr("combien de tokens forment le prompt (défaut : la moitié)",
                                         "how many tokens make the prompt (default: half)"))
    smp = topics["sampling"]
    smp.add_argument("text", nargs="?", default="Il était une fois",
                     help=tr("le texte dont on tire le token suivant", "text whose next token is sampled"))
    smp.add_argument("--logits", type=number_in(Range(), float), nargs="+", help=tr("des logits jouets au lieu de ceux d'un modèle",
                                                                "toy logits instead of a model's"))
    smp.add_argument("--temperature", type=number_in(Range(min=0, note="0 = greedy"), float), default=0.8)
    smp.add_argument("--top-k", type=number_in(Range(min=0, note="0 = off")), default=0)
    smp.add_argument("--top-p", type=number_in(Range(0, 1, min_open=True, note="1 = off"), float), default=1.0)
    smp.add_argument("--min-p", type=PROBABILITY, default=0.0)


def _add_training_topic_options(topics: dict[str, argparse.ArgumentParser]) -> None:
    """The own options of the topics about training and evaluation: schedule, curves, progression, bleu."""
    sch = topics["schedule"]
    sch.add_argument("--steps", type=COUNT, default=1200, help=tr("nombre total de pas (défaut 1200, comme "
                                                                "configs/demo.yaml)",
                                                                "total steps (default 1200, as configs/demo.yaml)"))
    sch.add_argument("--warmup", type=NATURAL, default=60, help=tr("pas de préchauffage (défaut 60)",
                                                               "warmup steps (default 60)"))
    crv = topics["curves"]
    crv.add_argument("--examples", action="store_true",
                     help=tr("au lieu d'un run : trois petits entraînements réels (sain, taux trop haut, "
                             "surapprentissage), environ 20 s sur 2 cœurs",
                             "instead of a run: three small real trainings (healthy, too high a learning rate, "
                             "overfitting), about 20 s on 2 cores"))
    crv.add_argument("--example-steps", type=number_in(Range(min=60)), default=300,
                     help=tr("pas de chaque exemple (défaut 300)", "steps of each example (default 300)"))
    topics["progression"].add_argument(
        "--runs", default="runs", metavar=tr("DOSSIER", "FOLDER"),
        help=tr("où chercher vos runs des cinq étapes (défaut : runs)",
                "where to look for your runs of the five steps (default: runs)"))
    topics["scaling"].add_argument(
        "--file", metavar=tr("FICHIER", "FILE"),
        help=tr("votre propre grille (la sortie --out de bench/scaling.py ; défaut : celle mesurée pour la doc)",
                "your own grid (bench/scaling.py's --out; default: the one measured for the docs)"))
    bl = topics["bleu"]
    bl.add_argument("hypothesis", help=tr("la réponse du modèle", "the model's answer"))
    bl.add_argument("reference", help=tr("la réponse attendue", "the expected answer"))


def _add_check(sub: argparse._SubParsersAction) -> None:
    """``check``: not a topic but the checker of the exercises of docs/exercices.md."""
    from causette.explain.exercises import EXERCISES

    help_ = tr("vérifier votre solution d'un exercice de docs/exercices.md : « juste » ou la première différence",
               "check your solution to an exercise of docs/exercices.md: 'correct' or the first difference")
    chk = sub.add_parser("check", help=help_, description=help_)
    add_lang_argument(chk)
    chk.add_argument("exercise", metavar=tr("EXERCICE", "EXERCISE"), help=" | ".join(EXERCISES))
    chk.add_argument("file", metavar=tr("FICHIER.py", "FILE.py"),
                     help=tr("votre fichier, qui définit la fonction de l'exercice",
                             "your file, which defines the exercise's function"))


NEEDS_NO_MODEL = {"positions", "schedule", "muon", "bleu", "curves", "progression", "scaling"}
IGNORED_TEXT = {
    "positions": ("les positions ne dépendent que du rang des tokens, pas des mots : la phrase donnée ne change rien",
                  "positions depend on the rank of the tokens only, not on the words: the sentence changes nothing"),
    "schedule": ("le taux d'apprentissage ne dépend que du pas, pas du texte : la phrase donnée n'est pas utilisée",
                 "the learning rate depends on the step only, not on the text: the sentence is not used"),
    "curves": ("les courbes sont celles du run de --checkpoint : la phrase donnée n'est pas utilisée",
               "the curves are those of the --checkpoint run: the sentence is not used"),
    "progression": ("la progression compare cinq modèles entraînés : la phrase donnée n'est pas utilisée",
                    "the progression compares five trained models: the sentence is not used"),
    "muon": ("Muon travaille sur une matrice de gradient, pas sur une phrase : la phrase donnée n'est pas utilisée",
             "Muon works on a gradient matrix, not on a sentence: the sentence is not used"),
    "scaling": ("la grille compare des entraînements mesurés : la phrase donnée n'est pas utilisée",
                "the grid compares measured trainings: the sentence is not used"),
}


def run(argv: list[str] | None = None) -> str:
    """Parse ``argv`` and return the text of the topic (what ``main`` prints)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    set_language(lang_from_argv(argv))  # before the parser, so that --help speaks it too
    args = build_parser().parse_args(argv)
    if args.topic == "check":
        from causette.explain.exercises import check

        return check(args.exercise, args.file)  # a Verdict: its .ok gives the exit code
    fn, _help, _ = TOPICS[args.topic]
    if args.png and args.topic not in PICTURES:
        raise CausetteError(tr(f"le sujet {args.topic} n'a pas d'image (--png) : {', '.join(sorted(PICTURES))} en ont une",
                               f"topic {args.topic} has no picture (--png): {', '.join(sorted(PICTURES))} have one"))
    if args.topic in NEEDS_NO_MODEL or (args.topic == "sampling" and args.logits):
        body = fn(None, "", args)
        if getattr(args, "text", None) and args.topic in IGNORED_TEXT:
            body = tr("note : ", "note: ") + tr(*IGNORED_TEXT[args.topic]) + "\n\n" + body
        if args.png:
            body += "\n\n" + tr("image : ", "picture: ") + str(PICTURES[args.topic](None, "", args, args.png))
        return body
    if TOPICS[args.topic][2] and not args.text.strip():
        raise CausetteError(tr("donnez un texte non vide à regarder", "give a non-empty text to look at"))
    setup = build(args, "model/moe" if args.topic == "moe" else "model/demo")
    body = fn(setup, getattr(args, "text", None) or "", args)
    if args.png:
        body += "\n\n" + tr("image : ", "picture: ") + str(PICTURES[args.topic](setup, args.text, args, args.png))
    about = setup.about
    if not args.checkpoint and TRAINED.get(args.topic):
        about += "\n" + tr("un modèle entraîné (--checkpoint, p. ex. runs/demo) montrerait ",
                           "a trained model (--checkpoint, e.g. runs/demo) would show ") + tr(*TRAINED[args.topic])
    return f"{about}\n\n{body}"


def main(argv: list[str] | None = None) -> int:
    try:
        out = run(argv)
        print(out)
    except (CausetteError, ValueError) as e:
        print(tr("erreur : ", "error: ") + str(e), file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    return 0 if getattr(out, "ok", True) else 1
