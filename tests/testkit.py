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
