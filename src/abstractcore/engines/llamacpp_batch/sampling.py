"""A request's own ``llama_sampler`` chain: penalties, then greedy, or top-k/top-p/min-p,
temperature and a seeded draw, with ``create_chat_completion``'s defaults so that
``parallel=1`` and ``parallel>1`` sample alike."""

from __future__ import annotations

from typing import Any

from abstractcore.engines.base import GenerationSpec

__all__ = ["sampler_chain"]

#: create_chat_completion's defaults, so that parallel=1 and parallel>1 sample alike.
_DEFAULTS = {"temperature": 0.2, "top_p": 0.95, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.0}
_PENALTY_LAST_N = 64  # Llama's last_n_tokens_size


def sampler_chain(llama_cpp: Any, spec: GenerationSpec, n_vocab: int) -> Any:
    """The request's own chain (the chain owns the samplers added to it); the caller frees it."""
    ll = llama_cpp
    chain = ll.llama_sampler_chain_init(ll.llama_sampler_chain_default_params())
    for stage in _stages(ll, spec, n_vocab):
        ll.llama_sampler_chain_add(chain, stage)
    return chain


def _stages(ll: Any, spec: GenerationSpec, n_vocab: int) -> list[Any]:
    def pick(name: str) -> Any:
        value = getattr(spec, name)
        return _DEFAULTS[name] if value is None else value

    stages = []
    repeat, presence, frequency = pick("repeat_penalty"), spec.presence_penalty, spec.frequency_penalty
    if repeat != 1.0 or presence or frequency:
        stages.append(
            ll.llama_sampler_init_penalties(
                n_vocab, _PENALTY_LAST_N, repeat, frequency or 0.0, presence or 0.0
            )
        )
    temperature = pick("temperature")
    if temperature <= 0:
        return [*stages, ll.llama_sampler_init_greedy()]
    if pick("top_k") > 0:
        stages.append(ll.llama_sampler_init_top_k(pick("top_k")))
    if pick("top_p") < 1.0:
        stages.append(ll.llama_sampler_init_top_p(pick("top_p"), 1))
    if pick("min_p") > 0.0:
        stages.append(ll.llama_sampler_init_min_p(pick("min_p"), 1))
    seed = ll.LLAMA_DEFAULT_SEED if spec.seed is None else spec.seed & 0xFFFFFFFF
    return [*stages, ll.llama_sampler_init_temp(temperature), ll.llama_sampler_init_dist(seed)]
