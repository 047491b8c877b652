"""The tool-call protocol of the Qwen-VL judges: parse calls out of a generated turn, render calls and results
back as chat messages, and pick a chat template that can show them.

    calls, errors, content = parse_tool_calls(generated_text)
    messages.append({"role": "assistant", "content": content, "tool_calls": format_tool_calls(calls)})
    messages.append(tool_message("Here are the selected frames.", images=frames))
    template = chat_template_for(processor, tools_in_use=True)
    text = processor.apply_chat_template(messages, tools=schemas, chat_template=template, tokenize=False)

All Qwen families use the Hermes / Qwen2.5 format: each call is a JSON object `{"name": ..., "arguments":
{...}}` between `<tool_call>` and `</tool_call>`, several per turn allowed. A malformed call is not an
exception: it becomes an error string the loop returns to the model as a tool message, and the episode goes on
(the model can fix its call).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from mmreward.agent.untrusted import load_json, shown

logger = logging.getLogger(__name__)

OPEN, CLOSE = "<tool_call>", "</tool_call>"
TEMPLATE_DIR = Path(__file__).parent / "templates"
# The format reminder appended to every parse error, so that the model sees how to fix its call.
_FORMAT_HINT = f'Write each call as {OPEN}\n{{"name": <tool name>, "arguments": {{...}}}}\n{CLOSE}'
_TAG = re.compile(re.escape(OPEN) + "|" + re.escape(CLOSE))
# Tool names are short identifiers; a longer "name" is garbage, and it would be echoed in error messages.
MAX_NAME_CHARS = 64


@dataclass(frozen=True)
class ToolCall:
    """One well-formed tool call.

    Attributes:
        name: the tool name, as the model wrote it (whether the tool exists is the environment's business).
        arguments: the keyword arguments (a JSON object).
        raw: the whole block as generated, tags included.
    """

    name: str
    arguments: dict = field(default_factory=dict)
    raw: str = ""


def _parse_block(body: str) -> tuple[ToolCall | None, str | None]:
    """Parse the text between one pair of tool-call tags into a call, or explain why it is not one."""
    obj, reason = load_json(body)
    if reason is not None:
        return None, f"the tool call {reason}. {_FORMAT_HINT}"
    if not isinstance(obj, dict):
        return None, f"the tool call must be a JSON object, got {type(obj).__name__}. {_FORMAT_HINT}"
    name = obj.get("name")
    if not isinstance(name, str) or not name.strip():
        return None, f'the tool call has no "name" (a non-empty string). {_FORMAT_HINT}'
    if len(name) > MAX_NAME_CHARS:
        return None, f"the tool name {shown(name, 60)} is too long (at most {MAX_NAME_CHARS} characters)."
    # Tools without parameters may omit "arguments"; some models send it as a JSON-encoded string.
    arguments = obj.get("arguments", {})
    if isinstance(arguments, str):
        arguments, reason = load_json(arguments) if arguments.strip() else ({}, None)
        if reason is not None:
            return None, (f'the "arguments" of {name!r} are a string that is not a JSON object: it {reason}. '
                          f"{_FORMAT_HINT}")
    if not isinstance(arguments, dict):
        return None, f'the "arguments" of {name!r} must be a JSON object, got {type(arguments).__name__}.'
    return ToolCall(name=name.strip(), arguments=arguments), None


def parse_tool_calls(text: str) -> tuple[list[ToolCall], list[str], str]:
    """Split a generated assistant turn into its tool calls, its malformed calls and its remaining text.

    Well-formed blocks become `ToolCall`s and are cut out of the text (the chat template renders them again
    from `tool_calls`). Malformed blocks (invalid JSON, not an object, no name, arguments that are not an
    object), an unclosed `<tool_call>` and a stray `</tool_call>` become error strings, and their text stays
    in `content` so that the conversation history shows the model what the error refers to.

    Args:
        text: the generated turn (special tokens removed; the tool-call tags are ordinary text).

    Returns:
        (calls, errors, content): the calls in order, one error string per malformed block, and the text
        outside the well-formed blocks, stripped. Never raises: any string (deep nesting, megabytes, invalid
        unicode escapes) gives calls and errors; a non-string gives one error.
    """
    if not isinstance(text, str):
        return [], [f"the turn is not text ({type(text).__name__}). {_FORMAT_HINT}"], ""
    calls: list[ToolCall] = []
    errors: list[str] = []
    kept: list[str] = []
    cursor = 0
    while True:
        tag = _TAG.search(text, cursor)
        if tag is None:
            kept.append(text[cursor:])
            break
        if tag.group() == CLOSE:
            errors.append(f"found {CLOSE} without an opening {OPEN}. {_FORMAT_HINT}")
            kept.append(text[cursor:tag.end()])
            cursor = tag.end()
            continue
        kept.append(text[cursor:tag.start()])
        after = _TAG.search(text, tag.end())
        if after is None or after.group() == OPEN:
            # The model stopped (or opened another call) before closing this one: report it, keep the text.
            errors.append(f"{OPEN} is not closed by {CLOSE}. {_FORMAT_HINT}")
            stop = len(text) if after is None else after.start()
            kept.append(text[tag.start():stop])
            cursor = stop
            continue
        raw = text[tag.start():after.end()]
        call, error = _parse_block(text[tag.end():after.start()].strip())
        if call is None:
            errors.append(error)
            kept.append(raw)
        else:
            calls.append(ToolCall(call.name, call.arguments, raw))
        cursor = after.end()
    return calls, errors, _join_kept(kept)


def _join_kept(pieces: list[str]) -> str:
    """Join the text around removed blocks; a removed block leaves one line break, not blank lines."""
    out = ""
    for piece in pieces:
        if out and piece and out.endswith("\n") and piece.startswith("\n"):
            piece = piece.lstrip("\n")
        out += piece
    return re.sub(r"\n{3,}", "\n\n", out).strip()


def format_tool_calls(calls: Sequence[ToolCall]) -> list[dict]:
    """The `tool_calls` of an assistant message, in the form chat templates (and TRL) read.

    Args:
        calls: parsed calls.

    Returns:
        `[{"type": "function", "function": {"name": ..., "arguments": {...}}}, ...]`.
    """
    return [{"type": "function", "function": {"name": c.name, "arguments": dict(c.arguments)}} for c in calls]


def tool_message(result_text: str, images: Sequence = (), *, name: str | None = None) -> dict:
    """A tool-result message: one `{"type": "image"}` placeholder per image, then the text.

    The Qwen templates render a tool message's image and video items as vision placeholders inside its
    `<tool_response>` block (qwen3_vl.jinja's tool branch; our qwen2_vl_tools.jinja does the same). The pixels
    are not stored in the message: the caller keeps them, in placeholder order, next to the conversation.
    Images come first, as in the content blocks `agent/env.py` hands to TRL, so our loop and TRL render tool
    results alike.

    Args:
        result_text: the tool's text result (or an error message).
        images: the returned images (only their number is used here).
        name: the tool's name, recorded in the message (the Qwen templates do not render it).

    Returns:
        `{"role": "tool", "content": [{"type": "image"}, ..., {"type": "text", "text": result_text}]}`.
    """
    message = {"role": "tool", "content": [*({"type": "image"} for _ in images),
                                           {"type": "text", "text": result_text}]}
    if name is not None:
        message["name"] = name
    return message


@cache
def _template(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")


@cache
def _shipped(name: str) -> str:
    from mmreward.models.tiny import shipped_chat_template

    return shipped_chat_template(name)


def tool_template() -> str:
    """The text of our tool-capable Qwen2(.5)-VL template (`agent/templates/qwen2_vl_tools.jinja`)."""
    return _template(str(TEMPLATE_DIR / "qwen2_vl_tools.jinja"))


def _current_template(processor_or_tokenizer) -> str | None:
    """The chat template a processor or tokenizer carries (the processor's own, else its tokenizer's)."""
    for owner in (processor_or_tokenizer, getattr(processor_or_tokenizer, "tokenizer", None)):
        template = getattr(owner, "chat_template", None)
        if isinstance(template, dict):
            template = template.get("default")
        if isinstance(template, str) and template:
            return template
    return None


def chat_template_for(processor_or_tokenizer, tools_in_use: bool) -> str | None:
    """The chat template to render a (possibly tool-using) conversation with.

    Keyed on the template text, not on model names: the shipped Qwen2-VL / Qwen2.5-VL template (byte-identical
    to TRL's `qwen2_5_vl.jinja`) cannot render tools or tool calls, so with tools in use it is replaced by our
    `qwen2_vl_tools.jinja` (identical output when no tools are involved). Qwen3-VL's shipped template already
    renders tools and is prefix-preserving, so it is returned as is, as is any other template (with a warning
    when tools are in use and the template never reads `tool_calls`).

    Args:
        processor_or_tokenizer: a processor or tokenizer with a `chat_template`.
        tools_in_use: whether the conversation shows tools or contains tool calls / tool messages.

    Returns:
        The template text to pass as `chat_template=`, or None when the object carries no chat template.
    """
    template = _current_template(processor_or_tokenizer)
    if template is None or not tools_in_use:
        return template
    if template == _shipped("qwen2_5_vl.jinja"):
        return tool_template()
    if "tool_calls" not in template:
        logger.warning("the chat template does not render tool calls; the model will not see its calls")
    return template


class _GuardedParser:
    """`parse_response` that turns a `RecursionError` (deeply nested generated JSON) into a `ValueError`."""

    guarded = True

    def __init__(self, original):
        self.original = original

    def __call__(self, *args, **kwargs):
        try:
            return self.original(*args, **kwargs)
        except RecursionError as err:
            raise ValueError("the response nests too deeply to parse as tool calls") from err


def guard_response_parser(processor_or_tokenizer):
    """Make a processor's / tokenizer's `parse_response` survive any generated text, for TRL's GRPO loop.

    TRL parses every completion with `tokenizer.parse_response` and falls back to plain text on `ValueError` or
    `TypeError` only; the JSON inside a `<tool_call>` with ~1,000 nested brackets raises `RecursionError` instead
    and would stop the training step. The guard re-raises it as a `ValueError`, so the completion becomes plain
    text (its malformed call then fails our format and verdict checks like any other). Idempotent.

    Args:
        processor_or_tokenizer: a processor or tokenizer; modified in place.

    Returns:
        The same object.
    """
    owners = (processor_or_tokenizer, getattr(processor_or_tokenizer, "tokenizer", None))
    for owner in {id(o): o for o in owners if o is not None}.values():
        original = getattr(owner, "parse_response", None)
        if original is not None and not getattr(original, "guarded", False):
            owner.parse_response = _GuardedParser(original)
    return processor_or_tokenizer


def use_tool_template(processor_or_tokenizer):
    """Make a processor (or tokenizer) render and parse tool calls in place, for TRL's GRPO tool loop.

    TRL refuses tools when the template cannot render them (the shipped Qwen2(.5)-VL one) and only knows how
    to parse calls for templates it recognises. This swaps in `chat_template_for(..., tools_in_use=True)` and,
    when the template changed and no response parser is set, sets TRL's Qwen parser (our template emits
    exactly the Qwen2.5 / Qwen3 `<tool_call>` format). A Qwen3-VL processor keeps its template: TRL recognises
    it. In both cases the response parser is guarded (`guard_response_parser`).

    Args:
        processor_or_tokenizer: a processor or tokenizer; modified in place.

    Returns:
        The same object.
    """
    guard_response_parser(processor_or_tokenizer)
    template = chat_template_for(processor_or_tokenizer, True)
    if template is None or template == _current_template(processor_or_tokenizer):
        return processor_or_tokenizer
    tokenizer = getattr(processor_or_tokenizer, "tokenizer", processor_or_tokenizer)
    for owner in {id(o): o for o in (processor_or_tokenizer, tokenizer)}.values():
        owner.chat_template = template
    parser = getattr(tokenizer, "response_template", None) or getattr(tokenizer, "response_schema", None)
    if parser is None:
        import transformers
        from packaging.version import Version
        from trl.chat_template_utils import qwen3_schema, qwen3_template

        # transformers >= 5.13 parses with the new-style template; older versions only know the legacy schema.
        if Version(transformers.__version__) >= Version("5.13.0.dev0"):
            tokenizer.response_template = qwen3_template
        else:
            tokenizer.response_schema = qwen3_schema
    return processor_or_tokenizer
