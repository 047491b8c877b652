"""Agentic judges: tools the model can call, the tool-call protocol, and the multi-turn episode loop.

- ``mmreward.agent.tools``: ``TOOLS`` (select_frames, crop, calculator, search), their JSON schemas and
  ``call_tool``; tools see only the episode's media (``tools.context.ToolContext``).
- ``mmreward.agent.protocol``: parsing and formatting tool calls in the chat template's format.
- ``mmreward.agent.loop``: ``run_episode`` — generate, call tools, append results, until a verdict.

Importing this package is light: submodules load their dependencies (torch, transformers) when imported.
"""
