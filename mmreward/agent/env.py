"""The judge's environment: one example's media, and the tools as methods — for our loop and for TRL.

    env = JudgeEnv(tools=("select_frames", "crop"))
    env.reset(**record.to_dict())                       # loads the example's media (tools see only these)
    env.call("select_frames", {"target_frames": [1, 48]})
    GRPOTrainer(..., environment_factory=env_factory(tools=("select_frames", "crop")))   # same tools in RL

TRL's `GRPOTrainer(environment_factory=…)` exposes an environment's public methods as tools (schemas from their
docstrings) and calls `reset(**row)` before each rollout; `env_factory` builds a class whose methods are exactly
the chosen tools, each with the tool's own signature and docstring, returning content blocks that carry images.
"""

from __future__ import annotations

import inspect

from mmreward.agent.tools import (
    DEFAULT_TOOLS,
    TOOLS,
    ToolError,
    ToolResult,
    brief_doc,
    call_tool,
    judge_tool_schemas,
)
from mmreward.agent.tools.context import ToolContext, use_context
from mmreward.agent.untrusted import shown


class JudgeEnv:
    """Holds the current example's media in a `ToolContext`; `call` runs a tool inside that context."""

    def __init__(self, tools: tuple[str, ...] = DEFAULT_TOOLS, **context_settings):
        unknown = sorted(set(tools) - set(TOOLS))
        if unknown:
            raise ValueError(f"unknown tool(s) {', '.join(unknown)}; available: {', '.join(TOOLS)}")
        self.tools = tuple(tools)
        self.context_settings = context_settings
        self.context = ToolContext(**context_settings)

    def reset(self, **example) -> None:
        """Load an example's media from a record (mmreward schema).

        TRL passes a dataset row's columns: the record goes in a `record` column (a dict or its JSON) because TRL's
        own `prompt` column holds chat messages; `base_dir` resolves relative media paths. A record's fields may
        also be passed directly. Videos of the prompt and of the candidates become the episode's videos (in order:
        shared, A, B), images likewise. Returns None: the prompt already shows the media.
        """
        import json

        from mmreward.data.schema import parse_record

        base_dir = example.get("base_dir")
        raw = example.get("record", example)
        raw = json.loads(raw) if isinstance(raw, str) else dict(raw)
        raw.pop("base_dir", None)
        record = parse_record(raw, base_dir=base_dir)
        self.context = context_for(record, **self.context_settings)

    def load(self, record) -> None:
        """Load a parsed record's media (what `reset` does for a dict row)."""
        self.context = context_for(record, **self.context_settings)

    def call(self, name: str, arguments: dict) -> ToolResult:
        """Run tool `name` with `arguments` on this example's media; `ToolError` for anything the model got wrong."""
        if name not in self.tools:
            raise ToolError(f"unknown tool {shown(name, 80)}; available tools: {', '.join(self.tools)}")
        with use_context(self.context):
            return call_tool(name, arguments)

    def tool_schemas(self, brief: bool = False) -> list[dict]:
        """JSON schemas of this environment's tools (what the chat template shows the model), in the order the
        model sees them everywhere (`agent.tools.rendered_order`); `brief`: the short `agent.tools.BRIEF_DOCS`."""
        return judge_tool_schemas(self.tools, "brief" if brief else "full") or []


def context_for(record, **settings) -> ToolContext:
    """A `ToolContext` holding a record's videos and images (shared media first, then A's, then B's).

    Items stay `MediaItem`s: the tools load them through `data.media` (path, bytes / base64 or URL, with its size
    and time limits) when first used, so a URL is fetched, never mistaken for a local path.
    """
    videos, images = [], []
    for item in record.all_media():
        (videos if item.type in ("video", "frames") else images).append(item)
    return ToolContext(videos=videos, images=images, **settings)


def _content_blocks(result: ToolResult) -> list[dict]:
    """TRL's multimodal tool response: image blocks then the text."""
    return [*({"type": "image", "image": image} for image in result.images), {"type": "text", "text": result.text}]


def _method(name: str, brief: bool = False):
    tool = TOOLS[name]

    def method(self, **arguments):
        return _content_blocks(self._env.call(name, arguments))

    signature = inspect.signature(tool)
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    method.__signature__ = signature.replace(parameters=[self_param, *signature.parameters.values()])
    method.__name__ = method.__qualname__ = name
    # TRL builds the tool's schema from this docstring.
    method.__doc__ = brief_doc(name) if brief else tool.__doc__
    method.__annotations__ = dict(tool.__annotations__)
    return method


def env_factory(tools: tuple[str, ...] = DEFAULT_TOOLS, brief: bool = False, **context_settings):
    """A zero-argument factory for TRL's `environment_factory`: each call returns a fresh environment whose public
    methods are exactly `tools`.

    Args:
        tools: tool names from `TOOLS`.
        brief: document the tools with `agent.tools.BRIEF_DOCS` (the judge's `tool_schema: brief`).
        **context_settings: `ToolContext` settings (workspace_frames, max_frames_per_call, pixel budgets, …).
    """
    # Composition, not inheritance: TRL turns every public method into a tool, so the class it sees has only
    # `reset` and the tool methods.
    def __init__(self):
        self._env = JudgeEnv(tools=tuple(tools), **context_settings)

    def reset(self, **example) -> None:
        self._env.reset(**example)

    cls = type("JudgeToolEnv", (), {"__init__": __init__, "reset": reset, **{n: _method(n, brief) for n in tools}})
    return cls
