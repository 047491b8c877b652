"""Offline CLIP: local weight files, local open_clip folders and hub-cache folders load without a network; unknown
names, unknown tags and weights missing offline are clear errors listing what is known."""

import json
import sys

import pytest
import torch

pytest.importorskip("open_clip")

from mmreward.errors import CheckpointError, ConfigError, DependencyError  # noqa: E402
from mmreward.models.clip import ClipScorer  # noqa: E402
from mmreward.models.clip_weights import import_open_clip, resolve_open_clip  # noqa: E402
from mmreward.scoring import load_scorer  # noqa: E402

TINY = {"embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    return tmp_path / "hub-cache"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A tiny open_clip model as a downloaded hub repo is laid out: open_clip_config.json + open_clip_model.safetensors."""
    from safetensors.torch import save_model

    folder = tmp_path_factory.mktemp("tiny_open_clip")
    torch.manual_seed(0)
    scorer = ClipScorer.from_open_clip("tiny", None, model_cfg=TINY, device="cpu")
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY, "preprocess_cfg": {}}))
    save_model(scorer.model, str(folder / "open_clip_model.safetensors"))
    return folder, scorer


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_local_open_clip_folder_loads_offline(tiny_folder):
    folder, reference = tiny_folder
    assert resolve_open_clip(str(folder)) == (f"local-dir:{folder}", None)
    assert resolve_open_clip(f"local-dir:{folder}") == (f"local-dir:{folder}", None)
    scorer = load_scorer(str(folder), kind="clip", device="cpu")
    assert isinstance(scorer, ClipScorer) and _same_weights(scorer.model, reference.model)


def test_a_copied_hub_cache_repo_folder_resolves_to_its_snapshot(tiny_folder, tmp_path):
    folder, reference = tiny_folder
    repo = tmp_path / "models--timm--tiny_clip"
    snapshot = repo / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    for name in ("open_clip_config.json", "open_clip_model.safetensors"):
        (snapshot / name).write_bytes((folder / name).read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abc\n")
    assert resolve_open_clip(str(repo)) == (f"local-dir:{snapshot}", None)
    assert _same_weights(load_scorer(str(repo), kind="clip", device="cpu").model, reference.model)
    # MODEL:FOLDER takes the weights file out of a folder (or its snapshot) for a named architecture.
    assert resolve_open_clip(f"ViT-B-32:{repo}") == ("ViT-B-32", str(snapshot / "open_clip_model.safetensors"))


def test_model_colon_weights_file(tmp_path):
    weights = tmp_path / "vit.safetensors"
    weights.write_bytes(b"")
    assert resolve_open_clip(f"ViT-B-32:{weights}") == ("ViT-B-32", str(weights))
    with pytest.raises(CheckpointError, match=f"^ViT-B-32:{tmp_path}/gone.pt: {tmp_path}/gone.pt: no such file$"):
        resolve_open_clip(f"ViT-B-32:{tmp_path}/gone.pt")


def test_a_named_tag_not_cached_offline_fails_fast_naming_the_alternatives(empty_hub_cache):
    with pytest.raises(CheckpointError) as err:
        resolve_open_clip("ViT-B-32:openai")
    assert str(err.value) == (
        "ViT-B-32:openai: the weights (hub repo timm/vit_base_patch32_clip_224.openai) are not in the local Hugging "
        "Face cache and HF_HUB_OFFLINE is set, so they cannot be downloaded; give local weights instead: "
        "MODEL:/path/to/weights.safetensors, or a folder holding open_clip_config.json and the weights (README: "
        "offline CLIP weights)")
    with pytest.raises(CheckpointError, match="^hf-hub:timm/some_clip: the weights .hub repo timm/some_clip. are not"):
        resolve_open_clip("hf-hub:timm/some_clip")


def test_a_named_tag_in_the_hub_cache_passes_offline(empty_hub_cache):
    snapshot = empty_hub_cache / "models--timm--vit_base_patch32_clip_224.openai" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_model.safetensors").write_bytes(b"")
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc")
    assert resolve_open_clip("ViT-B-32:openai") == ("ViT-B-32", "openai")
    assert resolve_open_clip("ViT-B-32") == ("ViT-B-32", "openai")  # a bare name takes the openai tag


def test_unknown_architecture_and_tag_list_what_is_known():
    import open_clip

    with pytest.raises(ConfigError) as err:
        resolve_open_clip("ViT-B-33:openai")
    assert str(err.value).startswith("ViT-B-33:openai: 'ViT-B-33' is not an open_clip architecture nor an existing "
                                     "folder; did you mean ViT-B-32")
    assert f"{len(open_clip.list_models())} architectures are known" in str(err.value)
    with pytest.raises(ConfigError) as err:
        resolve_open_clip("ViT-B-32:openia")
    tags = open_clip.list_pretrained_tags_by_model("ViT-B-32")
    assert str(err.value) == (f"ViT-B-32:openia: 'openia' is not a pretrained tag of ViT-B-32 and not a file; tags "
                              f"of ViT-B-32: {', '.join(tags)}")
    assert "openai" in tags and "laion2b_s34b_b79k" in tags


def test_a_folder_without_open_clip_config(tmp_path):
    with pytest.raises(CheckpointError) as err:
        resolve_open_clip(str(tmp_path))
    assert str(err.value) == (f"{tmp_path}: not an open_clip model folder (no open_clip_config.json); for a bare "
                              "weights file give MODEL:/path/to/weights (e.g. ViT-B-32:/path/open_clip_model.safetensors)")


def test_without_open_clip_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "open_clip", None)  # makes `import open_clip` fail
    with pytest.raises(DependencyError) as err:
        import_open_clip()
    assert str(err.value) == "the CLIP scorer needs open_clip, which is not installed: pip install 'mmreward[clip]'"


def test_an_edited_clip_checkpoint_is_one_clear_error(tiny_folder, tmp_path):
    _, reference = tiny_folder
    out = reference.save_pretrained(tmp_path / "clip")
    file = out / "mmreward_config.json"
    config = json.loads(file.read_text())
    file.write_text(json.dumps({**config, "alpha": "half"}))
    with pytest.raises(CheckpointError, match=f"^{file}: 'alpha' must be float, got \"half\"$"):
        load_scorer(out)
    file.write_text(json.dumps({**config, "weights": "../elsewhere.safetensors"}))
    with pytest.raises(CheckpointError, match="'weights' must be a file name inside"):
        load_scorer(out)
    file.write_text(json.dumps(config))
    (out / "clip.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=f"^{out}/clip.safetensors: corrupt or truncated safetensors file"):
        load_scorer(out)
