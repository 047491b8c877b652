"""Small helpers shared by tests (importable because pytest puts tests/ on sys.path)."""


def make_pair(pid, a, b, label="A", prompt="a square moving right", shared=None, **extra):
    """A pair record dict; a/b are media file names (generation pair) or {"text": ...} dicts."""
    def side(x):
        if isinstance(x, dict):
            return x
        kind = "image" if x.endswith(".png") else "video"
        return {"media": [{"type": kind, "path": x}]}

    record = {"id": pid, "prompt": prompt, "a": side(a), "b": side(b), "label": label, **extra}
    if shared:
        record["media"] = [{"type": "image" if shared.endswith(".png") else "video", "path": shared}]
    return record


def record_logp_passes(monkeypatch, trainer_cls) -> list[dict]:
    """Patch `trainer_cls._get_per_token_logps_and_entropies` to record each log-prob pass's inputs (input_ids, the
    model's image token id, and the keyword arguments such as pixel_values); returns the list it fills."""
    calls = []
    original = trainer_cls._get_per_token_logps_and_entropies

    def spy(self, model, input_ids, *args, **kwargs):
        calls.append({"input_ids": input_ids, "image_token_id": model.config.image_token_id, **kwargs})
        return original(self, model, input_ids, *args, **kwargs)

    monkeypatch.setattr(trainer_cls, "_get_per_token_logps_and_entropies", spy)
    return calls


def two_episode_script(tool, arguments, verdicts) -> dict:
    """Turns of two GRPO episodes keyed by (episode, assistant turn): episode 0 calls `tool` (Hermes) then answers
    `verdicts[0]`; episode 1 answers `verdicts[1]` at once."""
    import json

    from mmreward.agent.protocol import render_tool_call

    call = "<think>look\n</think>\n\n" + render_tool_call(tool, arguments, "hermes")
    answer = "<think>{}\n</think>\n\n<answer>{}</answer>"
    return {(0, 1): call, (0, 2): answer.format("seen", json.dumps(verdicts[0])),
            (1, 1): answer.format("quick", json.dumps(verdicts[1]))}


def scripted_generation(script, original, seen=None):
    """A `GRPOTrainer._generate_single_turn` that runs TRL's real generation on the real inputs, then answers from
    `script` (keyed by (episode, assistant turn)); `seen` (a list) collects each turn's images per episode."""

    def turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        original(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images)
        if seen is not None:
            seen.extend(list(imgs or []) for imgs in images or [])
        out = []
        for i, ids in enumerate(prompt_ids):
            n = self._tokenizer.decode(ids).count("<|im_start|>assistant\n")
            out.append(self._tokenizer.encode(script[(i % 2 if n == 1 else 0, n)] + "<|im_end|>",
                                              add_special_tokens=False))
        return out, None

    return turn
