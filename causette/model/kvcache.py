"""The KV cache: each layer's keys and values, kept between generation steps (``KVCache``).

Made by ``Transformer.new_cache``; attention (attention.py) writes and reads it, both for a
sequence (prefill, rows in step) and for the one-token step where each row has its own
position (``Transformer.step``).
"""

from __future__ import annotations

import torch

from causette.errors import CausetteError


# ==============================================================================
# The KV cache: each layer's keys and values, kept for generation
#
# Without a cache, producing token ``t+1`` recomputes attention over all ``t`` previous tokens,
# for every new token. But the keys and values of past tokens never change (the model is
# causal), so we compute them once and store them:
#
# 1. **prefill**: run the whole prompt ``(B, T0)`` once; each layer writes its ``T0`` keys/values;
# 2. **decode**: feed only the newest token ``(B, 1)``; each layer appends one key/value and
#    its query attends to everything stored so far.
#
# Storage is preallocated, one ``(B, n_kv_head, max_len, head_dim)`` tensor per layer for keys
# and the same for values, so a step never reallocates. With grouped-query attention only the
# ``n_kv_head`` shared heads are stored: that is the memory GQA saves. One tensor *per layer*
# (rather than one stacked tensor for all layers) matters under ``torch.compile``: compiled code
# writes into a copy of a tensor it received and copies it back, so with a stacked tensor each
# layer's update would copy the whole cache (25 MB per token for seed16m; see
# causette/inference/backends/aoti.py).
#
# **A length per row.** Each row holds its own sequence: ``lengths[b]`` positions of row ``b``
# are filled. A sequence of ``T`` tokens (``model.logits(idx, cache)``) needs every row at the
# same length (``pos``, the shared case) and adds ``T`` to each; the one-token step
# (``model.step(tokens, positions, cache)``) puts row ``b``'s token at ``positions[b]``, so rows of
# different lengths decode together, and a row can start over (a new request) while the others
# go on. ``rows(i, j)`` is a view of some rows (same memory, same lengths): a prompt is read into
# one row that way. Usage::
#
#     cache = model.new_cache(batch_size=2)                  # max_len = block_size
#     model.logits(prompt_a, cache=cache.rows(0, 1))         # prefill row 0, prompt (1, Ta)
#     model.logits(prompt_b, cache=cache.rows(1, 2))         # prefill row 1, prompt (1, Tb)
#     logits = model.step(next_tokens, None, cache)          # one token per row, at its length
#     cache.reset()                                          # reuse for a new conversation
#
# **Sliding window: a ring buffer.** A model with ``sliding_window = N`` never looks further back
# than ``N`` positions, so its cache (``window=N``, when ``N < max_len``) keeps only ``N`` slots per
# layer: position ``p`` lives in slot ``p mod N`` and overwrites position ``p - N``, which no
# later query sees. Keys are stored after RoPE, so the order of the slots does not matter to
# attention; only the mask has to know which position each slot holds (``update_window``).
# ==============================================================================


class KVCache:
    """Preallocated keys/values for every layer, plus the number of positions already filled.

    ``window``: the model's sliding window ``N``; when it is smaller than ``max_len`` the cache is
    a ring buffer of ``N`` slots (see :meth:`update_window`), else it changes nothing.
    """

    def __init__(
        self,
        n_layer: int,
        batch_size: int,
        n_kv_head: int,
        max_len: int,
        head_dim: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        window: int | None = None,
    ):
        # region doc:kv-ring-size
        self.window = window if window is not None and window < max_len else None  # None: no ring
        shape = (batch_size, n_kv_head, self.window or max_len, head_dim)  # slots: N, not max_len
        # endregion doc:kv-ring-size
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layer)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layer)]
        self.max_len = max_len  # positions it takes in all (with a ring, more than it stores)
        # Row b holds positions 0 .. lengths[b]-1 (with a ring, only the last N are kept). A list
        # shared with every view of some rows (``rows``); ``_first`` is this view's first row.
        self._lengths = [0] * batch_size
        self._first = 0

    @property
    def batch_size(self) -> int:
        return self.k[0].shape[0]

    @property
    def dtype(self) -> torch.dtype:
        return self.k[0].dtype

    # ------------------------------------------------------------------ lengths

    @property
    def lengths(self) -> list[int]:
        """How many positions each row holds."""
        return self._lengths[self._first : self._first + self.batch_size]

    @property
    def pos(self) -> int:
        """The length shared by every row (a sequence of tokens continues from there)."""
        lengths = self.lengths
        if any(n != lengths[0] for n in lengths):
            raise CausetteError(f"the rows of this KV cache have different lengths {lengths}: step them one by one")
        return lengths[0]

    @pos.setter
    def pos(self, n: int) -> None:
        """Set every row's length to ``n`` (what was stored beyond is forgotten)."""
        for b in range(self.batch_size):
            self._lengths[self._first + b] = int(n)

    def set_lengths(self, lengths) -> None:
        """Row ``b`` now holds ``lengths[b]`` positions (after a step, or to forget a row's end)."""
        for b, n in enumerate(lengths):
            self._lengths[self._first + b] = int(n)

    def reset(self) -> None:
        """Forget everything (the old values are simply overwritten later)."""
        self.pos = 0

    def rows(self, start: int, stop: int) -> "KVCache":
        """A cache for rows ``start .. stop-1`` of this one, sharing its memory and its lengths:
        what it stores lands in those rows here (a prompt is read into one row this way)."""
        view = KVCache.__new__(KVCache)
        view.k = [t[start:stop] for t in self.k]
        view.v = [t[start:stop] for t in self.v]
        view.max_len, view.window = self.max_len, self.window
        view._lengths, view._first = self._lengths, self._first + start
        return view

    def copy_prefix(self, source: int, target: int, n: int) -> None:
        """Row ``target`` takes row ``source``'s first ``n`` positions (a prompt that another row
        has already read is copied rather than read again). Not for a ring buffer, whose slots
        no longer hold the first positions."""
        if self.window is not None:
            raise CausetteError("a sliding window's ring buffer keeps no prefix to copy")
        for layer in (*self.k, *self.v):
            layer[target, :, :n] = layer[source, :, :n]
        self._lengths[self._first + target] = n

    def check(self, batch_size: int, seq_len: int) -> None:
        """Fail clearly before a forward pass that would not fit."""
        if batch_size != self.batch_size:
            raise CausetteError(f"KV cache was made for batch size {self.batch_size}, got {batch_size}")
        pos = self.pos
        if pos + seq_len > self.max_len:
            raise CausetteError(
                f"KV cache full: {pos} positions used + {seq_len} new > max_len {self.max_len} "
                "(crop the context or reset the cache)"
            )

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store ``k, v`` ``(B, n_kv_head, T, head_dim)`` at positions ``pos .. pos+T-1`` of ``layer``.

        Returns all keys/values of that layer so far, ``(B, n_kv_head, pos+T, head_dim)``, in the
        dtype of ``k``. ``pos`` itself moves only when the model calls :meth:`advance` after the
        last layer, so every layer writes at the same place.
        """
        start = self.pos
        end = start + k.shape[2]
        self.k[layer][:, :, start:end] = k
        self.v[layer][:, :, start:end] = v
        return self.k[layer][:, :, :end].to(k.dtype), self.v[layer][:, :, :end].to(v.dtype)

    # region doc:kv-ring
    def update_window(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """The ring buffer's :meth:`update`: store ``k, v`` ``(B, n_kv_head, T, head_dim)``, the
        positions ``pos .. pos+T-1``, position ``p`` in slot ``p mod N`` (``N = self.window``).

        Returns ``(keys, values, key_pos)``: what the ``T`` queries may need, and the absolute
        position of each key (``(n_keys,)``, for the caller's band mask; None for one token).

        * one token (decoding): written first, then the filled slots are returned, which hold
          exactly the window ``pos-N+1 .. pos`` (or ``0 .. pos`` before the ring is full): every
          one is visible, in slot order rather than position order (attention does not care);
        * several tokens: the early queries still need keys that the new ones will overwrite, so
          the stored slots are read first, the new keys appended, and only then are the last
          ``min(T, N)`` new keys written to their slots.
        """
        W, past, T = self.window, self.pos, k.shape[2]
        ks, vs = self.k[layer], self.v[layer]
        if T == 1:
            ks[:, :, past % W] = k[:, :, 0]
            vs[:, :, past % W] = v[:, :, 0]
            n = min(past + 1, W)
            return ks[:, :, :n].to(k.dtype), vs[:, :, :n].to(v.dtype), None  # all visible: no positions
        new_pos = torch.arange(past, past + T, device=k.device)
        if past == 0:
            keys, values, key_pos = k, v, new_pos
        else:
            n = min(past, W)  # filled slots; slot j holds the latest position < past that is j mod N
            old_pos = past - 1 - (past - 1 - torch.arange(n, device=k.device)) % W
            keys = torch.cat([ks[:, :, :n].to(k.dtype), k], dim=2)
            values = torch.cat([vs[:, :, :n].to(v.dtype), v], dim=2)
            key_pos = torch.cat([old_pos, new_pos])
        m = min(T, W)  # only the last N new keys stay
        slots = new_pos[T - m :] % W
        ks[:, :, slots] = k[:, :, T - m :].to(ks.dtype)
        vs[:, :, slots] = v[:, :, T - m :].to(vs.dtype)
        return keys, values, key_pos
    # endregion doc:kv-ring

    def advance(self, seq_len: int) -> None:
        """Every row has stored ``seq_len`` more positions (after the last layer of a forward)."""
        self.pos = self.pos + seq_len
