"""The context's sequences and their KV cells: which are free, what the free ones still hold,
placing a request in one (prefix sharing) and releasing it.

- A finished request's tokens stay in its sequence (a prefix cache, as ``Llama`` and
  llama-server keep one): a later prompt sharing that prefix decodes only the rest.
- A prompt that shares ``MIN_SHARED_COPY`` tokens or more with a running request's gets them by
  copying that sequence's KV cells (``llama_memory_seq_cp``, a whole-stream copy, ~10 ms for
  90 MiB) instead of decoding them, and waits in the queue while that request (its donor) is
  still decoding them. Every chat prompt begins with the template and the system prompt, so the
  first burst on a fresh model decoded that once per sequence: its gather of 8 was 1.05x
  sequential calls where later ones were 1.85x; it now decodes it once.

Everything here runs on the scheduler thread.
"""

from __future__ import annotations

from typing import Any

from abstractcore.engines.llamacpp_batch.request import Request

__all__ = ["MIN_SHARED_COPY", "Sequences"]

#: A prompt sharing at least this many tokens with another sequence's (running or queued just
#: before it) gets them by copying that sequence's KV cells instead of decoding them again: the
#: chat template and system prompt of a burst of requests are decoded once, not once per sequence.
MIN_SHARED_COPY = 16


class Sequences:
    """The ``n_seq`` sequences of one context: the free ones, and the tokens free ones still hold."""

    def __init__(self, llama_cpp: Any, mem: Any, n_seq: int) -> None:
        self._ll = llama_cpp
        self._mem = mem
        self.n_seq = n_seq
        #: Sequences no request holds.
        self.free = list(range(n_seq))
        #: Free sequence -> the tokens its KV cells hold (its prefix cache).
        self.cache: dict[int, list[int]] = {}

    def awaits_donor(self, request: Request, active: list[Request]) -> bool:
        """True while a running request whose prompt shares ``MIN_SHARED_COPY`` tokens or more
        with this one's has not decoded them yet (and no free sequence holds them)."""
        _, cached = self._shared_cache(request)
        for other in active:
            n = min(_common_prefix(other.prompt, request.prompt), len(request.prompt) - 1)
            if n >= MIN_SHARED_COPY and n > cached and other.n_past < n:
                return True
        return False

    def place(self, request: Request, active: list[Request]) -> int:
        """Give ``request`` the free sequence whose cached tokens share the longest prefix with
        its prompt and keep that prefix; or, when a running sequence shares ``MIN_SHARED_COPY``
        more tokens, copy that sequence's cells (a whole-stream copy: the KV cache is split per
        sequence) and keep the shared part. Returns the prompt tokens copied."""
        best, shared = self._shared_cache(request)
        donor, lent = _donor(request, active)
        last = len(request.prompt) - 1  # decode at least one token: its logits are needed
        self.free.remove(best)
        request.seq = best
        if donor is not None and min(lent, last) >= max(MIN_SHARED_COPY, min(shared, last) + MIN_SHARED_COPY):
            self.cache.pop(best, None)
            keep = min(lent, last)
            self._ll.llama_memory_seq_cp(self._mem, donor.seq, best, -1, -1)  # done before the next step
            self._ll.llama_memory_seq_rm(self._mem, best, keep, -1)
            request.cached = request.n_past = request.n_prompt_done = keep
            return keep
        keep = min(shared, last)
        if self.cache.pop(best, None) is not None and not self._ll.llama_memory_seq_rm(
            self._mem, best, keep, -1
        ):
            self._ll.llama_memory_seq_rm(self._mem, best, -1, -1)  # cannot trim: start over
            keep = 0
        request.cached = request.n_past = request.n_prompt_done = keep
        return 0

    def release(self, request: Request, *, keep: bool) -> None:
        """Free the request's sequence; with ``keep``, its cells stay as a prefix cache."""
        seq = request.seq
        self._ll.llama_memory_seq_rm(self._mem, seq, request.n_past, -1)  # anything past our state
        if keep and request.n_past > 0:
            self.cache[seq] = (request.prompt + request.completion)[: request.n_past]
        else:
            self._ll.llama_memory_seq_rm(self._mem, seq, -1, -1)
        self.free.append(seq)

    def drop_caches(self) -> bool:
        """Empty the free sequences' cells; False when none held any."""
        if not self.cache:
            return False
        for seq in list(self.cache):
            self._ll.llama_memory_seq_rm(self._mem, seq, -1, -1)
        self.cache.clear()
        return True

    def clear(self) -> None:
        """Forget every prefix cache and empty the whole KV cache (after a failed step)."""
        self.cache.clear()
        self._ll.llama_memory_clear(self._mem, True)

    def kv_tokens(self) -> int:
        """KV cells in use, by every sequence."""
        total = 0
        for seq in range(self.n_seq):
            hi = self._ll.llama_memory_seq_pos_max(self._mem, seq)
            if hi >= 0:
                total += hi - self._ll.llama_memory_seq_pos_min(self._mem, seq) + 1
        return total

    def cached_tokens(self) -> int:
        """KV cells held by free sequences' caches."""
        return sum(len(t) for t in self.cache.values())

    def _shared_cache(self, request: Request) -> tuple[int, int]:
        """(free sequence, prompt tokens its cached cells share): the longest, else the lowest id
        (consecutive ids batch best) with 0."""
        best, shared = min(self.free), 0
        for seq, cached in self.cache.items():
            n = _common_prefix(cached, request.prompt)
            if n > shared:
                best, shared = seq, n
        return best, shared


def _donor(request: Request, active: list[Request]) -> tuple[Request | None, int]:
    """The running request whose decoded cells share the longest prompt prefix, and how long."""
    donor, shared = None, 0
    for other in active:
        decoded = (other.prompt + other.completion)[: other.n_past]
        n = _common_prefix(decoded, request.prompt)
        if n > shared:
            donor, shared = other, n
    return donor, shared


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
