"""The CLI's error contract: a user mistake is one message on stderr and exit code 2, never a traceback (-v shows
it); Ctrl-C is exit 130 with, for training, the last complete checkpoint and the resume command; a bug shows its
traceback."""

import functools
import importlib.util
import json
import logging
import shlex
import subprocess
import sys

import pytest
from testkit import make_pair
from transformers import TrainerCallback

from mmreward import cli
from mmreward.cli import main

HUB_ID = "Qwen/Qwen2.5-VL-7B-Instruct"
OFFLINE = (f"{HUB_ID}: no such folder, and not a model in the local Hugging Face cache; HF_HUB_OFFLINE is set, so "
           "it was not downloaded. Give a local model folder, or download it where the network is reachable (unset "
           "HF_HUB_OFFLINE)")


@pytest.fixture(autouse=True)
def _drop_cli_log_handlers():
    """main() points the root logger at this test's captured stdout; later tests must not log into it."""
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if type(h) is logging.StreamHandler]:
        root.removeHandler(handler)


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache, so no hub model is available offline whatever this machine has cached."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))


@pytest.fixture
def pairs(scoring_media):
    path = scoring_media / "cli_errors_pairs.jsonl"
    rows = [make_pair("p0", "i0.png", "i1.png", label="A"), make_pair("p1", "i1.png", "i2.png", label="B"),
            make_pair("p2", "i2.png", "i0.png", label="A"), make_pair("p3", "i0.png", "i2.png", label="B")]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _train(tmp_path, pairs, model, *extra):
    return ["train", "bt", "--model", str(model), "--train_data", str(pairs), "--output_dir", str(tmp_path / "out"),
            "--max_steps", "1", "--use_cpu", "true", "--disable_tqdm", "true", *extra]


def _run(capsys, argv):
    capsys.readouterr()  # drop what building fixtures printed (progress bars)
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    # Progress logs share stderr with the error; the message starts at the "mmreward <cmd>: error:" line.
    start = next((i for i, line in enumerate(lines) if line.startswith("mmreward ") and ": error: " in line), 0)
    return code, lines[start:]


# (name, argv builder, exact first line of stderr); every row exits with code 2.
USER_MISTAKES = [
    ("missing model folder",
     lambda t, p, c: _train(t, p, t / "ckpts" / "nope"),
     "mmreward train bt: error: {tmp}/ckpts/nope: no such folder"),
    ("hub id while offline",
     lambda t, p, c: _train(t, p, HUB_ID),
     f"mmreward train bt: error: {OFFLINE}"),
    ("a file as the model",
     lambda t, p, c: _train(t, p, p),
     "mmreward train bt: error: {pairs}: is a file; give the model folder (the one holding config.json)"),
    ("a folder that is not a model",
     lambda t, p, c: _train(t, p, t),
     "mmreward train bt: error: {tmp}: not a model folder: no mmreward_config.json (mmreward checkpoint) and no "
     "config.json (transformers model)"),
]


@pytest.mark.parametrize("name, build, first_line", USER_MISTAKES, ids=[row[0] for row in USER_MISTAKES])
def test_user_mistakes_are_one_line_and_exit_2(name, build, first_line, tmp_path, pairs, tiny_checkpoint, capsys,
                                                empty_hub_cache):
    code, lines = _run(capsys, build(tmp_path, pairs, tiny_checkpoint))
    assert code == 2
    assert lines[0] == first_line.format(tmp=tmp_path, pairs=pairs)


@pytest.mark.skipif(importlib.util.find_spec("flash_attn") is not None, reason="flash-attn is installed")
def test_flash_attention_without_flash_attn_names_the_extra(tmp_path, pairs, tiny_checkpoint, capsys):
    argv = _train(tmp_path, pairs, tiny_checkpoint("qwen2_5_vl"), "--attn_implementation", "flash_attention_2")
    code, lines = _run(capsys, argv)
    assert code == 2
    assert lines == ["mmreward train bt: error: attn_implementation 'flash_attention_2' needs flash-attn, which is "
                     "not installed: pip install 'mmreward[gpu]' (CUDA only), or use attn_implementation sdpa"]


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is not None, reason="deepspeed is installed")
def test_deepspeed_config_without_deepspeed_names_the_extra(tmp_path, pairs, tiny_checkpoint, capsys):
    ds = tmp_path / "ds.json"
    ds.write_text(json.dumps({"zero_optimization": {"stage": 2}}))
    argv = _train(tmp_path, pairs, tiny_checkpoint("qwen2_5_vl"), "--deepspeed", str(ds))
    code, lines = _run(capsys, argv)
    assert code == 2
    assert lines == ["mmreward train bt: error: deepspeed is needed here but not installed: pip install "
                     "'mmreward[gpu]' (or pip install deepspeed)"]


# `mmreward score` catches load errors itself and exits 1 (owner: the scoring CLI); the contract says 2.
SCORE_MISTAKES = [
    ("missing model folder", lambda t: ["--model", str(t / "nope")], "{tmp}/nope: no such folder"),
    ("clip weights offline", lambda t: ["--scorer", "clip", "--model", "ViT-B-32:openai"],
     "ViT-B-32:openai: the weights (hub repo timm/vit_base_patch32_clip_224.openai) are not in the local Hugging "
     "Face cache and HF_HUB_OFFLINE is set, so they cannot be downloaded; give local weights instead: "
     "MODEL:/path/to/weights.safetensors, or a folder holding open_clip_config.json and the weights (README: "
     "offline CLIP weights)"),
]


@pytest.mark.parametrize("name, flags, message", SCORE_MISTAKES, ids=[row[0] for row in SCORE_MISTAKES])
def test_score_model_mistakes_exit_2(name, flags, message, tmp_path, scoring_media, capsys, empty_hub_cache):
    pytest.importorskip("open_clip")
    argv = ["score", *flags(tmp_path), "--prompt", "x", str(scoring_media / "i0.png"), "--no-progress"]
    code, lines = _run(capsys, argv)
    assert lines[0] == f"mmreward score: error: {message.format(tmp=tmp_path)}"
    assert code == 2


def test_a_missing_extra_module_is_a_user_error_but_a_broken_import_is_a_bug(monkeypatch, capsys):
    def needs_open_clip(args):
        raise ModuleNotFoundError("No module named 'open_clip'", name="open_clip")

    monkeypatch.setattr(cli.commands, "cmd_tiny", needs_open_clip)
    code, lines = _run(capsys, ["tiny", "--out", "x"])
    assert code == 2 and lines == ["mmreward tiny: error: open-clip-torch is needed here but not installed: pip "
                                   "install 'mmreward[clip]' (or pip install open-clip-torch)"]

    def broken_import(args):
        raise ImportError("cannot import name 'nothing' from 'open_clip'", name="open_clip")

    monkeypatch.setattr(cli.commands, "cmd_tiny", broken_import)
    with pytest.raises(ImportError, match="cannot import name"):
        main(["tiny", "--out", "x"])


def test_a_bad_flag_is_argparse_exit_2_without_traceback(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["score", "--model", "m", "--on-error", "maybe"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("mmreward score: error: argument --on-error: invalid choice: 'maybe'")


@pytest.mark.parametrize("where", ["first", "last"])
def test_verbose_shows_the_traceback_then_the_message(where, tmp_path, pairs, capsys):
    argv = _train(tmp_path, pairs, tmp_path / "nope")
    code = main(["-v", *argv] if where == "first" else [*argv, "-v"])
    err = capsys.readouterr().err
    assert code == 2
    assert "\nTraceback (most recent call last)" in err and "CheckpointError" in err
    assert err.splitlines()[-1] == f"mmreward train bt: error: {tmp_path}/nope: no such folder"


def test_a_bug_shows_its_traceback(monkeypatch):
    def broken(args):
        return 1 // 0

    monkeypatch.setattr(cli.commands, "cmd_tiny", broken)
    with pytest.raises(ZeroDivisionError):
        main(["tiny", "--out", "x"])


def test_ctrl_c_outside_training_is_a_short_note_and_exit_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.commands, "cmd_tiny", interrupted)
    code, lines = _run(capsys, ["tiny", "--out", "x"])
    assert code == 130 and lines == ["mmreward tiny: interrupted"]


class InterruptAt(TrainerCallback):
    """Raises KeyboardInterrupt at the end of a step, as Ctrl-C would."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def test_ctrl_c_in_training_names_the_checkpoint_and_a_resume_command_that_works(tmp_path, pairs, tiny_checkpoint,
                                                                                  monkeypatch, capsys):
    from mmreward.train import bt
    from mmreward.train.bt import COMPLETE_MARKER

    out = tmp_path / "out"
    argv = _train(tmp_path, pairs, tiny_checkpoint("qwen2_5_vl"), "--max_steps", "4", "--save_steps", "2",
                  "--per_device_train_batch_size", "2", "--logging_steps", "1", "--dataloader_num_workers", "0")
    original = bt.train
    monkeypatch.setattr(bt, "train", functools.partial(original, callbacks=[InterruptAt(3)]))
    code, lines = _run(capsys, argv)
    assert code == 130
    assert lines[-2:] == [f"mmreward train bt: interrupted; the last complete checkpoint is {out}/checkpoint-2",
                          f"resume with: {shlex.join(['mmreward', *argv, '--resume_from_checkpoint', 'latest'])}"]
    assert (out / "checkpoint-2" / COMPLETE_MARKER).is_file()
    # The printed command, run as printed, finishes the run from checkpoint-2.
    monkeypatch.setattr(bt, "train", original)
    assert main(shlex.split(lines[-1].removeprefix("resume with: "))[1:]) == 0
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4 and (out / "mmreward_config.json").is_file()


def test_ctrl_c_before_the_first_checkpoint_says_so(tmp_path, pairs, tiny_checkpoint, monkeypatch, capsys):
    from mmreward.train import bt

    argv = _train(tmp_path, pairs, tiny_checkpoint("qwen2_5_vl"), "--max_steps", "3", "--save_steps", "2")
    monkeypatch.setattr(bt, "train", functools.partial(bt.train, callbacks=[InterruptAt(1)]))
    code, lines = _run(capsys, argv)
    assert code == 130
    assert lines[-1] == (f"mmreward train bt: interrupted before any checkpoint in {tmp_path / 'out'} was complete; "
                         "run the same command again to start over")


def test_console_script_user_mistake_exit_2_without_traceback(tmp_path, pairs):
    argv = _train(tmp_path, pairs, tmp_path / "nope")
    done = subprocess.run([sys.executable, "-m", "mmreward.cli", *argv], capture_output=True, text=True,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == f"mmreward train bt: error: {tmp_path}/nope: no such folder"
