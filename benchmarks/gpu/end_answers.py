"""A vLLM (0.26) logits processor that makes random-weight answers end the way a real model's do.

Why: the GPU machine serves DeepSeek-R1-Distill-Qwen-1.5B's shapes with random weights
(``--load-format dummy``). Such a model never writes ``</think>`` nor a stop token, so every request
spends its whole budget on "reasoning", botkit (as it must) retries the empty answer, and a
botkit-vs-direct comparison measures four requests against one (docs/benchmarks.md, section 5). This
processor forces ``</think>`` after ``BOTKIT_BENCH_THINK_AT`` output tokens (256) and the request's
stop token at ``BOTKIT_BENCH_END_AT`` (512), for every request, so botkit and a direct client get the
same 512-token replies: 256 of reasoning, 256 of answer, ``finish_reason`` "stop".

Load it with ``--logits-processors end_answers:EndAnswers`` and this folder on ``PYTHONPATH``
(vLLM then runs its V1 model runner: the V2 one takes no custom processors). Not part of botkit, and
not imported by anything in it: it runs only inside vLLM on the GPU machine.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor
from vllm.v1.sample.logits_processor.builtin import process_dict_updates

THINK_AT = int(os.environ.get("BOTKIT_BENCH_THINK_AT", "256"))
END_AT = int(os.environ.get("BOTKIT_BENCH_END_AT", "512"))


def _think_end_ids(vllm_config: Any) -> list[int]:
    """``</think>`` as token ids of the served tokenizer: one special token in DeepSeek's and
    Qwen3's vocabularies, several plain ones in others (all are forced, one per step)."""
    from transformers import AutoTokenizer

    model = vllm_config.model_config
    tokenizer = AutoTokenizer.from_pretrained(model.tokenizer, trust_remote_code=model.trust_remote_code)
    single = tokenizer.convert_tokens_to_ids("</think>")
    if isinstance(single, int) and single != tokenizer.unk_token_id and single is not None:
        return [single]
    return list(tokenizer.encode("</think>", add_special_tokens=False))


class EndAnswers(LogitsProcessor):
    """Forces ``</think>`` at THINK_AT and a stop token at END_AT - 1 (so the reply is END_AT long)."""

    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool) -> None:
        self.device = device
        self.think_end = _think_end_ids(vllm_config)
        eos = vllm_config.model_config.hf_config.eos_token_id
        self.fallback_stop = eos[0] if isinstance(eos, list) else int(eos)
        # batch row -> (its output token list, kept up to date by vLLM; its stop token)
        self.rows: dict[int, tuple[list[int], int]] = {}
        print(f"end_answers: </think> = {self.think_end}, stop fallback = {self.fallback_stop}, "
              f"think at {THINK_AT}, end at {END_AT}", flush=True)  # fmt: skip

    def is_argmax_invariant(self) -> bool:
        return False  # it changes what greedy sampling picks

    def _track(self, params: Any, _prompt: list[int] | None, output: list[int]) -> tuple[list[int], int]:
        stops = sorted(params.all_stop_token_ids)
        return output, (stops[0] if stops else self.fallback_stop)

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        process_dict_updates(self.rows, batch_update, self._track)

    def forced(self, produced: int, stop: int) -> int | None:
        """The token the next position must be, or None to let the model choose."""
        offset = produced - THINK_AT
        if 0 <= offset < len(self.think_end):
            return self.think_end[offset]
        if produced >= END_AT - 1:
            return stop
        return None

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        rows, tokens = [], []
        for row, (output, stop) in self.rows.items():
            token = self.forced(len(output), stop)
            if token is not None and row < logits.shape[0]:
                rows.append(row)
                tokens.append(token)
        if rows:
            index = torch.tensor(rows, device=logits.device)
            logits[index] = -float("inf")
            logits[index, torch.tensor(tokens, device=logits.device)] = 0.0
        return logits
