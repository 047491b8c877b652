"""`generate_fn` adapters for the agent loop (HF `generate` on CPU or GPU; vLLM, optional) and trajectory tokenization.

    generate_fn = hf_generate_fn(model, processor, tools=schemas, max_new_tokens=256)
    texts = generate_fn(conversations, images)        # one assistant turn per conversation

A turn is returned whole: when the template writes the start of the turn into the generation prompt (Qwen3.5's
`<think>\n`), that prefill is put in front of the generated text, so the loop, the format checks and the history
see the turn the model wrote (the template re-renders it identically).
"""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)


def render(processor, messages: list[dict], tools: list[dict] | None, *, add_generation_prompt: bool) -> str:
    """The chat-template text of a conversation, with a tool-capable template when tools are in use."""
    from mmreward.agent.protocol import chat_template_for

    # A conversation that already holds tool calls or tool results needs the tool-capable template even when
    # no schemas are shown (the shipped Qwen2.5-VL template silently drops them).
    in_use = bool(tools) or any(m.get("role") == "tool" or m.get("tool_calls") for m in messages)
    template = chat_template_for(processor, in_use)
    kwargs = {"chat_template": template} if template else {}
    return processor.apply_chat_template(messages, tools=tools or None, tokenize=False,
                                         add_generation_prompt=add_generation_prompt, **kwargs)


def hf_generate_fn(model, processor, *, tools: list[dict] | None = None, max_new_tokens: int = 256,
                   do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0):
    """A batched `generate_fn` over a HF (or peft) generation model.

    Args:
        model: the VLM (e.g. from `load_vlm`).
        processor: its processor.
        tools: JSON schemas of the tools shown to the model.
        max_new_tokens, do_sample, temperature, top_p: generation settings per turn.

    Returns:
        fn(conversations, images) -> list of generated assistant texts (special tokens removed, tool-call tags kept,
        the template's generation prefill in front).
    """
    from mmreward.agent.protocol import generation_prefill

    tokenizer = processor.tokenizer

    def generate(conversations: list[list[dict]], images: list[list]) -> list[str]:
        texts = [render(processor, msgs, tools, add_generation_prompt=True) for msgs in conversations]
        flat = [img for imgs in images for img in imgs]
        old_side = tokenizer.padding_side
        tokenizer.padding_side = "left"  # generation continues from the right end of every row
        try:
            inputs = processor(text=texts, images=flat or None, return_tensors="pt", padding=True)
        finally:
            tokenizer.padding_side = old_side
        device = next(model.parameters()).device
        inputs = {k: v.to(device) for k, v in inputs.items()}
        settings = {"max_new_tokens": max_new_tokens, "do_sample": do_sample,
                    "pad_token_id": tokenizer.pad_token_id}
        if do_sample:
            settings.update(temperature=temperature, top_p=top_p)
        with torch.no_grad():
            out = model.generate(**inputs, **settings)
        new = out[:, inputs["input_ids"].shape[1]:]
        prefill = generation_prefill(processor)
        return [prefill + tokenizer.decode(row, skip_special_tokens=True) for row in new]

    return generate


def vllm_generate_fn(llm, *, tools: list[dict] | None = None, max_new_tokens: int = 1024,
                     temperature: float = 0.0, top_p: float = 1.0):
    """A batched `generate_fn` over a `vllm.LLM` (GPU; vllm is an optional extra, imported here).

    Args:
        llm: a `vllm.LLM` built with the judge model (e.g. `LLM(model, limit_mm_per_prompt={"image": 64})`).
        tools: JSON schemas of the tools shown to the model.
        max_new_tokens, temperature, top_p: sampling settings per turn.
    """
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                            skip_special_tokens=True)

    def generate(conversations: list[list[dict]], images: list[list]) -> list[str]:
        from mmreward.agent.protocol import generation_prefill

        requests = [_vllm_messages(msgs, imgs) for msgs, imgs in zip(conversations, images)]
        outputs = llm.chat(requests, sampling_params=params, tools=tools or None, use_tqdm=False)
        prefill = generation_prefill(llm.get_tokenizer())
        return [prefill + o.outputs[0].text for o in outputs]

    return generate


def _vllm_messages(messages: list[dict], images: list) -> list[dict]:
    """Our placeholders + image list -> OpenAI-style messages with inline PIL images (vLLM's chat input)."""
    cursor = 0
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            parts = []
            for part in content:
                if part.get("type") == "image":
                    parts.append({"type": "image_pil", "image_pil": images[cursor]})
                    cursor += 1
                else:
                    parts.append(part)
            message = {**message, "content": parts}
        out.append(message)
    return out


def tokenize_trajectory(traj, processor, tools: list[dict] | None = None, family=None) -> None:
    """Fill `traj.input_ids` and `traj.loss_mask` (1 on assistant-generated tokens, 0 on prompt and tool output).

    Relies on the template being prefix-preserving: the tokens of assistant turn i are those between the rendering
    of messages[:i] (with the generation prompt, whose prefill the model did not generate) and the rendering of
    messages[:i+1], up to and including the family's end-of-turn token (the newline after it is template glue).

    Args:
        traj: the trajectory (messages, images).
        processor: the policy's processor.
        tools: the tool schemas rendered into the system turn.
        family: the policy's `Family` (turn markers); None: the Qwen markers every family uses today.
    """
    from mmreward.models.families import DEFAULT_FAMILY

    end_id = processor.tokenizer.convert_tokens_to_ids((family or DEFAULT_FAMILY).turn_end)

    def ids_of(messages, add_prompt: bool) -> list[int]:
        n = sum(1 for m in messages if isinstance(m.get("content"), list)
                for p in m["content"] if p.get("type") == "image")
        text = render(processor, messages, tools, add_generation_prompt=add_prompt)
        enc = processor(text=[text], images=traj.images[:n] or None, return_tensors="pt")
        return enc["input_ids"][0].tolist()

    full = ids_of(traj.messages, False)
    mask = [0] * len(full)
    for i, message in enumerate(traj.messages):
        if message["role"] != "assistant":
            continue
        start = len(ids_of(traj.messages[:i], True))
        end = len(ids_of(traj.messages[:i + 1], False))
        # The model generates through its end-of-turn token; what the template adds after it is glue.
        stop = next((j + 1 for j in range(end - 1, start - 1, -1) if full[j] == end_id), end)
        for j in range(start, stop):
            mask[j] = 1
    traj.input_ids, traj.loss_mask = full, mask
