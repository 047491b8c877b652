"""Bounded tool use: calls per turn and images per episode are capped before anything runs, echoed arguments
are short, and a judge episode's URL and base64 images reach `crop` through the media loader."""

import base64
import http.server
import io
import json
import threading

import numpy as np
import pytest
from PIL import Image

from mmreward.agent.env import JudgeEnv
from mmreward.agent.loop import run_episode
from mmreward.agent.tools import ToolError, call_tool
from mmreward.agent.tools.context import ToolContext, use_context
from mmreward.data.schema import parse_record
from mmreward.data.synthetic import decode_index, write_index_video
from mmreward.errors import ConfigError

ANSWER = '<think>done</think><answer>{"overall": "B"}</answer>'
ONE_CALL = '<tool_call>\n{"name": "select_frames", "arguments": {"target_frames": [1, 2]}}\n</tool_call>'


@pytest.fixture(scope="module")
def index_video(tmp_path_factory):
    return write_index_video(tmp_path_factory.mktemp("limits") / "idx.mp4", n_frames=40, fps=10)


def _env(video):
    env = JudgeEnv(tools=("select_frames", "crop", "calculator"), workspace_frames=40)
    env.load(parse_record({"id": "r", "prompt": "p", "a": {"media": [{"type": "video", "path": str(video)}]},
                           "b": {"text": "x"}, "label": "A"}))
    return env


class Script:
    def __init__(self, *turns):
        self.turns = list(turns)

    def __call__(self, conversations, images):
        return [self.turns.pop(0)]


def _tool_texts(traj):
    return [m["content"][-1]["text"] for m in traj.messages if m["role"] == "tool"]


# --- item 5: calls per turn, images per episode -----------------------------------------------------------------

def test_a_thousand_select_frames_calls_in_one_turn_run_only_the_cap(index_video):
    flood = "<think>all of them</think>\n" + "\n".join([ONE_CALL] * 1000)
    traj = run_episode(Script(flood, ANSWER), _env(index_video), [{"role": "user", "content": "q"}])
    texts = _tool_texts(traj)
    # 8 calls ran (2 frames each), then one message for the other 992; the episode goes on to its verdict.
    assert len(texts) == 9 and len(traj.images) == 16
    assert [decode_index(np.asarray(img)) for img in traj.images] == [0, 1] * 8
    assert texts[-1] == ("Error: 992 tool calls beyond the limit of 8 per turn were not run. "
                         "Make fewer tool calls per turn.")
    assert traj.tool_calls == 1000 and traj.tool_failures == 992
    assert traj.verdict == {"overall": "B"} and traj.finish_reason == "answer"
    # The history keeps every call the model wrote (what it generated is what it is trained on).
    assert len([m for m in traj.messages if m["role"] == "assistant"][0]["tool_calls"]) == 1000


def test_the_per_turn_cap_is_configurable_and_malformed_calls_are_capped_too(index_video):
    calc = '<tool_call>{"name": "calculator", "arguments": {"expression": "1+1"}}</tool_call>'
    turn = "<think>t</think>" + calc * 5 + "<tool_call>{bad}</tool_call>" * 500
    traj = run_episode(Script(turn, ANSWER), _env(index_video), [{"role": "user", "content": "q"}],
                       max_tool_calls=3)
    texts = _tool_texts(traj)
    assert texts[:3] == ["Error: the tool call is not valid JSON (Expecting property name enclosed in double "
                         "quotes at character 1). " + texts[0].split(". ", 1)[1]] * 3
    assert texts[3:6] == ["2"] * 3
    assert texts[6] == ("Error: 497 more malformed tool calls were not reported; 2 tool calls beyond the limit "
                        "of 3 per turn were not run. Make fewer tool calls per turn.")
    assert traj.tool_calls == 5 and traj.tool_failures == 500 + 2
    with pytest.raises(ConfigError, match=r"max_tool_calls \(tool calls run per turn\) must be >= 1, got 0"):
        run_episode(Script(ANSWER), _env(index_video), [{"role": "user", "content": "q"}], max_tool_calls=0)


def test_the_image_limit_is_checked_before_each_call(index_video):
    eight = '<tool_call>{"name": "select_frames", "arguments": {"target_frames": [1, 2, 3, 4, 5, 6, 7, 8]}}' \
            '</tool_call>'
    traj = run_episode(Script("<think>t</think>" + eight * 1000), _env(index_video),
                       [{"role": "user", "content": "q"}], max_images=12)
    # Call 1 (0 images in context) and call 2 (8) run; at 16 > 12 the rest are refused and the episode ends.
    assert len(traj.images) == 16 and traj.finish_reason == "max_images" and traj.turns == 1
    assert _tool_texts(traj)[-1] == ("Error: 998 tool calls were not run: the episode has reached its limit of "
                                     "12 images in context. Make fewer tool calls per turn.")


def test_tools_refuse_images_beyond_the_episode_budget_before_decoding(index_video, tmp_path):
    ctx = ToolContext(videos=[index_video], workspace_frames=40, max_returned_images=5)
    with use_context(ctx):
        assert len(call_tool("select_frames", {"target_frames": [1, 2, 3, 4]}).images) == 4
        with pytest.raises(ToolError, match=r"returned 4 images, the limit is 5; 1 more can be shown"):
            call_tool("select_frames", {"target_frames": [5, 6]})
        assert len(call_tool("crop", {"box": [0, 0, 0.5, 0.5], "image": 1}).images) == 1
    # At the limit nothing is decoded: a broken video is not even opened.
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    full = ToolContext(videos=[broken], max_returned_images=1, returned=[Image.new("RGB", (28, 28))])
    with use_context(full), pytest.raises(ToolError, match="the limit is 1; 0 more can be shown"):
        call_tool("select_frames", {"target_frames": [1]})
    with pytest.raises(ValueError, match="max_returned_images must be >= 1"):
        ToolContext(max_returned_images=0)


# --- item 12: echoed arguments are capped ----------------------------------------------------------------------

@pytest.mark.parametrize("name, arguments, echo", [
    ("crop", {"box": list(range(10**6))}, "got [0.0, 1.0, 2.0, 3.0"),
    ("crop", {"box": [0, 0, 1, 1], "image": [[["x" * 10**6]]]}, "got [[['xxxx"),
    ("select_frames", {"timestamps": ["t" * 10**6]}, "got ['tttt"),
    ("select_frames", {"start": "s" * 10**6}, "got 'ssss"),
    ("calculator", {"expression": "1+" * 10**6}, "characters"),
    ("crop", {"box": [0, 0, 1, 1], "k" * 10**6: 1}, "unexpected argument(s) 'kkkk"),
    ("n" * 10**6, {}, "Unknown tool 'nnnn"),
])
def test_errors_echo_at_most_a_short_prefix_of_any_argument(name, arguments, echo):
    with use_context(ToolContext(images=[Image.new("RGB", (64, 64))])), pytest.raises(ToolError) as err:
        call_tool(name, arguments)
    message = str(err.value)
    assert echo in message and len(message) <= 400, message[:500]


def test_crop_box_of_a_million_items_in_an_episode_is_a_short_tool_message():
    # 500,000 characters of JSON are refused before parsing; 60,000 are parsed, and the error echoes a prefix.
    box = json.dumps({"name": "crop", "arguments": {"box": [0.5] * 10**5}})
    small = json.dumps({"name": "crop", "arguments": {"box": [1] * 20_000}})
    env = JudgeEnv(tools=("crop",))
    env.load(parse_record({"id": "r", "prompt": "p", "a": {"media": [{"type": "image", "bytes": _b64_png()}]},
                           "b": {"text": "x"}, "label": "A"}))
    traj = run_episode(Script(f"<tool_call>{box}</tool_call><tool_call>{small}</tool_call>", ANSWER), env,
                       [{"role": "user", "content": "q"}])
    first, second = _tool_texts(traj)[:2]
    assert first.startswith("Error: the tool call is too long (") and len(first) < 300
    assert second == ("Error: box must be a list of 4 numbers [x0, y0, x1, y1], got [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, "
                      "1.0, 1.0, 1.0, 1.0, 1.0, 1.0, ...].")


# --- item 13: URL and base64 images in a judge episode ---------------------------------------------------------

def _png(color_top_left) -> bytes:
    array = np.zeros((60, 80, 3), dtype=np.uint8)
    array[:30, :40] = color_top_left
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _b64_png(color_top_left=(0, 255, 0)) -> str:
    return base64.b64encode(_png(color_top_left)).decode()


@pytest.fixture
def image_server():
    """A local HTTP server (127.0.0.1, a free port) serving /red.png; counts the requests."""
    body, hits = _png((255, 0, 0)), []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the stdlib's name)
            hits.append(self.path)
            self.send_response(200 if self.path == "/red.png" else 404)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


def test_crop_works_on_url_and_base64_images_of_a_judge_episode(image_server):
    base, hits = image_server
    green = _b64_png((0, 255, 0))
    env = JudgeEnv(tools=("crop",))
    env.load(parse_record({"id": "u", "prompt": "p", "a": {"media": [{"type": "image", "url": f"{base}/red.png"}]},
                           "b": {"media": [{"type": "image", "bytes": green}]}, "label": "A"}))
    red_crop = env.call("crop", {"box": [0.0, 0.0, 0.5, 0.5], "image": 1}).images[0]
    green_crop = env.call("crop", {"box": [0.0, 0.0, 0.5, 0.5], "image": 2}).images[0]
    assert np.asarray(red_crop).reshape(-1, 3).mean(0).round().tolist() == [255, 0, 0]
    assert np.asarray(green_crop).reshape(-1, 3).mean(0).round().tolist() == [0, 255, 0]
    # The bottom-right quadrant is black; the image is downloaded once per episode, not once per crop.
    assert np.asarray(env.call("crop", {"box": [0.5, 0.5, 1.0, 1.0]}).images[0]).max() == 0
    assert hits == ["/red.png"]


def test_a_url_that_fails_is_a_tool_error_the_model_reads(image_server):
    base, _ = image_server
    env = JudgeEnv(tools=("crop",))
    env.load(parse_record({"id": "u", "prompt": "p", "a": {"media": [{"type": "image", "url": f"{base}/gone.png"}]},
                           "b": {"text": "x"}, "label": "A"}))
    with pytest.raises(ToolError, match=r"^Execution error: image 1 could not be loaded \(.*gone\.png"):
        env.call("crop", {"box": [0, 0, 1, 1]})
