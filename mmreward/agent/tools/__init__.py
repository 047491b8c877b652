"""The judge's tools: the ``TOOLS`` registry, their JSON schemas, and ``call_tool`` (validated, sandboxed calls).

    from mmreward.agent.tools import TOOLS, call_tool, tool_schemas
    from mmreward.agent.tools.context import ToolContext, use_context
    schemas = tool_schemas(DEFAULT_TOOLS)                        # for the chat template's `tools=`
    with use_context(ToolContext(videos=[item])):
        result = call_tool("select_frames", {"target_frames": [1, 48]})   # ToolResult(text, images)

One file per tool. Each tool is a typed function whose Google-style docstring is its schema
(``transformers.utils.get_json_schema``). Tools never take a path, URL or code from the model: media tools see
only the active ``ToolContext``'s media, the calculator walks a whitelisted syntax tree, search queries only the
configured backend. Every failure the model can fix reaches it as a ``ToolError`` message.

A tool tells the judge what it is for in one line: its ``hint`` attribute (set in its file), else the first
sentence of its docstring. ``tool_use_prompt(names)`` composes the prompt paragraph from the enabled tools, so a
new tool is its file plus one line in ``TOOLS``.
"""

import inspect
import types
import typing
from collections.abc import Callable, Collection
from typing import Any

from mmreward.agent.tools.calculator import calculator
from mmreward.agent.tools.context import ToolContext, ToolError, ToolResult, current_context, use_context
from mmreward.agent.tools.crop import crop
from mmreward.agent.tools.frames import select_frames
from mmreward.agent.tools.search import BM25Backend, SearchBackend, search
from mmreward.agent.untrusted import MAX_SHOWN_CHARS, shown
from mmreward.prompts import JUDGE_TEMPLATES, render

__all__ = [
    "BRIEF_DOCS", "DEFAULT_TOOLS", "TOOL_SCHEMA_STYLES", "TOOLS", "BM25Backend", "SearchBackend", "ToolContext", "ToolError", "ToolResult",
    "brief_doc", "call_tool", "check_tool_schema", "current_context", "judge_tool_schemas", "rendered_order", "tool_hint", "tool_schemas", "tool_use_prompt", "use_context",
]

# Longest tool error message: every echoed value is capped (``MAX_SHOWN_CHARS``), this is the backstop.
MAX_ERROR_CHARS = 1000

TOOLS: dict[str, Callable[..., ToolResult | str]] = {
    "select_frames": select_frames,
    "crop": crop,
    "calculator": calculator,
    "search": search,
}

# Brief schemas (`tool_schemas(names, brief=True)`, the judge's `tool_schema: brief`): the same tools and
# parameters with one short line each, about a third of the tokens of the full docstrings. For small judges and
# tight context budgets, where ~600 tokens of tool documentation in every sequence cost more than they teach.
# A tool without an entry keeps its full docstring (`brief_doc`).
BRIEF_DOCS: dict[str, str] = {
    "select_frames": """Select frames of a video by number, by time, or by a time window.

    Args:
        target_frames: Frame numbers, from 1 to N.
        timestamps: Times in seconds.
        start: Window start in seconds.
        end: Window end in seconds.
        video: Video number, from 1.
    """,
    "crop": """Zoom into a region of an image.

    Args:
        box: [x0, y0, x1, y1] as fractions of width and height.
        image: Image number, from 1.
    """,
    "calculator": """Evaluate an arithmetic expression.

    Args:
        expression: The expression, e.g. "(3 + 4) * 2".
    """,
    "search": """Search the reference collection.

    Args:
        query: What to look for.
        k: How many passages to return.
    """,
}
TOOL_SCHEMA_STYLES = ("full", "brief")

# The tools a media judge gets unless configured otherwise (JudgeConfig, JudgeEnv, the trainers' judge args).
DEFAULT_TOOLS: tuple[str, ...] = ("select_frames", "crop")


def tool_hint(name: str) -> str:
    """What a tool is for, as one line of the judge's prompt ("see other frames of a video").

    Args:
        name: a name in ``TOOLS``.

    Returns:
        The tool's ``hint`` attribute, or else the first sentence of its docstring without its final period
        and with a lower-case first letter ("Zoom into a region." -> "zoom into a region").
    """
    _check_names([name], TOOLS)
    fn = TOOLS[name]
    hint = getattr(fn, "hint", None)
    if not hint:
        summary = (inspect.getdoc(fn) or name).split("\n\n")[0].replace("\n", " ").strip().rstrip(".")
        hint = summary[:1].lower() + summary[1:]
    return hint


def tool_use_prompt(names: Collection[str], *, brief: bool = False) -> str:
    """The paragraph appended to a media judge's prompt that says which tools it can call and what for.

    Args:
        names: the enabled tools, in the order to name them (non-empty).
        brief: the one-line ``JUDGE_TEMPLATES["tool_use_brief"]`` (with brief tool schemas).

    Returns:
        ``JUDGE_TEMPLATES["tool_use"]`` filled with "select_frames to see other frames of a video, or crop to
        zoom into a region of an image or frame" (each enabled tool with its ``tool_hint``).
    """
    names = list(names)
    if not names:
        raise ValueError("tool_use_prompt needs at least one tool; a judge without tools gets no tool paragraph")
    hints = [f"{name} to {tool_hint(name)}" for name in names]
    listed = hints[0] if len(hints) == 1 else ", ".join(hints[:-1]) + ", or " + hints[-1]
    return render(JUDGE_TEMPLATES["tool_use_brief" if brief else "tool_use"], tools=listed)


def tool_schemas(names: Collection[str] | None = None, *, brief: bool = False) -> list[dict[str, Any]]:
    """OpenAI/Qwen function schemas ``{"type": "function", "function": {...}}`` of the named tools.

    Args:
        names: tool names from ``TOOLS``, in the order to show them (None: all).
        brief: the short descriptions of ``BRIEF_DOCS`` instead of the full docstrings (same parameters).

    Returns:
        One schema per tool, built from its signature and docstring by ``transformers.utils.get_json_schema``.

    Raises:
        ToolError: an unknown name.
    """
    from transformers.utils import get_json_schema  # heavy import, needed only to render prompts

    names = list(TOOLS) if names is None else list(names)
    _check_names(names, TOOLS)
    return [get_json_schema(briefly(TOOLS[name]) if brief else TOOLS[name]) for name in names]


def rendered_order(names: Collection[str]) -> list[str]:
    """The order in which a judge's tool schemas are rendered into its system turn: by name.

    TRL's GRPO environment lists a class's tool methods with `inspect.getmembers`, i.e. sorted by name, and there is
    no way to give it another order; SFT, RFT and inference render the same sequence, so that a judge sees in its
    GRPO rollouts exactly the prompt it was trained and is run on (a tiny judge trained on one order wrote broken
    calls under the other).
    """
    return sorted(names)


def judge_tool_schemas(names: Collection[str], style: str = "full") -> list[dict[str, Any]] | None:
    """The tool schemas of a judge's system turn: its tools in `rendered_order`, documented in `style`.

    Args:
        names: the judge's tools (may be empty).
        style: "full" (docstrings) or "brief" (``BRIEF_DOCS``), the judge's `tool_schema`.

    Returns:
        The schemas, or None for a judge without tools (no tool block at all).
    """
    return tool_schemas(rendered_order(names), brief=style == "brief") if names else None


def check_tool_schema(style: str) -> None:
    """Raise a ``ConfigError`` unless `style` is a known tool schema style (``TOOL_SCHEMA_STYLES``)."""
    if style not in TOOL_SCHEMA_STYLES:
        from mmreward.errors import ConfigError

        raise ConfigError(f"tool_schema must be one of {', '.join(TOOL_SCHEMA_STYLES)}, got {shown(style, 80)}")


def brief_doc(name: str) -> str:
    """A tool's short docstring (``BRIEF_DOCS``), or its full one when it has none."""
    return BRIEF_DOCS.get(name) or TOOLS[name].__doc__ or ""


def briefly(fn: Callable) -> Callable:
    """A stand-in for a tool with its signature and its ``BRIEF_DOCS`` docstring (what schemas are built from)."""

    def stand_in(*args, **kwargs):
        return fn(*args, **kwargs)

    stand_in.__signature__ = inspect.signature(fn)
    stand_in.__name__ = stand_in.__qualname__ = fn.__name__
    stand_in.__doc__ = brief_doc(fn.__name__)
    stand_in.__annotations__ = dict(fn.__annotations__)
    return stand_in


def _check_names(names: Collection[str], available: Collection[str]) -> None:
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ToolError(f"Unknown tool {shown(unknown[0], 80)}. Available tools: {', '.join(available)}.")


def call_tool(name: str, arguments: dict[str, Any] | None, *, tools: Collection[str] | None = None) -> ToolResult:
    """Run a tool on model-supplied arguments, checked against its signature first.

    Args:
        name: the tool's name.
        arguments: the parsed JSON arguments (None means no arguments).
        tools: the names enabled for this episode (default: all of ``TOOLS``).

    Returns:
        The tool's ``ToolResult`` (a plain-text return is wrapped into one).

    Raises:
        ToolError: unknown tool; missing, unexpected or wrongly typed arguments; anything the tool reports; or
            "Execution error: ..." for any other exception inside the tool. Messages are capped at
            ``MAX_ERROR_CHARS`` (model-supplied values in them at ``MAX_SHOWN_CHARS``).
    """
    available = list(TOOLS) if tools is None else [t for t in tools if t in TOOLS]
    _check_names([name], available)
    fn = TOOLS[name]
    try:
        kwargs = _checked_arguments(name, fn, {} if arguments is None else arguments)
        result = fn(**kwargs)
    except ToolError as e:
        message = str(e)
        if len(message) <= MAX_ERROR_CHARS:
            raise
        raise ToolError(message[:MAX_ERROR_CHARS - 3] + "...") from e
    except Exception as e:  # any other failure inside a tool becomes a message the model reads
        raise ToolError(f"Execution error: {type(e).__name__}: {str(e)[:MAX_SHOWN_CHARS]}") from e
    return result if isinstance(result, ToolResult) else ToolResult(str(result))


def _checked_arguments(name: str, fn: Callable, arguments: Any) -> dict[str, Any]:
    """The arguments, converted where lossless (2.0 -> 2), or a ToolError naming every problem."""
    if not isinstance(arguments, dict):
        raise ToolError(f"{name}: arguments must be a JSON object, got {type(arguments).__name__}.")
    params = inspect.signature(fn).parameters
    hints = typing.get_type_hints(fn)
    extra = [a for a in arguments if a not in params]
    if extra:
        listed = ", ".join(shown(a, 40) for a in extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        raise ToolError(f"{name}: unexpected argument(s) {listed}; it takes {', '.join(map(repr, params))}.")
    missing = [p for p, spec in params.items() if spec.default is inspect.Parameter.empty and p not in arguments]
    if missing:
        raise ToolError(f"{name}: missing required argument(s) {', '.join(map(repr, missing))}.")
    checked = {}
    for key, value in arguments.items():
        ok, converted = _conform(value, hints[key])
        if not ok:
            raise ToolError(f"{name}: argument {key!r} must be {_describe(hints[key])}, got {shown(value, 60)}.")
        checked[key] = converted
    return checked


def _conform(value: Any, hint: Any) -> tuple[bool, Any]:
    """(whether ``value`` fits the type hint, the value converted to it): JSON types, no guessing from strings."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return True, None
        for option in (a for a in args if a is not type(None)):
            ok, converted = _conform(value, option)
            if ok:
                return True, converted
        return False, value
    if origin is list:
        if not isinstance(value, list):
            return False, value
        items = [_conform(v, args[0]) if args else (True, v) for v in value]
        return all(ok for ok, _ in items), [v for _, v in items]
    if isinstance(value, bool):
        return hint is bool, value
    if hint is int:
        # JSON has one number type: 3.0 is accepted as 3, 3.5 is not.
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        return isinstance(value, int), value
    if hint is float:
        if not isinstance(value, (int, float)):
            return False, value
        try:
            return True, float(value)
        except OverflowError:  # an integer with hundreds of digits is no coordinate or time
            return False, value
    if hint in (str, bool):
        return isinstance(value, hint), value
    return True, value  # a hint this checker does not know: the tool validates it itself


def _describe(hint: Any) -> str:
    """A JSON-ish name of a type hint for error messages: list[int] | None -> "an array of integers or null"."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in args)
    if origin is list:
        inner = _describe(args[0]).removeprefix("an ").removeprefix("a ") if args else "value"
        return f"an array of {inner}s"
    names = {int: "an integer", float: "a number", str: "a string", bool: "a boolean"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))
