"""Talking to a model in the terminal: a conversation that fits the context, and the REPL.

:class:`ChatSession` holds the conversation and turns each user message into a prompt with
the one chat template (causette/data/chat_template.py), then streams the reply. The model sees
at most ``block_size`` tokens, prompt and reply together. Before each reply we keep
``reserve = min(max_new_tokens, block_size / 2)`` tokens free for it; when the conversation
does not fit in the rest, the oldest exchanges (a user message and its reply) are dropped, never
the system prompt, and the user is told. If the last message alone is still too long, its
beginning is cut.

With a base model (trained on plain text, not on conversations) the session works in
*continuation* mode: each input is continued as plain text, without roles or history.

:func:`run_repl` is the interactive loop of ``causette chat``: ``vous> `` prompts, replies
streamed after ``modèle> `` (``you> `` and ``model> `` with ``--lang en``, see causette/utils/lang.py),
slash commands (``/help`` lists them), Ctrl-D or ``/quit`` to leave, Ctrl-C to cut a reply short.
"""

from __future__ import annotations

from typing import Callable, Iterator

from causette.data.chat_template import render_chat
from causette.errors import CausetteError
from causette.inference.config import SEED_LIMIT
from causette.inference.constrain import TokenTrie, ToolCallProcessor
from causette.inference.engine import Engine
from causette.inference.sampling import SamplingParams
from causette.inference.tool_use import describe, hide_calls, parse_tool_calls, run_calls
from causette.tokenizer.special import supports_tools
from causette.utils.lang import tr

CHAT, CONTINUE = "chat", "continue"


class ChatSession:
    """A conversation with one model: history, system prompt, sampling settings."""

    def __init__(self, engine: Engine, params: SamplingParams, system: str | None = None, mode: str = CHAT,
                 tools: list[dict] | None = None, confirm: Callable | None = None, tool_context=None):
        """``tools``: the OpenAI tool objects offered (the built-in ones: causette.tools.openai_tools());
        the model's calls are then constrained (constrain.py), run, shown and answered.
        ``confirm(call) -> bool``: asked before a call that writes (a note)."""
        if mode not in (CHAT, CONTINUE):
            raise ValueError(f"mode must be {CHAT!r} or {CONTINUE!r}")
        if tools and not supports_tools(engine.tokenizer):
            raise CausetteError(tr("ce tokeniseur n'a pas les tokens des outils (entraîné avant eux) : "
                                   "discutez sans --tools", "this tokenizer has no tool tokens (trained before "
                                   "tools): chat without --tools"))
        self.tools = (tools or None) if mode == CHAT else None
        self.confirm = confirm or (lambda call: True)
        self.tool_context = tool_context
        self._trie = TokenTrie(engine.tokenizer) if self.tools else None
        self.engine = engine
        self.tokenizer = engine.tokenizer
        self.params = params.with_(stop_token_ids=engine.special_ids)  # a reply ends at any special
        self.system = system or None
        self.mode = mode
        self.history: list[dict] = []  # what the model still sees: user/assistant alternating
        self.transcript: list[dict] = []  # everything said, for /save
        self.turns = 0
        self.last_result = None  # the Generation of the latest reply

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget the conversation (the system prompt and settings stay)."""
        self.history.clear()
        self.transcript.clear()

    def set_system(self, text: str | None) -> None:
        self.system = text or None

    @property
    def reserve(self) -> int:
        """Tokens kept free for the reply."""
        return min(self.params.max_new_tokens, self.engine.block_size // 2)

    @property
    def budget(self) -> int:
        """Most tokens a prompt may take."""
        return self.engine.block_size - self.reserve

    # ------------------------------------------------------------------ prompts
    def _render(self, history: list[dict]) -> list[int]:
        """The prompt's ids for ``history``, asking for the assistant's next message."""
        return render_chat(self.tokenizer, self._messages(history), add_generation_prompt=True, tools=self.tools)[0]

    def _messages(self, history: list[dict]) -> list[dict]:
        system = [{"role": "system", "content": self.system}] if self.system else []
        return system + history

    def build_prompt(self, user_text: str) -> tuple[list[int], list[str], list[dict]]:
        """Ids to send for ``user_text``, notices for the user (what had to be dropped), and
        the history these ids show (ending with the user message, perhaps cut).

        Nothing changes until :meth:`reply` commits that history: from then on a dropped
        exchange is no longer seen by the model (it stays in the transcript).
        """
        if self.mode == CONTINUE:
            ids = self.engine.encode_prompt(user_text)
            if len(ids) > self.budget:
                return ids[-self.budget :], [tr(
                    f"votre texte fait {len(ids)} tokens ; seuls ses {self.budget} derniers tiennent dans le "
                    f"contexte du modèle ({self.engine.block_size} tokens, dont {self.reserve} gardés pour la réponse)",
                    f"your text is {len(ids)} tokens long; only its last {self.budget} fit in the "
                    f"model's context ({self.engine.block_size} tokens, {self.reserve} kept for the reply)"
                )], []
            return ids, [], []

        history = self.history + [{"role": "user", "content": user_text}]
        notices = []
        ids = self._render(history)
        dropped = 0
        while len(ids) > self.budget and len(history) > 1:
            history = _without_oldest_exchange(history)  # a user message and its reply (calls included)
            dropped += 1
            ids = self._render(history)
        if dropped:
            notices.append(tr(
                f"contexte plein ({self.engine.block_size} tokens) : "
                + ("l'échange le plus ancien est oublié" if dropped == 1 else f"les {dropped} plus anciens échanges "
                                                                             f"sont oubliés")
                + (" (le prompt système est gardé)" if self.system else ""),
                f"context full ({self.engine.block_size} tokens): dropped "
                + ("the oldest exchange" if dropped == 1 else f"the {dropped} oldest exchanges")
                + (" (the system prompt is kept)" if self.system else ""),
            ))
        if len(ids) > self.budget:
            history, cut = self._truncate_last(history)
            ids = self._render(history)
            notices.append(tr(
                f"votre message est trop long pour le contexte du modèle : son début a été coupé "
                f"({_plural(cut, 'caractère')})",
                f"your message is too long for the model's context: its beginning was cut ({_plural(cut, 'character')})",
            ))
        return ids, notices, history

    def _truncate_last(self, history: list[dict]) -> tuple[list[dict], int]:
        """Cut the beginning of the last (only) user message until the prompt fits."""
        text = history[-1]["content"]

        def fits(start: int) -> bool:
            trial = [{"role": "user", "content": text[start:]}]
            return len(self._render(trial)) <= self.budget

        if not fits(len(text)):
            raise CausetteError(tr(
                "le prompt système à lui seul ne laisse aucune place à un message dans le contexte du modèle "
                f"({self.engine.block_size} tokens) : raccourcissez-le avec /system",
                "the system prompt alone leaves no room for a message in the model's context "
                f"({self.engine.block_size} tokens): shorten it with /system",
            ))
        lo, hi = 0, len(text)  # smallest start that fits lies in (lo, hi]
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if fits(mid):
                hi = mid
            else:
                lo = mid
        return [{"role": "user", "content": text[hi:]}], hi

    # ------------------------------------------------------------------ replies
    def reply(self, user_text: str, notify: Callable[[str], None] = lambda s: None) -> Iterator[str]:
        """Stream the model's answer to ``user_text`` (notices go to ``notify`` first).

        With tools, a reply that calls tools is not shown as such: each call is run, shown to
        ``notify`` in one line (« → calculer(17*23) = 391 »), its result joins the conversation
        and the model answers again (at most ``MAX_TOOL_ROUNDS`` times). The reply joins the
        history when the stream ends, even when it is cut short (Ctrl-C: close the iterator).
        """
        ids, notices, history = self.build_prompt(user_text)
        for notice in notices:
            notify(notice)
        self.transcript.append({"role": "user", "content": user_text})
        before = history[:-1]  # the conversation before this message
        for round_ in range(MAX_TOOL_ROUNDS + 1):
            done = yield from self._one_reply(ids, history, notify, tools_left=round_ < MAX_TOOL_ROUNDS)
            if done:
                return
            history = self.history  # the calls and their results, committed by _one_reply
            while len(ids := self._render(history)) > self.engine.block_size - self.answer_room and before:
                dropped = len(history) - len(_without_oldest_exchange(history))
                history, before = history[dropped:], before[dropped:]
            if len(ids) > self.engine.block_size - self.answer_room:
                history, cut = self._shorten_results(history)
                ids = self._render(history)
                if cut:
                    notify(tr(f"résultat d'outil raccourci pour tenir dans le contexte ({_plural(cut, 'caractère')} "
                              "en moins)", f"tool result shortened to fit in the context ({_plural(cut, 'character')} "
                              "fewer)"))
            if len(ids) > self.engine.block_size - self.answer_room:
                # Even alone, this exchange leaves no room for the answer: the model forgets it
                # (the conversation stays well formed: user and assistant turns alternate).
                self.history = before
                notify(tr("plus de place dans le contexte pour la réponse après les outils : cet échange est oublié",
                          "no room left in the context for the answer after the tools: this exchange is forgotten"))
                return
            self.history = history

    @property
    def answer_room(self) -> int:
        """Tokens kept for the answer that follows tool results (short: it reports them; 32 in a
        context of 256, where a call and its result already take a hundred)."""
        return min(self.reserve, max(16, self.engine.block_size // 8))

    def _shorten_results(self, history: list[dict]) -> tuple[list[dict], int]:
        """``history`` with the longest tool result of its last exchange cut (its end replaced by
        « … ») until the prompt leaves ``answer_room``, if a cut of at most half of it does; the
        characters cut (0: none helps)."""
        k = max((i for i, m in enumerate(history) if m["role"] == "tool"), default=None,
                key=lambda i: len(history[i]["content"]))
        if k is None:
            return history, 0
        text = history[k]["content"]

        def trial(keep: int) -> list[dict]:
            return history[:k] + [dict(history[k], content=text[:keep] + "…")] + history[k + 1:]

        limit = self.engine.block_size - self.answer_room
        lo, hi = len(text) // 2, len(text)  # the most kept that fits lies in [lo, hi)
        if len(self._render(trial(lo))) > limit:
            return history, 0
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if len(self._render(trial(mid))) <= limit else (lo, mid)
        return trial(lo), len(text) - lo

    def _one_reply(self, ids: list[int], history: list[dict], notify, tools_left: bool):
        """One streamed answer; True when the turn is over (no tool call to run)."""
        seed = None if self.params.seed is None else (self.params.seed + self.turns) % SEED_LIMIT
        self.turns += 1
        processor = ToolCallProcessor(self.tokenizer, self.tools, self._trie) if self.tools else None
        stream = self.engine.stream(ids, self.params.with_(seed=seed), processor=processor)
        calls: list = []
        try:
            yield from (hide_calls(stream) if self.tools else stream)
        finally:
            stream.stop("interrupted")
            result = stream.result
            self.last_result = result
            text, calls = parse_tool_calls(result.text) if self.tools else (result.text, [])
            calls = [c for c in calls if c.error is None] if result.finish_reason != "interrupted" else []
            if self.mode == CHAT:
                message = {"role": "assistant", "content": text if calls else result.text}
                if calls:
                    message["tool_calls"] = [c.as_message() for c in calls]
                self.history = history + [message]
            self.transcript.append(self.history[-1] if self.mode == CHAT else {"role": "assistant", "content": result.text})
            if result.finish_reason == "context":
                notify(tr(f"la réponse a rempli le contexte du modèle ({self.engine.block_size} tokens) et a été coupée",
                          f"the reply filled the model's context ({self.engine.block_size} tokens) and was cut"))
        if not calls or not tools_left:
            return True
        results = run_calls(calls, self.confirm, self.tool_context)
        for call, tool_message in zip(calls, results):
            notify(describe(call, tool_message["content"]))
        self.history += results
        self.transcript += results
        return False

    def to_json(self) -> dict:
        """The transcript as SFT-style JSON: ``{"messages": [...]}`` plus how it was made."""
        system = [{"role": "system", "content": self.system}] if self.system and self.mode == CHAT else []
        p = self.params
        return {
            "messages": system + self.transcript,
            "mode": self.mode,
            "sampling": {
                "temperature": p.temperature,
                "top_k": p.top_k,
                "top_p": p.top_p,
                "min_p": p.min_p,
                "repetition_penalty": p.repetition_penalty,
                "max_new_tokens": p.max_new_tokens,
                "seed": p.seed,
            },
        }


MAX_TOOL_ROUNDS = 3  # answers in a row that may call tools, per user message


def _without_oldest_exchange(history: list[dict]) -> list[dict]:
    """``history`` without its first exchange: the first user message and everything up to the
    next one (the reply, its tool calls and their results)."""
    for i in range(1, len(history)):
        if history[i]["role"] == "user":
            return history[i:]
    return history[-1:]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# ============================================================================== the REPL
