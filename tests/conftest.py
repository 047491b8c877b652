"""Shared test fixtures: offline hub settings, seeding, and one tiny checkpoint per Qwen-VL family per session."""

import os

# Never touch the network from tests: everything is built locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")


def pytest_collection_modifyitems(config, items):
    """Skip `gpu`-marked tests when CUDA is unavailable."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A function family -> checkpoint dir; each family is built once per session, on first use."""
    from mmreward.models.tiny import make_tiny_vlm

    built = {}

    def get(family: str = "qwen2_5_vl"):
        if family not in built:
            built[family] = make_tiny_vlm(tmp_path_factory.mktemp(f"tiny-{family}"), family=family)
        return built[family]

    return get


@pytest.fixture(scope="session")
def scoring_media(tmp_path_factory):
    """A folder with three short videos, three images and a corrupt 'video', plus helpers to write records."""
    import numpy as np
    from PIL import Image

    from mmreward.data.synthetic import write_index_video

    root = tmp_path_factory.mktemp("scoring_media")
    for i, frames in enumerate((20, 30, 24)):
        write_index_video(root / f"v{i}.mp4", frames, fps=10, height=48, width=64)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40 + 8 * i, 60, 3), dtype=np.uint8)).save(root / f"i{i}.png")
    (root / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + rng.bytes(2000))
    return root
