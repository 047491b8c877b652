"""Session fixtures of the evaluation tests: the eval runs the report tests look at (see report_runs.py)."""

import pytest


@pytest.fixture(scope="session")
def report_head_run(scoring_media, tiny_checkpoint, tmp_path_factory):
    """An `mmreward eval` output folder of a tiny head model on an 8-pair VideoGen-RewardBench fixture."""
    from report_runs import head_run

    return head_run(tmp_path_factory.mktemp("report_head"), scoring_media, tiny_checkpoint("qwen2_5_vl"))


@pytest.fixture(scope="session")
def report_judge_run(scoring_media, tiny_checkpoint, tmp_path_factory):
    """An `mmreward eval --order both` folder of a scripted tool-using judge on 4 video pairs."""
    from report_runs import judge_run

    return judge_run(tmp_path_factory.mktemp("report_judge"), scoring_media, tiny_checkpoint("qwen2_5_vl"))
