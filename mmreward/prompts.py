"""Every prompt template mmreward shows a model, in one place.

Templates are plain `str.format` strings named in `HEAD_TEMPLATES` / `YES_NO_TEMPLATES`; checkpoints record the
name and the text so that scoring uses exactly what training used.
"""

from __future__ import annotations

# Discriminative (head) reward models: the user turn that precedes the media and the candidate.
# "{prompt}" is the record's prompt; "{kind}" is "image", "video" or "response".
HEAD_TEMPLATES: dict[str, str] = {
    # The record prompt as is: right for response pairs (a question about shared media, answered by A or B).
    "plain": "{prompt}",
    # Generation pairs: the candidate is the generated media itself.
    "generation": "Prompt: {prompt}\nHow good is this {kind}, and how well does it match the prompt?",
}

# Generative yes/no scoring (RewardDance). Pointwise: one candidate; pairwise: candidate vs a reference, the
# candidate shown first. The answer word is read at the first generated position.
YES_NO_TEMPLATES: dict[str, str] = {
    "pointwise": 'Does the {kind} match the prompt "{prompt}" and look good? Answer yes or no.',
    "pointwise_response": "Question: {prompt}\nResponse: {response}\nIs the response correct and helpful? "
                          "Answer yes or no.",
    "pairwise": 'Prompt: "{prompt}"\nIs the first {kind} better than the second? Answer yes or no.',
    "pairwise_response": "Question: {prompt}\nResponse 1: {response_a}\nResponse 2: {response_b}\n"
                         "Is Response 1 better than Response 2? Answer yes or no.",
}


def render(template: str, **values: str) -> str:
    """Fill a template, naming the missing field if a value is absent.

    Args:
        template: a `str.format` template.
        **values: field values.

    Returns:
        The rendered text.
    """
    try:
        return template.format(**values)
    except KeyError as err:
        raise KeyError(f"prompt template needs field {err.args[0]!r}; template: {template!r}") from None
