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
