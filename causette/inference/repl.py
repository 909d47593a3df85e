"""The terminal chat: the loop that reads your messages and commands (``/help``, ``/temp``,
``/save``…) and prints the model's replies as they come, around a
:class:`~causette.inference.chat.ChatSession` (which holds the conversation)."""

from __future__ import annotations

import datetime as _dt
import sys
from pathlib import Path
from typing import Callable, TextIO

from causette.errors import CausetteError
from causette.inference.chat import CONTINUE, ChatSession, _plural
from causette.utils.io import write_json
from causette.utils.lang import tr
from causette.utils.text import valid_unicode

_CONTROL = {c: "\ufffd" for c in [*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F]}


def printable(text: str) -> str:
    """``text`` safe for a terminal: control characters other than tab and newline (an escape
    sequence could move the cursor or recolour the screen) are shown as "\ufffd"."""
    return text.translate(_CONTROL)


HELP = """commands:
  /help             this list
  /reset            forget the conversation (keeps the system prompt)
  /system TEXT      set the system prompt (/system alone removes it)
  /temp X           temperature (0 = greedy)
  /topk N           keep the N most probable tokens (0 = off)
  /topp X           nucleus sampling threshold (1 = off)
  /minp X           keep tokens at least X times as probable as the best (0 = off)
  /params           show the sampling settings
  /save [FILE]      write the transcript as JSON
  /quit             leave (Ctrl-D works too)
Start a message with // to send a text that begins with /. Ctrl-C cuts a reply short."""

HELP_FR = """commandes :
  /help             cette liste
  /reset            oublier la conversation (garde le prompt système)
  /system TEXTE     fixer le prompt système (/system seul l'enlève)
  /temp X           température (0 = choix glouton)
  /topk N           garder les N tokens les plus probables (0 = désactivé)
  /topp X           seuil de l'échantillonnage par noyau (1 = désactivé)
  /minp X           garder les tokens au moins X fois aussi probables que le meilleur (0 = désactivé)
  /params           afficher les réglages d'échantillonnage
  /save [FICHIER]   écrire la transcription en JSON
  /quit             quitter (Ctrl-D marche aussi)
Commencez un message par // pour envoyer un texte qui commence par /. Ctrl-C coupe une réponse."""

YOU, MODEL = ("vous> ", "you> "), ("modèle> ", "model> ")  # the prompts: (French, English)


class Repl:
    """The terminal loop around a :class:`ChatSession`."""

    def __init__(self, session: ChatSession, out: TextIO | None = None, input_fn: Callable[[str], str] = input):
        self.session = session
        self.out = out or sys.stdout
        self.input = input_fn
        self._open_line = False  # "modèle> ..." printed, its newline not yet

    def say(self, text: str = "", end: str = "\n") -> None:
        self.out.write(text + end)
        self.out.flush()

    def notice(self, text: str) -> None:
        if self._open_line:  # a reply is being printed: notes go on their own line
            self.say()
            self._open_line = False
        if text.startswith("→ "):  # a tool call that ran: shown as it is (tool_use.describe)
            self.say(text)
        else:
            self.say(tr(f"note : {text}", f"note: {text}"))

    def run(self) -> int:
        while True:
            try:
                line = valid_unicode(self.input(tr(*YOU)))  # bytes typed that are not UTF-8 → U+FFFD
            except (EOFError, KeyboardInterrupt):
                self.say()
                return 0
            if not line.strip():
                continue
            if line.startswith("/") and not line.startswith("//"):
                if self.command(line.strip()) == "quit":
                    return 0
                continue
            self.answer(line[1:] if line.startswith("//") else line)

    def answer(self, text: str) -> None:
        """Stream the reply to ``text`` after ``modèle> `` (notes about the context come first)."""
        stream = self.session.reply(text, notify=self.notice)
        self._open_line = started = False
        try:
            for delta in stream:
                if not started:
                    self.say(tr(*MODEL), end="")
                    self._open_line = started = True
                self.say(printable(delta), end="")
            if not started:
                self.say(tr(*MODEL), end="")  # an empty reply (the model ended its turn at once)
                self._open_line = True
        except KeyboardInterrupt:
            stream.close()
            self.say(tr(" [interrompu]", " [interrupted]"), end="")
        except CausetteError as e:
            self.say(tr(f"erreur : {e}", f"error: {e}"))
            return
        finally:
            if self._open_line:
                self.say()
            self._open_line = False

    # ------------------------------------------------------------------ slash commands
    def command(self, line: str) -> str | None:
        name, _, arg = line.partition(" ")
        arg = arg.strip()
        session = self.session
        try:
            if name in ("/quit", "/exit", "/q"):
                return "quit"
            elif name == "/help":
                self.say(tr(HELP_FR, HELP))
            elif name == "/reset":
                session.reset()
                self.say(tr("conversation oubliée" + (" (prompt système gardé)" if session.system else ""),
                            "conversation forgotten" + (" (system prompt kept)" if session.system else "")))
            elif name == "/system":
                if session.mode == CONTINUE:
                    self.say(tr("un modèle de base n'a pas de prompt système (mode continuation)",
                                "a base model has no system prompt (continuation mode)"))
                else:
                    session.set_system(arg)
                    self.say(tr(f"prompt système fixé : {arg}" if arg else "prompt système enlevé",
                                f"system prompt set: {arg}" if arg else "system prompt removed"))
            elif name in ("/temp", "/topk", "/topp", "/minp"):
                self.set_param(name, arg)
            elif name == "/params":
                self.say(session.params.describe())
            elif name == "/save":
                self.save(arg)
            else:
                self.say(tr(f"commande inconnue {name} (/help les liste)", f"unknown command {name} (/help lists them)"))
        except CausetteError as e:
            self.say(tr(f"erreur : {e}", f"error: {e}"))
        return None

    def set_param(self, name: str, arg: str) -> None:
        field, cast = {
            "/temp": ("temperature", float),
            "/topk": ("top_k", int),
            "/topp": ("top_p", float),
            "/minp": ("min_p", float),
        }[name]
        try:
            value = cast(arg)
        except ValueError:
            example = f"{name} {'40' if cast is int else '0.7'}"
            raise CausetteError(tr(f"{name} attend un nombre, p. ex. {example}", f"{name} needs a number, e.g. {example}")) from None
        self.session.params = self.session.params.with_(**{field: value})
        self.say(self.session.params.describe())

    def save(self, arg: str) -> None:
        path = Path(arg or f"chat-{_dt.datetime.now():%Y%m%d-%H%M%S}.json").expanduser()
        try:
            write_json(path, self.session.to_json())
        except (OSError, ValueError) as e:  # ValueError: a name holding a NUL character
            why = getattr(e, "strerror", None) or e
            raise CausetteError(tr(
                f"{printable(str(path))} : impossible d'écrire la transcription ({why}) ; "
                "la conversation est gardée, essayez /save AUTRE_FICHIER",
                f"{printable(str(path))}: cannot write the transcript ({why}); "
                "the conversation is kept, try /save OTHER_FILE")) from None
        n = _plural(len(self.session.transcript), "message")
        self.say(tr(f"transcription enregistrée dans {path} ({n})", f"transcript saved to {path} ({n})"))
