"""`mmreward score --scorer judge --judge-template NAME --judge-tools T1,T2|none`: the judge prompts with the named
template and offers the named tools (none: no tool paragraph, no schemas); an unknown name is an error naming the
close ones; either flag on a scorer that is not a judge is an error, not ignored."""

import json

import pytest
from testkit import make_pair

from mmreward.cli import main


def _pairs(tmp_path, scoring_media):
    path = tmp_path / "pairs.jsonl"
    record = make_pair("r", {"text": "a cross"}, {"text": "the digit seven"}, shared=str(scoring_media / "i0.png"),
                       prompt="What does this image present?")
    path.write_text(json.dumps(record) + "\n")
    return path


def test_unknown_judge_template_names_the_close_ones(tmp_path, scoring_media, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["score", "--model", "x", "--input", str(_pairs(tmp_path, scoring_media)), "--scorer", "judge",
              "--judge-template", "llava_critc_pairwise"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "unknown judge template 'llava_critc_pairwise'; did you mean llava_critic_pairwise" in err
    assert "known: " in err and "unifiedreward_think_image" in err


def test_score_prompts_the_judge_with_the_named_template(tmp_path, scoring_media, tiny_checkpoint, monkeypatch,
                                                         scripted_generation):
    from mmreward.agent.judge_scorer import JudgeScorer

    seen = []
    original = JudgeScorer.conversation

    def conversation(self, record):
        messages, images, name = original(self, record)
        seen.append((name, messages[-1]["content"][-1]["text"]))
        return messages, images, name

    monkeypatch.setattr(JudgeScorer, "conversation", conversation)
    out = tmp_path / "scores.jsonl"
    code = main(["score", "--model", str(tiny_checkpoint("llava_onevision")), "--input",
                 str(_pairs(tmp_path, scoring_media)), "--scorer", "judge", "--judge-template",
                 "llava_critic_pairwise", "--output", str(out), "--on-error", "skip", "--no-progress"])
    # The scripted answer is no critic verdict: the record is a reported parse failure (exit 3), judged with the
    # template.
    assert code == 3
    assert seen and seen[0][0] == "llava_critic_pairwise"
    assert seen[0][1].startswith("Given an image and a corresponding question, please serve as an unbiased")
    assert "The first response: [a cross]\nThe second response: [the digit seven]\nASSISTANT:\n" in seen[0][1]


def test_judge_template_on_a_scorer_that_is_not_a_judge_is_an_error(tmp_path, scoring_media, tiny_checkpoint,
                                                                    capsys):
    code = main(["score", "--model", str(tiny_checkpoint("llava_onevision")), "--input",
                 str(_pairs(tmp_path, scoring_media)), "--scorer", "yes_token", "--judge-template",
                 "llava_critic_pairwise", "--output", str(tmp_path / "s.jsonl"), "--no-progress"])
    assert code == 2
    assert ("--judge-template llava_critic_pairwise: the model loads as a YesTokenScorer, not a judge"
            in capsys.readouterr().err)


@pytest.fixture
def scripted_generation(monkeypatch):
    """HF generation replaced by a scripted critic: keeps the tool schemas it was built with and each prompt text."""
    import mmreward.agent.generate

    seen = {"tools": [], "prompts": []}

    def hf_generate_fn(model, processor, *, tools=None, **kwargs):
        seen["tools"].append(tools)

        def generate(conversations, images):
            seen["prompts"] += [c[-1]["content"][-1]["text"] for c in conversations]
            return ['<think>.</think><answer>{"overall": "B"}</answer>'] * len(conversations)

        return generate

    monkeypatch.setattr(mmreward.agent.generate, "hf_generate_fn", hf_generate_fn)
    return seen


def _score(tmp_path, scoring_media, tiny_checkpoint, *flags):
    return main(["score", "--model", str(tiny_checkpoint("llava_onevision")), "--input",
                 str(_pairs(tmp_path, scoring_media)), "--scorer", "judge", "--output", str(tmp_path / "s.jsonl"),
                 "--no-progress", *flags])


def test_judge_tools_name_the_schemas_and_the_paragraph(tmp_path, scoring_media, tiny_checkpoint,
                                                        scripted_generation):
    assert _score(tmp_path, scoring_media, tiny_checkpoint, "--judge-template", "pairwise_response",
                  "--judge-tools", "crop") == 0
    (schemas,), (prompt,) = scripted_generation["tools"], scripted_generation["prompts"]
    assert [s["function"]["name"] for s in schemas] == ["crop"]
    assert prompt.endswith("Before answering, you can look again: call crop to " + prompt.split(" call crop to ")[1])
    assert "select_frames" not in prompt
    assert json.loads((tmp_path / "s.jsonl").read_text())["preferred"] == "B"


def test_judge_tools_none_runs_a_published_prompt_as_published(tmp_path, scoring_media, tiny_checkpoint,
                                                               scripted_generation):
    assert _score(tmp_path, scoring_media, tiny_checkpoint, "--judge-template", "llava_critic_pairwise",
                  "--judge-tools", "none", "--on-error", "skip") in (0, 3)
    (schemas,), (prompt,) = scripted_generation["tools"], scripted_generation["prompts"]
    assert schemas is None                                     # no tool schemas in the system turn
    assert prompt.startswith("Given an image and a corresponding question, please serve as an unbiased")
    assert prompt.endswith("The second response: [the digit seven]\nASSISTANT:\n")   # nothing appended


def test_unknown_judge_tool_names_the_close_ones(tmp_path, scoring_media, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["score", "--model", "x", "--input", str(_pairs(tmp_path, scoring_media)), "--scorer", "judge",
              "--judge-tools", "crop,selectframes"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "unknown judge tool 'selectframes'; did you mean select_frames?" in err
    assert "known: calculator, crop, search, select_frames" in err


def test_judge_tools_on_a_scorer_that_is_not_a_judge_is_an_error(tmp_path, scoring_media, tiny_checkpoint, capsys):
    code = main(["score", "--model", str(tiny_checkpoint("llava_onevision")), "--input",
                 str(_pairs(tmp_path, scoring_media)), "--scorer", "yes_token", "--judge-tools", "none",
                 "--output", str(tmp_path / "s.jsonl"), "--no-progress"])
    assert code == 2
    assert "--judge-tools none: the model loads as a YesTokenScorer, not a judge" in capsys.readouterr().err
