"""`mmreward train <stage> --help` and config-key mistakes: every field listed, typos answered with close names."""

import pytest

from mmreward.cli import main
from mmreward.config import ConfigError, config_help, load_config
from mmreward.train.bt import BTConfig


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_train_help_lists_every_field_with_type_default_and_doc(flag, capsys):
    assert main(["train", "bt", flag]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mmreward train bt")
    # Ours first (with the comment above the field as its doc), then transformers' TrainingArguments.
    ours, trainer = out.index("BTConfig (mmreward) fields:"), out.index("transformers TrainingArguments fields:")
    assert ours < trainer
    assert "  --ties str (default 'drop')\n  --tie_k float (default 5.0)\n      Ties: \"drop\" (ignored)" in out
    assert "  --learning_rate float (default 5e-05)\n      The initial learning rate for the optimizer." in out
    # A base field we only re-default is listed under its owner, with our default.
    assert out.index("  --output_dir str (default 'outputs/bt')") > trainer
    for name in BTConfig.__dataclass_fields__:
        if BTConfig.__dataclass_fields__[name].init:
            assert f"  --{name} " in out, name


def test_help_with_a_config_file_still_prints_help(capsys):
    assert main(["train", "sft", "--config", "launch/configs/tiny_cpu/sft.yaml", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.index("SFTConfig (mmreward) fields:") < out.index("trl SFTConfig fields:") < out.index(
        "transformers TrainingArguments fields:")


def test_config_help_documents_mixin_fields():
    text = config_help(BTConfig, "mmreward train bt")
    assert "  --lora_r int (default 0)\n  --lora_alpha int (default 32)\n" in text
    assert "LoRA rank; 0 trains all weights." in text


def test_flag_typo_is_blamed_on_the_flag_with_three_close_names(tmp_path):
    config = tmp_path / "bt.yaml"
    config.write_text("model: m\ntrain_data: d.jsonl\n")
    with pytest.raises(ConfigError) as err:
        load_config(BTConfig, config, ["--lerning_rate", "1e-3"])
    assert str(err.value) == ("--lerning_rate: unknown flag; did you mean --learning_rate, --logging_strategy, "
                              "--logging_steps? (--help lists every key)")


def test_yaml_typo_is_blamed_on_the_file(tmp_path):
    config = tmp_path / "bt.yaml"
    config.write_text("model: m\ntrain_data: d.jsonl\nlerning_rate: 1.0e-3\n")
    with pytest.raises(ConfigError, match=r"^.*bt\.yaml: lerning_rate: unknown config key; did you mean "
                                          r"learning_rate, "):
        load_config(BTConfig, config, [])


def test_bad_value_names_the_flag_and_refusals_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"^--learning_rate: expected float, got 'abc'$"):
        load_config(BTConfig, None, ["--model", "m", "--train_data", "d", "--learning_rate", "abc"])
    with pytest.raises(ConfigError, match="ties must be 'drop' or 'rao_kupper'"):
        load_config(BTConfig, None, ["--model", "m", "--train_data", "d", "--ties", "maybe", "--use_cpu", "true"])
    with pytest.raises(ConfigError, match="nope.yaml: no such config file"):
        load_config(BTConfig, tmp_path / "nope.yaml", [])


def test_cli_exit_code_2_for_a_flag_typo(capsys):
    assert main(["train", "bt", "--model", "m", "--train_data", "d", "--lerning_rate", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmreward train bt: error: --lerning_rate: unknown flag; did you mean --learning_rate")
    assert "Traceback" not in err
    assert main(["train", "bt", "--model", "m", "--train_data", "d", "--use_cpu", "true", "--save_strategy",
                 "nope"]) == 2
    assert capsys.readouterr().err == ("mmreward train bt: error: flags: nope is not a valid SaveStrategy, please select "
                                       "one of ['no', 'steps', 'epoch', 'best']\n")


def test_flags_for_text_fields_keep_the_text_typed():
    # YAML would read `no` as False and `123` as a number; a text field gets what was typed.
    cfg = load_config(BTConfig, None, ["--model", "m", "--train_data", "d", "--save_strategy", "no", "--use_cpu",
                                       "true", "--run_name", "123", "--eval_data", "null"])
    assert cfg.save_strategy == "no" and cfg.run_name == "123" and cfg.eval_data is None
    with pytest.raises(ConfigError, match=r"^--dimensions: '\[VQ' is not a valid value"):
        load_config(BTConfig, None, ["--model", "m", "--train_data", "d", "--dimensions", "[VQ"])
