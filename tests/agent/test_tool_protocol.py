"""The tool-call protocol: parsing calls, tool messages, and tool-capable, prefix-preserving templates."""

import json
import logging

import pytest
from PIL import Image

from mmreward.agent.protocol import (
    ToolCall,
    chat_template_for,
    format_tool_calls,
    parse_tool_calls,
    tool_message,
    tool_template,
    use_tool_template,
)
from mmreward.models.tiny import shipped_chat_template

CROP = '<tool_call>\n{"name": "crop", "arguments": {"box": [0.1, 0.2, 0.5, 0.6]}}\n</tool_call>'
FRAMES = '<tool_call>\n{"name": "select_frames", "arguments": {"target_frames": [1, 5, 9]}}\n</tool_call>'
SCHEMAS = [
    {"type": "function", "function": {
        "name": "crop", "description": "Zoom into a region of an image.",
        "parameters": {"type": "object",
                       "properties": {"box": {"type": "array", "items": {"type": "number"}}},
                       "required": ["box"]}}},
    {"type": "function", "function": {
        "name": "select_frames", "description": "Select frames from a video.",
        "parameters": {"type": "object",
                       "properties": {"target_frames": {"type": "array", "items": {"type": "integer"}}},
                       "required": ["target_frames"]}}},
]


# --- parsing ------------------------------------------------------------------------------------------------

def test_single_call_is_parsed_and_cut_out_of_the_content():
    calls, errors, content = parse_tool_calls(f"<think>the left edge is unclear</think>\n{CROP}")
    assert errors == []
    assert calls == [ToolCall("crop", {"box": [0.1, 0.2, 0.5, 0.6]}, CROP)]
    assert content == "<think>the left edge is unclear</think>"


def test_several_calls_per_turn_keep_their_order():
    calls, errors, content = parse_tool_calls(f"{CROP}\n{FRAMES}\n")
    assert errors == [] and content == ""
    assert [c.name for c in calls] == ["crop", "select_frames"]
    assert calls[1].arguments == {"target_frames": [1, 5, 9]}
    assert calls[1].raw == FRAMES


def test_text_without_calls_is_all_content():
    assert parse_tool_calls('  <think>x</think>\n<answer>{"overall": "A"}</answer>\n') == (
        [], [], '<think>x</think>\n<answer>{"overall": "A"}</answer>')


def test_malformed_json_is_an_error_and_the_other_calls_still_run():
    bad = '<tool_call>\n{"name": "crop", "arguments": {"box": [0.1, 0.2}\n</tool_call>'
    calls, errors, content = parse_tool_calls(f"<think>t</think>\n{bad}\n{FRAMES}")
    assert [c.name for c in calls] == ["select_frames"]
    assert len(errors) == 1 and "not valid JSON" in errors[0] and "<tool_call>" in errors[0]
    # The malformed block stays in the history, so the model sees what the error is about.
    assert content == f"<think>t</think>\n{bad}"


@pytest.mark.parametrize("body, message", [
    ("[1, 2]", "must be a JSON object"),
    ('"crop"', "must be a JSON object"),
    ('{"arguments": {"box": [0, 0, 1, 1]}}', 'no "name"'),
    ('{"name": "", "arguments": {}}', 'no "name"'),
    ('{"name": 3, "arguments": {}}', 'no "name"'),
    ('{"name": "crop", "arguments": [0, 0, 1, 1]}', "must be a JSON object, got list"),
    ('{"name": "crop", "arguments": "box=[0, 0, 1, 1]"}', "not a JSON object"),
    ('{"name": "crop", "arguments": "[1]"}', "must be a JSON object"),
    ('{"name": "crop"} {"name": "crop"}', "not valid JSON"),
])
def test_unknown_structures_are_errors(body, message):
    calls, errors, _ = parse_tool_calls(f"<tool_call>\n{body}\n</tool_call>")
    assert calls == []
    assert len(errors) == 1 and message in errors[0]


def test_unclosed_and_stray_tags_are_errors():
    calls, errors, content = parse_tool_calls('<think>t</think>\n<tool_call>\n{"name": "crop", "argum')
    assert calls == [] and len(errors) == 1 and "not closed" in errors[0]
    assert content.endswith('{"name": "crop", "argum')
    # An opening tag followed by another call: the first is unclosed, the second still parses.
    calls, errors, _ = parse_tool_calls(f'<tool_call>\n{{"name": "crop"\n{FRAMES}')
    assert [c.name for c in calls] == ["select_frames"] and len(errors) == 1 and "not closed" in errors[0]
    calls, errors, _ = parse_tool_calls(f"done </tool_call> {CROP}")
    assert [c.name for c in calls] == ["crop"] and len(errors) == 1 and "without an opening" in errors[0]


def test_arguments_as_a_json_string_and_missing_arguments():
    text = '<tool_call>\n{"name": "crop", "arguments": "{\\"box\\": [0, 0, 1, 1]}"}\n</tool_call>'
    calls, errors, _ = parse_tool_calls(text)
    assert errors == [] and calls[0].arguments == {"box": [0, 0, 1, 1]}
    calls, errors, _ = parse_tool_calls('<tool_call>{"name": "list_tools"}</tool_call>')
    assert errors == [] and calls[0] == ToolCall("list_tools", {}, "<tool_call>" + '{"name": "list_tools"}'
                                                 + "</tool_call>")


def test_format_tool_calls_and_tool_message_shapes():
    calls = [ToolCall("crop", {"box": [0, 0, 1, 1]})]
    assert format_tool_calls(calls) == [
        {"type": "function", "function": {"name": "crop", "arguments": {"box": [0, 0, 1, 1]}}}]
    assert tool_message("Here are the frames.", images=["i1", "i2"], name="select_frames") == {
        "role": "tool", "name": "select_frames",
        "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Here are the frames."}]}
    assert tool_message("Error: out of range") == {
        "role": "tool", "content": [{"type": "text", "text": "Error: out of range"}]}


# --- templates ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def processors(tiny_checkpoint):
    from transformers import AutoProcessor

    return {family: AutoProcessor.from_pretrained(tiny_checkpoint(family))
            for family in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")}


def _image(seed: int) -> Image.Image:
    return Image.new("RGB", (56 + 28 * (seed % 2), 56), color=(40 * seed % 255, 90, 160))


def _tool_conversation() -> tuple[list[dict], list[Image.Image]]:
    """A judge episode: two prompt images, a crop (1 image), two frame calls (2 + 1 images), an error, an
    answer."""
    crop = parse_tool_calls(f"<think>the left edge is unclear</think>\n{CROP}")[0]
    frames = parse_tool_calls(f"{FRAMES}\n{FRAMES}")[0]
    messages = [
        {"role": "system", "content": "You are a careful judge."},
        {"role": "user", "content": [{"type": "image"}, {"type": "image"},
                                     {"type": "text", "text": "Which image is better?"}]},
        {"role": "assistant", "content": "<think>the left edge is unclear</think>",
         "tool_calls": format_tool_calls(crop)},
        tool_message("Here is the crop.", images=[0], name="crop"),
        {"role": "assistant", "content": "", "tool_calls": format_tool_calls(frames)},
        tool_message("Here are the selected frames.", images=[0, 1], name="select_frames"),
        tool_message("Here are the selected frames.", images=[0], name="select_frames"),
        {"role": "assistant", "content": "<think>still unsure</think>",
         "tool_calls": [{"type": "function",
                         "function": {"name": "crop", "arguments": '{"box": [0, 0, 1, 1]}'}}]},
        tool_message("Error: box out of range"),
        {"role": "assistant", "content": '<think>A is sharper</think>\n<answer>{"overall": "A"}</answer>'},
    ]
    return messages, [_image(i) for i in range(6)]


def _render(processor, messages, *, tools=SCHEMAS, add_generation_prompt=False, **kwargs) -> str:
    template = chat_template_for(processor, True)
    return processor.apply_chat_template(messages, tools=tools, chat_template=template, tokenize=False,
                                         add_generation_prompt=add_generation_prompt, **kwargs)


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
def test_chat_template_for_keys_on_the_template_text(processors, family):
    processor = processors[family]
    shipped = shipped_chat_template("qwen3_vl.jinja" if family == "qwen3_vl" else "qwen2_5_vl.jinja")
    assert processor.chat_template == shipped
    assert chat_template_for(processor, False) == shipped
    assert chat_template_for(processor.tokenizer, False) == shipped
    expected = shipped if family == "qwen3_vl" else tool_template()
    assert chat_template_for(processor, True) == expected
    assert chat_template_for(processor.tokenizer, True) == expected


def test_chat_template_for_other_templates(caplog):
    class Plain:
        chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"

    class Bare:
        chat_template = None

    with caplog.at_level(logging.WARNING, logger="mmreward.agent.protocol"):
        assert chat_template_for(Plain(), True) == Plain.chat_template
    assert "does not render tool calls" in caplog.text
    assert chat_template_for(Bare(), True) is None


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_tool_conversation_renders_and_tokenises_with_images(processors, family):
    processor = processors[family]
    messages, images = _tool_conversation()
    text = _render(processor, messages)
    assert text.count("<|image_pad|>") == len(images) == 6
    assert text.count('<tool_call>\n{"name": "') == 4 and text.count("<tool_response>") == 4
    assert '"name": "select_frames"' in text.split("\n</tools>")[0]
    assert text.startswith("<|im_start|>system\nYou are a careful judge.\n\n# Tools")
    # Consecutive tool results share one user turn; its images sit inside the <tool_response> blocks.
    assert ("<|im_start|>user\n<tool_response>\n<|vision_start|><|image_pad|><|vision_end|>"
            "<|vision_start|><|image_pad|><|vision_end|>Here are the selected frames.\n</tool_response>\n"
            "<tool_response>\n<|vision_start|><|image_pad|><|vision_end|>Here are the selected frames.\n"
            "</tool_response><|im_end|>") in text
    batch = processor(text=[text], images=images, return_tensors="pt")
    assert batch["image_grid_thw"].shape[0] == len(images)
    image_token = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    merge = processor.image_processor.merge_size ** 2
    patches = int(batch["image_grid_thw"].prod(-1).sum())
    assert int((batch["input_ids"] == image_token).sum()) == patches // merge


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"])
@pytest.mark.parametrize("tools", [SCHEMAS, None])
def test_templates_are_prefix_preserving(processors, family, tools):
    processor = processors[family]
    messages, _ = _tool_conversation()
    assistant_turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    assert len(assistant_turns) == 4
    for i in assistant_turns:
        before = _render(processor, messages[:i], tools=tools, add_generation_prompt=True)
        after = _render(processor, messages[:i + 1], tools=tools)
        assert after.startswith(before), (family, i)
    # Appending tool results never changes the rendering of the turns before them either.
    for i, message in enumerate(messages):
        if message["role"] == "tool" and messages[i - 1]["role"] == "assistant":
            assert _render(processor, messages[:i + 1], tools=tools).startswith(
                _render(processor, messages[:i], tools=tools))


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_trl_accepts_the_tool_template_as_prefix_preserving(processors, family):
    import copy

    from trl.chat_template_utils import is_chat_template_prefix_preserving

    processor = copy.copy(processors[family])
    processor.chat_template = chat_template_for(processor, True)
    assert is_chat_template_prefix_preserving(processor)


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
@pytest.mark.parametrize("generated", [
    f"<think>the left edge is unclear</think>\n{CROP}",
    f"{CROP}\n{FRAMES}",
    '<think>A is sharper</think>\n<answer>{"overall": "A"}</answer>',
])
def test_a_parsed_turn_renders_back_to_the_generated_text(processors, family, generated):
    """What the loop stores (content + tool_calls) re-renders to exactly the tokens the model generated."""
    processor = processors[family]
    messages = _tool_conversation()[0][:2]
    calls, errors, content = parse_tool_calls(generated)
    assert errors == []
    turn = {"role": "assistant", "content": content}
    if calls:
        turn["tool_calls"] = format_tool_calls(calls)
    before = _render(processor, messages, add_generation_prompt=True)
    assert _render(processor, [*messages, turn]) == before + generated + "<|im_end|>\n"


def test_tool_messages_render_videos_and_vision_ids(processors):
    processor = processors["qwen2_5_vl"]
    messages = [
        {"role": "user", "content": [{"type": "video"}, {"type": "image"}, {"type": "text", "text": "Hi"}]},
        {"role": "assistant", "content": "",
         "tool_calls": format_tool_calls([ToolCall("crop", {"box": [0, 0, 1, 1]})])},
        {"role": "tool", "content": [{"type": "video"}, {"type": "image"}, {"type": "text", "text": "ok"}]},
    ]
    text = _render(processor, messages, add_generation_prompt=True, add_vision_id=True)
    assert "<tool_response>\nVideo 2: <|vision_start|><|video_pad|><|vision_end|>" in text
    assert "Picture 2: <|vision_start|><|image_pad|><|vision_end|>ok\n</tool_response>" in text
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert json.dumps({"box": [0, 0, 1, 1]}) in text


def _plain_conversations() -> list[list[dict]]:
    image, video = {"type": "image"}, {"type": "video"}
    return [
        [{"role": "user", "content": "Hello"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
         {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Again"}],
        [{"role": "user", "content": [image, video, {"type": "text", "text": "Compare."}]},
         {"role": "assistant", "content": [{"type": "text", "text": '<answer>{"overall": "A"}</answer>'}]}],
        [{"role": "system", "content": [{"type": "text", "text": "You judge media."}]},
         {"role": "user", "content": [{"type": "image", "image": "x.png"},
                                      {"type": "image_url", "image_url": "u"},
                                      {"type": "text", "text": "First."}]},
         {"role": "assistant", "content": "B"},
         {"role": "user", "content": [{"video": "v.mp4"}, {"type": "text", "text": "Second."}]}],
    ]


@pytest.mark.parametrize("index", range(4))
@pytest.mark.parametrize("options", [{}, {"add_generation_prompt": True}, {"add_vision_id": True},
                                     {"add_generation_prompt": True, "add_vision_id": True}])
def test_tool_template_equals_the_shipped_one_without_tools(processors, index, options):
    processor = processors["qwen2_5_vl"]
    messages = _plain_conversations()[index]
    shipped = processor.apply_chat_template(messages, tokenize=False, **options)
    ours = processor.apply_chat_template(messages, tokenize=False, chat_template=tool_template(), **options)
    assert ours == shipped


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_use_tool_template_prepares_a_processor_for_trl(tiny_checkpoint, family):
    from transformers import AutoProcessor
    from trl.chat_template_utils import (
        add_response_schema,
        is_chat_template_prefix_preserving,
        supports_tool_calling,
    )

    processor = AutoProcessor.from_pretrained(tiny_checkpoint(family))
    assert supports_tool_calling(processor) == (family == "qwen3_vl")
    assert use_tool_template(processor) is processor
    assert processor.chat_template == processor.tokenizer.chat_template == chat_template_for(processor, True)
    assert supports_tool_calling(processor) and is_chat_template_prefix_preserving(processor)
    if family == "qwen3_vl":
        add_response_schema(processor)  # TRL knows the shipped Qwen3-VL template and sets its parser itself
    generated = f"<think>look</think>\n{CROP}<|im_end|>"
    parsed = processor.tokenizer.parse_response(generated, prefix="<|im_start|>user\nhi<|im_end|>\n"
                                                "<|im_start|>assistant\n")
    assert parsed["tool_calls"] == format_tool_calls(parse_tool_calls(generated)[0])
    use_tool_template(processor)  # idempotent
    assert processor.chat_template == chat_template_for(processor, True)


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_trl_parse_response_survives_deeply_nested_tool_calls(tiny_checkpoint, family):
    import copy
    import pickle

    from transformers import AutoProcessor
    from trl.chat_template_utils import add_response_schema, parse_response

    processor = use_tool_template(AutoProcessor.from_pretrained(tiny_checkpoint(family)))
    if family == "qwen3_vl":
        add_response_schema(processor)
    tokenizer = processor.tokenizer
    prefix = tokenizer("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")["input_ids"]
    deep = '<tool_call>\n{"name": "crop", "arguments": {"box": ' + "[" * 2000 + "]" * 2000 + "}}\n</tool_call>"
    ids = tokenizer(deep + "<|im_end|>")["input_ids"]
    # Unguarded, the JSON parser's RecursionError escapes TRL's (ValueError, TypeError) fallback.
    with pytest.raises(RecursionError):
        tokenizer.parse_response.original(ids, prefix=prefix)
    parsed = parse_response(tokenizer, ids, prefix=prefix)
    assert parsed["role"] == "assistant" and "tool_calls" not in parsed and parsed["content"].startswith("<tool_call>")
    good = parse_response(tokenizer, tokenizer(CROP + "<|im_end|>")["input_ids"], prefix=prefix)
    assert good["tool_calls"] == format_tool_calls(parse_tool_calls(CROP)[0])
    use_tool_template(processor)  # guarding twice does not nest
    assert not isinstance(tokenizer.parse_response.original, type(tokenizer.parse_response))
    # Still picklable and copyable (datasets fingerprints and worker processes need it), guard included.
    assert isinstance(pickle.loads(pickle.dumps(processor)).tokenizer.parse_response, type(tokenizer.parse_response))
    assert copy.deepcopy(processor).tokenizer.parse_response.guarded
