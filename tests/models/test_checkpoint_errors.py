"""Checkpoints that fail clearly: an interrupted save is refused, and every corrupt, edited, partial or mismatched
checkpoint and every wrong model path is one CheckpointError naming the file and what is wrong."""

import json
import shutil

import pytest
import torch

from mmreward.errors import CheckpointError, DependencyError
from mmreward.models.backbone import load_vlm, resolve_attn_implementation, resolve_model
from mmreward.models.reward_model import RewardModel
from mmreward.scoring import SCORERS, load_scorer

HUB_ID = "Qwen/Qwen2.5-VL-7B-Instruct"


@pytest.fixture(scope="module")
def saved(tiny_checkpoint, tmp_path_factory):
    """name -> a pristine saved checkpoint: "full" (head model) and "lora" (adapter + trainable.safetensors)."""
    root = tmp_path_factory.mktemp("saved")
    torch.manual_seed(0)
    RewardModel.build(tiny_checkpoint("qwen2_5_vl")).save_pretrained(root / "full")
    RewardModel.build(tiny_checkpoint("qwen2_5_vl"), lora={"r": 4, "alpha": 8}).save_pretrained(root / "lora")
    return {"full": root / "full", "lora": root / "lora"}


def _copy(saved, kind, tmp_path):
    return shutil.copytree(saved[kind], tmp_path / kind)


def _edit_config(ckpt, **changes):
    file = ckpt / "mmreward_config.json"
    config = json.loads(file.read_text())
    for key, value in changes.items():
        if value is KeyError:
            del config[key]
        else:
            config[key] = value
    file.write_text(json.dumps(config))
    return file


def test_a_save_killed_after_the_backbone_is_refused_and_a_new_save_repairs_it(tiny_checkpoint, tmp_path,
                                                                                monkeypatch):
    import safetensors.torch

    out = tmp_path / "ckpt"
    RewardModel.build(tiny_checkpoint("qwen2_5_vl")).save_pretrained(out)
    assert isinstance(load_scorer(out), RewardModel)  # a complete save loads
    # Save again over it, killed after the new backbone is written, while writing the head (issue 11 item 9).
    real = safetensors.torch.save_file

    def killed(tensors, filename, *args, **kwargs):
        if str(filename).endswith("head.safetensors"):
            raise OSError("killed")
        return real(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(safetensors.torch, "save_file", killed)
    other = RewardModel.build(tiny_checkpoint("qwen2_5_vl"))
    with pytest.raises(OSError, match="killed"):
        other.save_pretrained(out)
    assert (out / "backbone" / "model.safetensors").is_file() and not (out / "mmreward_config.json").exists()
    with pytest.raises(CheckpointError) as err:
        load_scorer(out)
    assert str(err.value) == (f"{out}: incomplete checkpoint: mmreward_config.json, which every save writes last, "
                              "is missing, so the save was interrupted; save the model again")
    monkeypatch.setattr(safetensors.torch, "save_file", real)
    other.save_pretrained(out)
    loaded = load_scorer(out)
    assert all(torch.equal(a, b) for a, b in zip(loaded.head.state_dict().values(), other.head.state_dict().values()))


def test_an_interrupted_final_save_points_at_the_last_complete_training_checkpoint(saved, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(saved["full"], run / "checkpoint-4")
    shutil.copytree(saved["full"], run / "checkpoint-2")
    (run / "checkpoint-6").mkdir()  # half-written: no config
    shutil.copytree(saved["full"] / "backbone", run / "backbone")  # the final save, killed after the backbone
    with pytest.raises(CheckpointError) as err:
        load_scorer(run)
    assert str(err.value) == (f"{run}: incomplete checkpoint: mmreward_config.json, which every save writes last, is "
                              f"missing, so the save was interrupted; the last complete training checkpoint here is "
                              f"{run / 'checkpoint-4'}: score that, or resume training with --resume_from_checkpoint "
                              "latest")


def test_a_new_save_removes_the_parts_of_an_older_one(saved, tiny_checkpoint, tmp_path):
    out = _copy(saved, "lora", tmp_path)
    RewardModel.build(tiny_checkpoint("qwen2_5_vl")).save_pretrained(out)
    assert (out / "backbone").is_dir()
    assert not (out / "adapter").exists() and not (out / "trainable.safetensors").exists()
    (out / "notes.txt").write_text("mine")
    RewardModel.build(tiny_checkpoint("qwen2_5_vl")).save_pretrained(out)
    assert (out / "notes.txt").read_text() == "mine"  # only a save's own parts are replaced


CORRUPT = [("full", "backbone/model.safetensors"), ("full", "head.safetensors"),
           ("lora", "adapter/adapter_model.safetensors"), ("lora", "trainable.safetensors")]


@pytest.mark.parametrize("kind, name", CORRUPT, ids=[name for _, name in CORRUPT])
@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_safetensors_name_the_file(saved, tmp_path, kind, name, damage):
    ckpt = _copy(saved, kind, tmp_path)
    file = ckpt / name
    data = file.read_bytes()
    file.write_bytes(data[: len(data) * 9 // 10] if damage == "truncated" else b"not safetensors at all")
    with pytest.raises(CheckpointError) as err:
        load_scorer(ckpt)
    reason = ("incomplete metadata, file not fully covered" if damage == "truncated" else "header too large")
    assert str(err.value) == (f"{file}: corrupt or truncated safetensors file (Error while deserializing header: "
                              f"{reason}); copy it again or save the model again")


EDITS = [
    ("bad json", None, "not valid JSON (Expecting ',' delimiter at line 1, column 19); undo the edit, or save the "
                       "model again"),
    ("missing key", {"backbone": KeyError}, "missing key(s) 'backbone'; undo the edit, or save the model again"),
    ("wrong type", {"dimensions": "overall"}, "'dimensions' must be list[str], got \"overall\""),
    ("wrong type in a union", {"head_inner_size": "big"}, "'head_inner_size' must be int | None, got \"big\""),
    ("bool is not an int", {"format_version": True}, "'format_version' must be int, got true"),
    ("unknown key", {"heads": 2}, "unknown key(s) 'heads'; the file was edited or written by a newer mmreward"),
    ("unknown head", {"head": "three_layer"}, "head 'three_layer' unknown; choose one of two_layer, linear"),
    ("broken media", {"media": {"video": {}}}, "'media' lacks the key 'image_min_pixels'; undo the edit, or save the "
                                               "model again"),
    ("unknown scorer", {"scorer": "magic"}, f"'scorer' must be one of {', '.join(SCORERS)}, got 'magic'; "
                                            "undo the edit, or save the model again"),
    ("not an object", [], "must hold a JSON object of scorer settings, not a list"),
]


@pytest.mark.parametrize("name, change, message", EDITS, ids=[row[0] for row in EDITS])
def test_an_edited_config_is_one_clear_error(saved, tmp_path, name, change, message):
    ckpt = _copy(saved, "full", tmp_path)
    file = ckpt / "mmreward_config.json"
    if change is None:
        file.write_text('{"scorer": "head" "backbone": 1}')
    elif isinstance(change, list):
        file.write_text("[]")
    else:
        _edit_config(ckpt, **change)
    with pytest.raises(CheckpointError) as err:
        load_scorer(ckpt)
    assert str(err.value) == f"{file}: {message}"


def test_more_dimensions_than_the_saved_head_has_names_the_head_file(saved, tmp_path):
    ckpt = _copy(saved, "full", tmp_path)
    _edit_config(ckpt, dimensions=["VQ", "MQ"])
    with pytest.raises(CheckpointError) as err:
        load_scorer(ckpt)
    assert str(err.value).startswith(f"{ckpt / 'head.safetensors'}: does not fit this model (size mismatch for ")
    assert str(err.value).endswith("; was it copied from another checkpoint?")


def test_a_missing_part_is_named(saved, tmp_path):
    ckpt = _copy(saved, "full", tmp_path)
    shutil.rmtree(ckpt / "backbone")
    with pytest.raises(CheckpointError) as err:
        load_scorer(ckpt)
    assert str(err.value) == (f"{ckpt / 'backbone'}: missing, although {ckpt / 'mmreward_config.json'} says it is "
                              "there; the checkpoint was copied only in part: copy it again or save the model again")


def test_folders_that_are_not_checkpoints(tiny_checkpoint, tmp_path):
    vlm = tiny_checkpoint("qwen2_5_vl")
    with pytest.raises(CheckpointError) as err:
        load_scorer(vlm, kind="head")
    assert str(err.value) == (f"{vlm}: a transformers model, not a mmreward checkpoint (no mmreward_config.json); "
                              "score it as a plain VLM (--scorer yes_token or judge)")
    with pytest.raises(CheckpointError) as err:
        load_scorer(tmp_path)
    assert str(err.value) == (f"{tmp_path}: not a model folder: no mmreward_config.json (mmreward checkpoint) and no "
                              "config.json (transformers model)")
    with pytest.raises(CheckpointError, match=f"^{tmp_path / 'nope'}: no such folder$"):
        load_scorer(tmp_path / "nope", kind="head")


def test_model_paths_are_checked_before_transformers(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    (tmp_path / "ckpts").mkdir()
    with pytest.raises(CheckpointError, match=f"^{tmp_path}/ckpts/nope: no such folder$"):
        resolve_model(tmp_path / "ckpts" / "nope")
    with pytest.raises(CheckpointError, match="^./nope: no such folder$"):
        resolve_model("./nope")
    with pytest.raises(CheckpointError) as err:
        resolve_model(HUB_ID)
    assert str(err.value) == (f"{HUB_ID}: no such folder, and not a model in the local Hugging Face cache; "
                              "HF_HUB_OFFLINE is set, so it was not downloaded. Give a local model folder, or download "
                              "it where the network is reachable (unset HF_HUB_OFFLINE)")
    # A hub id in the local cache passes, offline too.
    snapshot = tmp_path / "cache" / "models--Qwen--Qwen2.5-VL-7B-Instruct" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc")
    assert resolve_model(HUB_ID) == HUB_ID


def test_an_unsupported_model_type_is_named(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    with pytest.raises(CheckpointError) as err:
        load_vlm(tmp_path)
    assert str(err.value) == (f"{tmp_path}: model type 'bert' is not supported; supported: qwen2_vl, qwen2_5_vl, "
                              "qwen3_vl, qwen3_5, qwen3_5_moe, internvl, llava_onevision")


def test_a_checkpoint_is_not_a_plain_vlm(saved):
    with pytest.raises(CheckpointError) as err:
        load_vlm(saved["full"])
    assert str(err.value) == (f"{saved['full']}: a mmreward checkpoint, not a plain VLM folder; load it with "
                              "mmreward.scoring.load_scorer (mmreward score --model DIR), or give its backbone/ folder")


def test_a_yes_token_checkpoint_with_an_edited_mode(tiny_checkpoint, tmp_path):
    from mmreward.models.yes_token import YesTokenScorer

    out = YesTokenScorer.from_vlm(tiny_checkpoint("qwen2_5_vl")).save_pretrained(tmp_path / "yes")
    file = _edit_config(out, mode="sideways")
    with pytest.raises(CheckpointError) as err:
        load_scorer(out)
    assert str(err.value) == f"{file}: mode must be 'pointwise' or 'pairwise', got 'sideways'"


@pytest.mark.parametrize("attn", ["flash_attention_2", "flash_attention_3"])
def test_flash_attention_without_the_package_names_the_extra(attn, monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(DependencyError) as err:
        resolve_attn_implementation(attn)
    assert str(err.value) == (f"attn_implementation {attn!r} needs flash-attn, which is not installed: pip install "
                              "'mmreward[gpu]' (CUDA only), or use attn_implementation sdpa")
    assert resolve_attn_implementation("sdpa") == "sdpa"
