"""Where open_clip weights come from: named tags, local weight files, local folders, offline hub caches.

`mmreward score --scorer clip --model SPEC` accepts, and `resolve_open_clip(SPEC)` turns into open_clip's
`(model_name, pretrained)`:

    ViT-B-32:openai                      architecture + pretrained tag (downloaded, or read from the HF cache)
    ViT-B-32                             the "openai" tag when open_clip has one for it, else random weights
    ViT-B-32:/path/to/weights.safetensors   a local weights file (.safetensors, .bin, .pt, .pth) for the
                                         architecture; preprocessing is the architecture's default
    /path/to/folder  or  local-dir:/path/to/folder
                                         a downloaded open_clip hub repo (open_clip_config.json + weights), e.g.
                                         `huggingface-cli download timm/vit_base_patch32_clip_224.openai
                                         --local-dir /path/to/folder`; config and preprocessing come with it
    /path/to/models--timm--vit_base_patch32_clip_224.openai
                                         a repo folder of a Hugging Face hub cache (copied from another machine)
    hf-hub:timm/vit_base_patch32_clip_224.openai   a hub repo (downloaded, or read from the HF cache)

Offline (HF_HUB_OFFLINE=1), a tag or hf-hub name must already be in the Hugging Face cache (HF_HUB_CACHE);
otherwise the error says so at once and names the local alternatives. Unknown architectures and tags are
checked against `open_clip.list_models()` / `open_clip.list_pretrained()` at call time, and the error lists the
known tags. open_clip is imported inside functions only (extra ``clip``).
"""

from __future__ import annotations

import difflib
from pathlib import Path

from mmreward.errors import CheckpointError, ConfigError, DependencyError

# Weight file names of open_clip hub repos, in open_clip's order of preference.
HUB_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
LOCAL_HELP = ("give local weights instead: MODEL:/path/to/weights.safetensors, or a folder holding "
              "open_clip_config.json and the weights (README: offline CLIP weights)")


def import_open_clip():
    """open_clip, or a DependencyError naming the extra that installs it."""
    try:
        import open_clip
    except ModuleNotFoundError as err:
        if err.name != "open_clip":
            raise
        raise DependencyError("the CLIP scorer needs open_clip, which is not installed: "
                              "pip install 'mmreward[clip]'") from None
    return open_clip


def resolve_open_clip(spec: str) -> tuple[str, str | None]:
    """Check a CLIP model spec and turn it into open_clip's (model_name, pretrained).

    Args:
        spec: one of the forms in the module docstring.

    Returns:
        (model_name, pretrained): a "local-dir:"/"hf-hub:" name with pretrained None, or an architecture with a
        tag, a local weights file, or None (random weights).

    Raises:
        CheckpointError: a missing file or folder; weights that are not in the local cache while offline.
        ConfigError: an unknown architecture or tag (the message lists the known ones).
        DependencyError: open_clip is not installed.
    """
    if spec.startswith("local-dir:"):
        return _local_dir(Path(spec[len("local-dir:"):]).expanduser(), spec), None
    if spec.startswith("hf-hub:"):
        _check_hub(spec[len("hf-hub:"):], HUB_WEIGHTS, spec)
        return spec, None
    if Path(spec).expanduser().is_dir():
        return _local_dir(Path(spec).expanduser(), spec), None
    name, _, pretrained = spec.partition(":")
    open_clip = import_open_clip()
    if name.replace("/", "-") not in open_clip.list_models():
        raise ConfigError(_unknown_model(name, open_clip.list_models(), spec))
    tags = open_clip.list_pretrained_tags_by_model(name)
    if not pretrained:
        return name, "openai" if "openai" in tags else None
    if _looks_like_path(pretrained):
        return name, _weights_file(Path(pretrained).expanduser(), spec)
    if pretrained not in tags:
        known = ", ".join(tags) if tags else "none (use a local weights file)"
        raise ConfigError(f"{spec}: {pretrained!r} is not a pretrained tag of {name} and not a file; tags of {name}: "
                          f"{known}")
    hub = open_clip.get_pretrained_cfg(name, pretrained).get("hf_hub", "")
    if hub:
        repo, filename = _split_hub(hub)
        _check_hub(repo, (filename,) if filename else HUB_WEIGHTS, spec)
    return name, pretrained


def _split_hub(hub: str) -> tuple[str, str]:
    """open_clip's "org/repo/" (default file) or "org/repo/file.bin" into (repo id, file name or "")."""
    parts = hub.split("/")
    return "/".join(parts[:2]), "/".join(parts[2:])


def _looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or text.endswith(WEIGHT_SUFFIXES) or Path(text).expanduser().exists()


def _weights_file(path: Path, spec: str) -> str:
    """A weights file given directly, or the one weights file in a folder (a hub repo or hub-cache folder)."""
    if path.is_file():
        return str(path)
    if path.is_dir():
        folder = _snapshot(path) or path
        for name in HUB_WEIGHTS:
            if (folder / name).is_file():
                return str(folder / name)
        found = sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES)
        if len(found) == 1:
            return str(found[0])
        raise CheckpointError(f"{spec}: {path} holds {len(found)} weight files ({', '.join(WEIGHT_SUFFIXES)}); "
                              "give the file itself")
    raise CheckpointError(f"{spec}: {path}: no such file")


def _snapshot(folder: Path) -> Path | None:
    """The newest snapshot of a hub-cache repo folder (models--org--name/snapshots/<hash>), if it is one."""
    snapshots = folder / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = folder / "refs" / "main"
    if ref.is_file() and (snapshots / ref.read_text().strip()).is_dir():
        return snapshots / ref.read_text().strip()
    found = sorted((p for p in snapshots.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def _local_dir(folder: Path, spec: str) -> str:
    """"local-dir:FOLDER" for a folder with open_clip_config.json (or a hub-cache repo folder holding one)."""
    if not folder.is_dir():
        raise CheckpointError(f"{spec}: no such folder")
    folder = _snapshot(folder) or folder
    if not (folder / "open_clip_config.json").is_file():
        raise CheckpointError(f"{spec}: not an open_clip model folder (no open_clip_config.json); for a bare weights "
                              "file give MODEL:/path/to/weights (e.g. ViT-B-32:/path/open_clip_model.safetensors)")
    return f"local-dir:{folder}"


def _check_hub(repo: str, filenames: tuple[str, ...], spec: str) -> None:
    """Fail fast when a hub repo's weights are not cached and downloads are off (open_clip would retry, then fail
    with a message that does not say why)."""
    from huggingface_hub import try_to_load_from_cache

    from mmreward.models.backbone import hub_offline

    if not hub_offline():
        return
    for filename in filenames:
        try:
            if isinstance(try_to_load_from_cache(repo, filename), str):
                return
        except ValueError:  # not a valid repo id
            break
    raise CheckpointError(f"{spec}: the weights (hub repo {repo}) are not in the local Hugging Face cache and "
                          f"HF_HUB_OFFLINE is set, so they cannot be downloaded; {LOCAL_HELP}")


def _unknown_model(name: str, models: list[str], spec: str) -> str:
    close = difflib.get_close_matches(name, models, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return (f"{spec}: {name!r} is not an open_clip architecture nor an existing folder; {hint}"
            f"{len(models)} architectures are known (python -c \"import open_clip; print(open_clip.list_pretrained())\" "
            "lists them with their tags)")


def load_failure(spec: str, err: BaseException) -> CheckpointError:
    """A clear error for open_clip's own failure to fetch or read weights (its message does not say what to do)."""
    lines = str(err).strip().splitlines()
    detail = lines[0][:300] if lines else type(err).__name__
    return CheckpointError(f"{spec}: open_clip could not load the weights ({detail}); {LOCAL_HELP}")
