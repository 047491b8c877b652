"""Tests for mmreward.agent.tools: select_frames returns the right frames (pixel-encoded indices), crop zooms the
right region within the pixel budget, the calculator refuses hostile input quickly without executing code, BM25
search ranks sensibly, and the registry's schemas and argument checks are correct."""

import builtins
import json
import re
import time

import numpy as np
import pytest
from PIL import Image

from mmreward.agent.tools import TOOLS, BM25Backend, ToolError, ToolResult, call_tool, tool_schemas
from mmreward.agent.tools.context import ToolContext, current_context, use_context
from mmreward.data.media import clear_media_cache, media_cache_info
from mmreward.data.media.sampling import sample_indices
from mmreward.data.schema import MediaItem
from mmreward.data.synthetic import decode_index, write_index_video

N_FRAMES, FPS = 40, 10


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Two index videos: 40 frames at 10 fps (4 s) and 20 frames (2 s); frame i shows index i."""
    root = tmp_path_factory.mktemp("tool_videos")
    first = write_index_video(root / "a.mp4", n_frames=N_FRAMES, fps=FPS, height=64, width=96)
    second = write_index_video(root / "b.mp4", n_frames=20, fps=FPS, height=64, width=96)
    return first, second


def indices(result: ToolResult) -> list[int]:
    return [decode_index(np.asarray(image)) for image in result.images]


def listed(result: ToolResult) -> list[tuple[int, float]]:
    return [(int(k), float(t)) for k, t in re.findall(r"Frame (\d+) \(t=([\d.]+)s\)", result.text)]


# ---------------------------------------------------------------------------------------------- select_frames
def test_frame_numbers_map_to_the_uniform_workspace(videos):
    ctx = ToolContext(videos=[str(videos[0])], workspace_frames=16)
    picks = sample_indices(0, N_FRAMES - 1, 16)  # what the workspace holds, by qwen-vl-utils' linspace
    with use_context(ctx):
        result = TOOLS["select_frames"](target_frames=[1, 5, 16])
    assert indices(result) == [picks[0], picks[4], picks[15]]
    assert listed(result) == [(k, round(picks[k - 1] / FPS, 2)) for k in (1, 5, 16)]
    assert "Frame 5 (t=" in result.text and ctx.returned == result.images


def test_default_workspace_is_clamped_to_the_frame_count(videos):
    with use_context(ToolContext(videos=[videos[0]])):  # 96 asked, 40 available: frame k is source frame k-1
        result = TOOLS["select_frames"](target_frames=[1, 12, 40])
    assert indices(result) == [0, 11, 39]
    assert listed(result) == [(1, 0.0), (12, 1.1), (40, 3.9)]
    assert "of its 40 frames" in result.text


def test_timestamps_pick_the_nearest_workspace_frame(videos):
    picks = sample_indices(0, N_FRAMES - 1, 8)  # [0, 6, 11, 17, 22, 28, 33, 39]
    with use_context(ToolContext(videos=[videos[0]], workspace_frames=8)):
        result = TOOLS["select_frames"](timestamps=[0.0, 1.0, 3.95])
    assert indices(result) == [picks[0], picks[2], picks[7]]
    assert listed(result) == [(1, 0.0), (3, 1.1), (8, 3.9)]


def test_a_window_returns_frames_spread_inside_it(videos):
    with use_context(ToolContext(videos=[videos[0]], max_frames_per_call=4)):
        result = TOOLS["select_frames"](start=1.0, end=2.0)  # frames 10..20: four spread over the 11
        whole = TOOLS["select_frames"](start=3.5)  # open end: frames 35..39, capped at 4
    assert indices(result) == [10, 13, 17, 20]
    assert all(1.0 <= t <= 2.0 for _, t in listed(result))
    assert indices(whole) == [35, 36, 38, 39]


def test_second_video_and_clipped_media_items(videos):
    clip = MediaItem(type="video", path=str(videos[0]), start=2.0, end=3.0)
    with use_context(ToolContext(videos=[videos[0], videos[1], clip])):
        second = TOOLS["select_frames"](target_frames=[20], video=2)
        clipped = TOOLS["select_frames"](target_frames=[1, 10], video=3)
    assert indices(second) == [19]
    # The clip holds frames 20..30 (11), so its workspace is 10 frames spread over them, 20 and 30 included.
    assert indices(clipped) == [20, 30] == [sample_indices(20, 30, 10)[k] for k in (0, 9)]
    assert listed(clipped) == [(1, 0.0), (10, 1.0)]  # times are relative to the clip's start


def test_vr_thinker_error_messages(videos):
    with use_context(ToolContext(videos=[videos[0]], workspace_frames=16)):
        with pytest.raises(ToolError) as too_many:
            TOOLS["select_frames"](target_frames=list(range(1, 10)))
        with pytest.raises(ToolError) as out_of_range:
            TOOLS["select_frames"](target_frames=[3, 17])
        with pytest.raises(ToolError, match="out of range"):
            TOOLS["select_frames"](target_frames=[0])
        with pytest.raises(ToolError, match=r"videos numbered in range \[1,1\]"):
            TOOLS["select_frames"](target_frames=[1], video=2)
        with pytest.raises(ToolError, match="exactly one way"):
            TOOLS["select_frames"](target_frames=[1], timestamps=[1.0])
        with pytest.raises(ToolError, match="exactly one way"):
            TOOLS["select_frames"]()
        with pytest.raises(ToolError, match="outside the video"):
            TOOLS["select_frames"](timestamps=[9.0])
        with pytest.raises(ToolError, match="empty"):
            TOOLS["select_frames"](start=2.0, end=1.0)
    assert str(too_many.value) == (
        "You have selected 9 frames in total. Think again which frames you need to check in details "
        "(no more than 8 frames)"
    )
    assert str(out_of_range.value) == "There are 16 frames numbered in range [1,16]. Your selection is out of range."


def test_media_tools_need_an_active_context():
    for name, args in (("select_frames", {"target_frames": [1]}), ("crop", {"box": [0, 0, 1, 1]})):
        with pytest.raises(ToolError, match="this tool needs an episode's media; none is active"):
            TOOLS[name](**args)
    with pytest.raises(ToolError, match="none is active"):
        current_context()
    assert TOOLS["calculator"](expression="1+1") == "2"  # context-free


def test_repeated_calls_hit_the_media_cache(videos):
    clear_media_cache()
    with use_context(ToolContext(videos=[videos[0]])):
        TOOLS["select_frames"](target_frames=[1])
        hits = media_cache_info()["hits"]
        TOOLS["select_frames"](target_frames=[2, 3])
    assert media_cache_info()["hits"] > hits


# ------------------------------------------------------------------------------------------------------ crop
@pytest.fixture
def quadrant_image():
    """200x120 grey image whose top-right quadrant is pure red."""
    array = np.full((120, 200, 3), 128, dtype=np.uint8)
    array[:60, 100:] = (255, 0, 0)
    return Image.fromarray(array)


def test_crop_of_the_red_quadrant_is_red_and_within_budget(quadrant_image):
    ctx = ToolContext(images=[quadrant_image], max_pixels=64 * 28 * 28)
    with use_context(ctx):
        result = TOOLS["crop"](box=[0.5, 0.0, 1.0, 0.5])
    (out,) = result.images
    pixels = np.asarray(out).reshape(-1, 3)
    assert (pixels == (255, 0, 0)).all()
    assert out.width % 28 == 0 and out.height % 28 == 0
    assert ctx.min_pixels <= out.width * out.height <= ctx.max_pixels
    # 100x60 crop scaled by sqrt(64*784 / 6000) = 2.89 -> 289x174 -> sides rounded to 28: 280x168 (47040 px).
    assert (out.width, out.height) == (280, 168)
    assert "image 2" in result.text and ctx.returned == [out]


def test_crop_fills_the_pixel_budget(quadrant_image):
    ctx = ToolContext(images=[quadrant_image], max_pixels=64 * 28 * 28)
    with use_context(ctx):
        out = TOOLS["crop"](box=[0.0, 0.5, 0.5, 1.0]).images[0]  # grey bottom-left, 100x60 -> enlarged
    assert out.width * out.height > 0.8 * ctx.max_pixels
    assert (np.asarray(out) == 128).all()


def test_crop_rejects_bad_boxes(quadrant_image):
    bad = {
        "x0 < x1": [0.6, 0.0, 0.4, 0.5],
        "too small": [0.1, 0.1, 0.11, 0.5],
        "from 0 to 1": [10, 20, 100, 90],
        "4 numbers": [0.1, 0.2, 0.3],
        "out of range": None,
    }
    with use_context(ToolContext(images=[quadrant_image])):
        for message, box in bad.items():
            with pytest.raises(ToolError, match=message):
                TOOLS["crop"](box=box or [0, 0, 1, 1], image=1 if box else 5)
    with use_context(ToolContext()), pytest.raises(ToolError, match="no images to crop"):
        TOOLS["crop"](box=[0, 0, 1, 1])


def test_crop_a_frame_returned_by_select_frames(videos, quadrant_image):
    ctx = ToolContext(videos=[videos[0]], images=[quadrant_image])
    with use_context(ctx):
        frames = TOOLS["select_frames"](target_frames=[1, 8])
        assert "image 2" in frames.text and "image 3" in frames.text
        # The frame's coloured band is its top quarter; a crop inside it is one colour, the band's.
        band = TOOLS["crop"](box=[0.0, 0.0, 1.0, 0.2], image=3)
        again = TOOLS["crop"](box=[0.25, 0.25, 0.75, 0.75], image=4)  # a crop of the crop
    frame = np.asarray(frames.images[1])
    colour = frame[2, frame.shape[1] // 2].astype(int)
    assert np.abs(np.asarray(band.images[0])[4:-4, 4:-4].astype(int) - colour).max() < 40
    assert len(ctx.returned) == 4 and again.images[0] is ctx.returned[-1]


# ------------------------------------------------------------------------------------------------ calculator
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("2+3*4", "14"),
        ("7/2", "3.5"),
        ("sqrt(16)+2**10", "1028"),  # integral floats print like integers
        ("0.1+0.2", "0.3"),  # 15 significant digits hide float noise
        ("-(3 - 5) ** 2 // 3", "-2"),
        ("17 % 5 + 7 // 2", "5"),
        ("round(pi, 3) + max(1, 2, 3) - min(4)", "2.142"),
        ("log(8, 2) + log10(1000) + floor(2.7) + ceil(2.1) + fabs(-1) + abs(-2)", "14"),
        ("factorial(5)", "120"),
        ("2**64", "18446744073709551616"),  # integers stay exact up to 10**100
        ("factorial(80)", "7.15694570462638e+118"),  # beyond that they become floats
        ("(3.5 + 2) * 4 / sqrt(2)", "15.556349186104"),
    ],
)
def test_calculator_values(expression, expected):
    assert TOOLS["calculator"](expression=expression) == expected


HOSTILE = {
    "__import__('os')": "names like '__import__'",
    "().__class__.__bases__[0]": "not allowed",
    "a.b": "attribute access",
    "9**9**9": "exponents are limited",
    "10**10**10": "exponents are limited",
    "factorial(100000)": "factorial takes",
    "'a'*10**9": "strings are not allowed",
    "[x for x in range(10**9)]": "comprehensions",
    "lambda: 1": "lambdas",
    "1+" * 5000: "characters long",
    "open('/etc/passwd')": "names like 'open'",
    "(" * 1000 + "1" + ")" * 1000: "characters long",
    "(" * 240 + "1" + ")" * 240: "could not parse",
    "import os": "could not parse",
    "os": "names like 'os' are not allowed",
    "2 ^ 3": "use \\*\\* for powers",
    "1 < 2": "comparisons",
    "1e300 * 10": "too large",
    "2.0 ** 1000": "exponents are limited",
    "10.0 ** 99 * 10.0 ** 99 * 10.0 ** 99 * 10.0 ** 99": "too large",
    "1/0": "division by zero",
    "sqrt(-1)": "math domain error",
    "exp(1000)": "too large",
    "(-8) ** 0.5": "not a real number",
    "sqrt": "is a function",
    "sqrt(x=4)": "positional",
    "+".join(["1"] * 150): "too complex",
}


@pytest.mark.parametrize("expression", list(HOSTILE), ids=lambda e: e[:30])
def test_calculator_refuses_hostile_input_quickly(expression, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("code was executed")

    real_compile = builtins.compile

    def parse_only(source, filename, mode, flags=0, *args, **kwargs):
        # ast.parse compiles to a syntax tree only; anything else would build runnable code.
        assert flags & 0x400, "compile() called without PyCF_ONLY_AST"
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", parse_only)
    start = time.perf_counter()
    with pytest.raises(ToolError, match=HOSTILE[expression]):
        TOOLS["calculator"](expression=expression)
    assert time.perf_counter() - start < 0.5
    assert TOOLS["calculator"](expression="6*7") == "42"  # and valid input still works without eval/exec


# ---------------------------------------------------------------------------------------------------- search
CORPUS = [
    {"id": "cats", "text": "Cats are small domesticated felines that purr and chase mice."},
    {"id": "eiffel", "text": "The Eiffel Tower is a wrought-iron lattice tower in Paris, France, built in 1889."},
    {"id": "python", "text": "Python is a programming language with dynamic typing."},
    {"id": "rain", "text": "Rain is liquid water falling from clouds."},
    {"id": "mona", "text": "The Mona Lisa is a portrait painted by Leonardo da Vinci, kept in the Louvre in Paris."},
]


def test_bm25_puts_the_relevant_document_first():
    ctx = ToolContext(search_backend=BM25Backend(CORPUS))
    with use_context(ctx):
        text = TOOLS["search"](query="Who painted the Mona Lisa?", k=2)
        paris = ctx.search_backend.search("tower in paris", 5)
    assert text.splitlines()[0].startswith("[1] (id: mona) The Mona Lisa")
    assert len(text.splitlines()) <= 2
    assert paris[0]["id"] == "eiffel" and {h["id"] for h in paris} == {"eiffel", "mona"}  # only scored docs
    assert paris[0]["score"] > paris[1]["score"] > 0


def test_bm25_reads_a_jsonl_corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in CORPUS) + "\n" + json.dumps({"text": "no id here"}) + "\n")
    backend = BM25Backend(path)
    assert backend.search("domesticated felines", 3)[0]["id"] == "cats"
    assert backend.search("no id here", 1)[0]["id"] == "5"  # the line number
    assert backend.search("zebra", 3) == []
    with pytest.raises(ValueError, match="at least one document"):
        BM25Backend([])


def test_search_bounds_and_missing_backend():
    with use_context(ToolContext(search_backend=BM25Backend(CORPUS))):
        for k in (0, 11):
            with pytest.raises(ToolError, match="from 1 to 10"):
                TOOLS["search"](query="paris", k=k)
        with pytest.raises(ToolError, match="at most 500"):
            TOOLS["search"](query="paris " * 100)
        assert TOOLS["search"](query="zebra") == "No passages found for 'zebra'."
    with use_context(ToolContext()), pytest.raises(ToolError, match="no search backend"):
        TOOLS["search"](query="paris")


# -------------------------------------------------------------------------------------------------- registry
def test_schemas_come_from_the_docstrings():
    assert list(TOOLS) == ["select_frames", "crop", "calculator", "search"]
    schemas = tool_schemas(list(TOOLS))
    expected = {
        "select_frames": ({"target_frames", "timestamps", "start", "end", "video"}, set()),
        "crop": ({"box", "image"}, {"box"}),
        "calculator": ({"expression"}, {"expression"}),
        "search": ({"query", "k"}, {"query"}),
    }
    for schema, (name, (params, required)) in zip(schemas, expected.items()):
        assert schema["type"] == "function" and schema["function"]["name"] == name
        parameters = schema["function"]["parameters"]
        assert set(parameters["properties"]) == params
        assert set(parameters.get("required", [])) == required
        assert schema["function"]["description"].strip()
        for prop in parameters["properties"].values():
            assert prop["description"].strip() and prop["type"] in {"array", "integer", "number", "string"}
        json.dumps(schema)  # plain JSON
    frames, crop = schemas[0]["function"]["parameters"]["properties"], schemas[1]["function"]["parameters"]
    assert frames["target_frames"]["items"] == {"type": "integer"} and frames["target_frames"]["nullable"]
    assert frames["target_frames"]["description"].startswith("Frame numbers, each from 1 to N")
    assert crop["properties"]["box"]["items"] == {"type": "number"}
    with pytest.raises(ToolError, match="Available tools: select_frames, crop"):
        tool_schemas(["web"])


def test_call_tool_checks_arguments(videos):
    with pytest.raises(ToolError, match=r"Unknown tool 'shell'\. Available tools: select_frames, crop, calc"):
        call_tool("shell", {"cmd": "ls"})
    with pytest.raises(ToolError, match="Available tools: calculator"):
        call_tool("crop", {"box": [0, 0, 1, 1]}, tools=["calculator"])
    with pytest.raises(ToolError, match=r"missing required argument\(s\) 'expression'"):
        call_tool("calculator", {})
    with pytest.raises(ToolError, match=r"unexpected argument\(s\) 'path'"):
        call_tool("crop", {"box": [0, 0, 1, 1], "path": "/etc/passwd"})
    with pytest.raises(ToolError, match="argument 'expression' must be a string, got 42"):
        call_tool("calculator", {"expression": 42})
    with pytest.raises(ToolError, match="'target_frames' must be an array of integers or null"):
        call_tool("select_frames", {"target_frames": ["1", "2"]})
    with pytest.raises(ToolError, match="'k' must be an integer"):
        call_tool("search", {"query": "x", "k": 2.5})
    with pytest.raises(ToolError, match="must be a JSON object"):
        call_tool("calculator", "2+2")
    result = call_tool("calculator", {"expression": "2+3*4"})
    assert result == ToolResult("14") and result.images == []
    with use_context(ToolContext(videos=[videos[0]])):  # JSON numbers: 2.0 is accepted as frame 2
        assert indices(call_tool("select_frames", {"target_frames": [2.0], "video": 1})) == [1]


def test_call_tool_turns_other_failures_into_execution_errors(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    with use_context(ToolContext(videos=[broken])), pytest.raises(ToolError, match="^Execution error: "):
        call_tool("select_frames", {"target_frames": [1]})
