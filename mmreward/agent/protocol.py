"""The tool-call protocol of the judges: parse calls out of a generated turn, render calls and results back as
chat messages, and pick a chat template that can show them.

    calls, errors, content = parse_tool_calls(generated_text, family.tool_format)
    messages.append({"role": "assistant", "content": content, "tool_calls": format_tool_calls(calls)})
    messages.append(tool_message("Here are the selected frames.", images=frames))
    template = chat_template_for(processor, tools_in_use=True)
    text = processor.apply_chat_template(messages, tools=schemas, chat_template=template, tokenize=False)

Two formats, named by each family's `tool_format` (`models.backbone.FAMILIES`), both between `<tool_call>` and
`</tool_call>`, several calls per turn allowed:
- "hermes" (Qwen2/2.5/3-VL, InternVL): a JSON object `{"name": ..., "arguments": {...}}`;
- "xml" (Qwen3.5 / Qwen3.6 templates): `<function=NAME>` then `<parameter=KEY>\nVALUE\n</parameter>` blocks,
  then `</function>`; a value is text, read as JSON where it parses as JSON (the template writes objects and
  arrays as JSON, scalars as text), except parameters whose tool schema says "string", which stay text.
Without a format, each block's body decides (`<function=` opens an XML call). A malformed call is not an
exception: it becomes an error string the loop returns to the model as a tool message, and the episode goes on
(the model can fix its call).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from mmreward.agent.untrusted import MAX_JSON_CHARS, load_json, shown

logger = logging.getLogger(__name__)

OPEN, CLOSE = "<tool_call>", "</tool_call>"
TEMPLATE_DIR = Path(__file__).parent / "templates"
TOOL_FORMATS = ("hermes", "xml")
# The format reminder appended to every parse error, so that the model sees how to fix its call.
_FORMAT_HINT = f'Write each call as {OPEN}\n{{"name": <tool name>, "arguments": {{...}}}}\n{CLOSE}'
_XML_HINT = (f"Write each call as {OPEN}\n<function=TOOL_NAME>\n<parameter=NAME>\nVALUE\n</parameter>\n"
             f"</function>\n{CLOSE}")
_HINTS = {"hermes": _FORMAT_HINT, "xml": _XML_HINT}
_FUNCTION = re.compile(r"<function=([^>\n]*)>")
_PARAMETER = re.compile(r"<parameter=([^>\n]*)>")
_FUNCTION_CLOSE, _PARAMETER_CLOSE = "</function>", "</parameter>"
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


def _parse_block(body: str, tool_format: str | None = None) -> tuple[ToolCall | None, str | None]:
    """Parse the text between one pair of tool-call tags into a call, or explain why it is not one."""
    if tool_format == "xml" or (tool_format is None and body.startswith("<function=")):
        return _parse_xml_block(body)
    return _parse_hermes_block(body)


def _parse_hermes_block(body: str) -> tuple[ToolCall | None, str | None]:
    """A Hermes block: one JSON object with "name" and "arguments"."""
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


def _parse_xml_block(body: str) -> tuple[ToolCall | None, str | None]:
    """A Qwen3.5 block: `<function=NAME>`, `<parameter=KEY>\nVALUE\n</parameter>` blocks, `</function>`.

    Linear in the body's length (each search starts where the last one ended); never raises.
    """
    if len(body) > MAX_JSON_CHARS:
        return None, f"the tool call is too long ({len(body)} characters; at most {MAX_JSON_CHARS})."
    head = _FUNCTION.match(body)
    if head is None:
        return None, f"the tool call must start with <function=TOOL_NAME>. {_XML_HINT}"
    name = head.group(1).strip()
    if not name:
        return None, f"the tool call has an empty function name. {_XML_HINT}"
    if len(name) > MAX_NAME_CHARS:
        return None, f"the tool name {shown(name, 60)} is too long (at most {MAX_NAME_CHARS} characters)."
    if not body.endswith(_FUNCTION_CLOSE):
        return None, f"the call of {shown(name, 60)} is not closed by {_FUNCTION_CLOSE}. {_XML_HINT}"
    inner, cursor, arguments = body[:-len(_FUNCTION_CLOSE)], head.end(), {}
    while True:
        while cursor < len(inner) and inner[cursor].isspace():
            cursor += 1
        if cursor >= len(inner):
            return ToolCall(name=name, arguments=arguments), None
        tag = _PARAMETER.match(inner, cursor)
        if tag is None:
            return None, (f"unexpected text {shown(inner[cursor:cursor + 40], 60)} in the call of {shown(name, 60)}"
                          f"; only <parameter=NAME> blocks belong there. {_XML_HINT}")
        key = tag.group(1).strip()
        end = inner.find(_PARAMETER_CLOSE, tag.end())
        if end < 0:
            return None, f"<parameter={shown(key, 60)}> is not closed by {_PARAMETER_CLOSE}. {_XML_HINT}"
        if not key or len(key) > MAX_NAME_CHARS or key in arguments:
            problem = "is empty" if not key else "is too long" if len(key) > MAX_NAME_CHARS else "is repeated"
            return None, f"a parameter name {problem} in the call of {shown(name, 60)}. {_XML_HINT}"
        arguments[key] = _xml_value(name, key, inner[tag.end():end].strip())
        cursor = end + len(_PARAMETER_CLOSE)


def _xml_value(name: str, key: str, text: str):
    """A parameter value: text for string parameters of known tools, else JSON where it parses, else text."""
    if key in _string_parameters(name):
        return text
    value, reason = load_json(text)
    return text if reason is not None else value


@cache
def _string_parameters(name: str) -> frozenset[str]:
    """Parameters a known tool's schema declares as strings (`"75001"` and `75001` render alike in XML)."""
    from mmreward.agent.tools import TOOLS, tool_schemas

    if name not in TOOLS:
        return frozenset()
    properties = tool_schemas([name])[0]["function"].get("parameters", {}).get("properties", {})
    return frozenset(key for key, spec in properties.items() if spec.get("type") == "string")


def parse_tool_calls(text: str, tool_format: str | None = None) -> tuple[list[ToolCall], list[str], str]:
    """Split a generated assistant turn into its tool calls, its malformed calls and its remaining text.

    Well-formed blocks become `ToolCall`s and are cut out of the text (the chat template renders them again
    from `tool_calls`). Malformed blocks (invalid JSON, not an object, no name, arguments that are not an
    object), an unclosed `<tool_call>` and a stray `</tool_call>` become error strings, and their text stays
    in `content` so that the conversation history shows the model what the error refers to.

    Args:
        text: the generated turn (special tokens removed; the tool-call tags are ordinary text).
        tool_format: "hermes" or "xml" (the family's `tool_format`); None reads each block in the format its
            body starts with.

    Returns:
        (calls, errors, content): the calls in order, one error string per malformed block, and the text
        outside the well-formed blocks, stripped. Never raises: any string (deep nesting, megabytes, invalid
        unicode escapes) gives calls and errors; a non-string gives one error.
    """
    hint = _HINTS.get(tool_format, _FORMAT_HINT)
    if not isinstance(text, str):
        return [], [f"the turn is not text ({type(text).__name__}). {hint}"], ""
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
            errors.append(f"found {CLOSE} without an opening {OPEN}. {hint}")
            kept.append(text[cursor:tag.end()])
            cursor = tag.end()
            continue
        kept.append(text[cursor:tag.start()])
        after = _TAG.search(text, tag.end())
        if after is None or after.group() == OPEN:
            # The model stopped (or opened another call) before closing this one: report it, keep the text.
            errors.append(f"{OPEN} is not closed by {CLOSE}. {hint}")
            stop = len(text) if after is None else after.start()
            kept.append(text[tag.start():stop])
            cursor = stop
            continue
        raw = text[tag.start():after.end()]
        call, error = _parse_block(text[tag.end():after.start()].strip(), tool_format)
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


def render_tool_call(name: str, arguments: dict, tool_format: str = "hermes") -> str:
    """One call as the family's template renders it (and as the model is trained to write it).

    Args:
        name: the tool name.
        arguments: its arguments.
        tool_format: "hermes" (Qwen2.5 JSON) or "xml" (Qwen3.5: objects and arrays as JSON, scalars as text).

    Returns:
        The `<tool_call>…</tool_call>` block. Arguments that cannot be written as JSON (nested too deeply,
        not JSON values) give a block that fails every parse, never an exception.
    """
    try:
        if tool_format != "xml":
            return f"{OPEN}\n{json.dumps({'name': name, 'arguments': arguments})}\n{CLOSE}"
        params = "".join(f"<parameter={key}>\n{_xml_text(value)}\n</parameter>\n"
                         for key, value in dict(arguments).items())
        return f"{OPEN}\n<function={name}>\n{params}</function>\n{CLOSE}"
    except (TypeError, ValueError, RecursionError):
        return f"{OPEN}\n<arguments that are not representable as JSON>\n{CLOSE}"


def _xml_text(value) -> str:
    """A parameter value as qwen3_5_*.jinja writes it: mappings and sequences as JSON, anything else as text."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


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


def tool_template(name: str = "qwen2_vl_tools.jinja") -> str:
    """The text of one of our tool-capable templates (`agent/templates/<name>`; default: Qwen2(.5)-VL's)."""
    return _template(str(TEMPLATE_DIR / name))


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

    Keyed on the template text, not on model names: a family whose shipped template cannot render tools (its
    `tools_template` in `models.backbone.FAMILIES`: Qwen2-VL / Qwen2.5-VL, InternVL) gets our tool-capable
    template when tools are in use (identical output when no tools are involved). Templates that render tools
    (Qwen3-VL, Qwen3.5) are returned as they are, as is any other template (with a warning when tools are in use
    and the template never reads `tool_calls`).

    Args:
        processor_or_tokenizer: a processor or tokenizer with a `chat_template`.
        tools_in_use: whether the conversation shows tools or contains tool calls / tool messages.

    Returns:
        The template text to pass as `chat_template=`, or None when the object carries no chat template.
    """
    from mmreward.models.backbone import FAMILIES

    template = _current_template(processor_or_tokenizer)
    if template is None or not tools_in_use:
        return template
    for family in FAMILIES.values():
        if family.tools_template and template == _shipped(family.chat_template):
            return tool_template(family.tools_template)
    if "tool_calls" not in template:
        logger.warning("the chat template does not render tool calls; the model will not see its calls")
    return template


_PREFILLS: dict[str, str] = {}


def _prefill(template: str, owner) -> str:
    """The prefill of `template` (see `generation_prefill`), rendered once per template text."""
    if template in _PREFILLS:
        return _PREFILLS[template]
    rendered = [owner.apply_chat_template([{"role": "user", "content": "x"}], chat_template=template,
                                          tokenize=False, add_generation_prompt=add) for add in (False, True)]
    if not rendered[1].startswith(rendered[0]):
        _PREFILLS[template] = ""
        return ""
    from mmreward.models.backbone import FAMILIES

    tail, prefill = rendered[1][len(rendered[0]):], ""
    for header in {f.assistant_header for f in FAMILIES.values()}:
        if tail.startswith(header):
            prefill = tail[len(header):]
    _PREFILLS[template] = prefill
    return prefill


def generation_prefill(processor_or_tokenizer) -> str:
    """What the template writes after the assistant header of a generation prompt (Qwen3.5: `<think>\n`).

    The model's output continues from there, so the turn as a whole is the prefill plus the generated text:
    format checks and the conversation history read that whole turn.

    Args:
        processor_or_tokenizer: a processor or tokenizer with a chat template.

    Returns:
        The prefill ("" for templates that end the generation prompt at the header, or without a template).
    """
    template = _current_template(processor_or_tokenizer)
    if template is None:
        return ""
    owner = getattr(processor_or_tokenizer, "tokenizer", processor_or_tokenizer)
    try:
        return _prefill(template, owner)
    except Exception as err:  # noqa: BLE001 - a template that cannot render a plain user turn has no prefill
        logger.debug("no generation prefill: the template does not render a user turn (%s)", err)
        return ""


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


def _families() -> dict:
    from mmreward.models.families import FAMILIES

    return FAMILIES


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
    # A processor may already carry our tool template (LLaVA-OneVision's is swapped in at load); it still needs
    # the parser.
    ours = any(template == tool_template(f.tools_template) for f in _families().values() if f.tools_template)
    if template is None or (template == _current_template(processor_or_tokenizer) and not ours):
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
