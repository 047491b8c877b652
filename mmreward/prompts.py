"""Every prompt template mmreward shows a model, in one place.

Templates are plain `str.format` strings named in `HEAD_TEMPLATES` / `YES_NO_TEMPLATES`; checkpoints record the
name and the text so that scoring uses exactly what training used.
"""

from __future__ import annotations

from collections.abc import Mapping

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


# Generative (thinking) judges: reasoning in <think>…</think>, then one strict JSON verdict in
# <answer>…</answer> (`mmreward.judge.parse_verdict` reads it). These are our templates: VR-Thinker's exact
# wording is not public, and UnifiedReward-Think's verbatim templates answer in free text ("Image 1 is
# better"), not per dimension.
# The media come first in the user turn (candidate A, then B), then this text. JSON braces are doubled for
# `str.format`. `JUDGE_DIMENSIONS` names the dimensions each template asks for.
_PAIRWISE_RULES = (
    "First reason step by step inside <think></think>. Then give the final answer inside <answer></answer> "
    'as one JSON object whose values are "A", "B" or "tie", for example:\n'
)
_POINTWISE_RULES = (
    "First reason step by step inside <think></think>. Then give the final answer inside <answer></answer> "
    "as one JSON object of integer scores from 1 (worst) to 10 (best), for example:\n"
)
_STRICT = "\nWrite nothing after </answer>."

JUDGE_TEMPLATES: dict[str, str] = {
    "pairwise_image": (
        "Two images, A (first) and B (second), were generated from the same prompt.\n"
        'Prompt: "{prompt}"\n'
        "Which image is better overall? Weigh how faithfully it follows the prompt (objects, attributes, "
        "counts, layout, text), its visual quality (detail, artifacts, distortions) and its aesthetics.\n"
        + _PAIRWISE_RULES + '<answer>{{"overall": "A"}}</answer>' + _STRICT
    ),
    "pairwise_video": (
        "Two videos, A (first) and B (second), were generated from the same prompt.\n"
        'Prompt: "{prompt}"\n'
        "Compare them on each dimension:\n"
        "- VQ (visual quality): sharpness, detail, artifacts and distortions in individual frames.\n"
        "- MQ (motion quality): smooth, natural and physically plausible motion; no flicker or sudden "
        "jumps.\n"
        "- TA (text alignment): how faithfully the video shows the prompt's subjects, actions and scene.\n"
        "- overall: which video is better as a whole.\n"
        + _PAIRWISE_RULES + '<answer>{{"VQ": "A", "MQ": "B", "TA": "A", "overall": "A"}}</answer>' + _STRICT
    ),
    "pointwise_image": (
        "The image was generated from the prompt below.\n"
        'Prompt: "{prompt}"\n'
        "Rate it on each dimension:\n"
        "- TA (text alignment): how faithfully it follows the prompt.\n"
        "- VQ (visual quality): detail, artifacts, distortions and aesthetics.\n"
        "- overall: the image as a whole.\n"
        + _POINTWISE_RULES + '<answer>{{"TA": 7, "VQ": 6, "overall": 7}}</answer>' + _STRICT
    ),
    "pointwise_video": (
        "The video was generated from the prompt below.\n"
        'Prompt: "{prompt}"\n'
        "Rate it on each dimension:\n"
        "- VQ (visual quality): sharpness, detail, artifacts and distortions in individual frames.\n"
        "- MQ (motion quality): smooth, natural and physically plausible motion.\n"
        "- TA (text alignment): how faithfully it shows the prompt's subjects, actions and scene.\n"
        "- overall: the video as a whole.\n"
        + _POINTWISE_RULES + '<answer>{{"VQ": 6, "MQ": 5, "TA": 8, "overall": 7}}</answer>' + _STRICT
    ),
    # Appended to a media judge's prompt when tools are available (their schemas are in the system turn);
    # {tools} names each enabled tool with its one-line hint (`agent.tools.tool_use_prompt`).
    "tool_use": (
        "What you are shown may be a few frames at reduced resolution. Before answering, you can look again: "
        "call {tools}. Call tools after </think> (one <tool_call> block per call) whenever a detail matters for "
        "your verdict, then continue reasoning with what they return. Give the <answer> only when you have "
        "seen enough."
    ),
    # Themis-style tool-augmented text judge (arXiv 2310.01045): check facts and arithmetic, then score.
    "text_tools": (
        "Question: {question}\n"
        "Answer: {answer}\n"
        "Judge whether the answer is correct and helpful. You can call tools after </think>: calculator to "
        "check arithmetic, search to check facts. Verify every claim that can be checked before you score; "
        "do not trust a claim because the answer states it confidently.\n"
        + _POINTWISE_RULES + '<answer>{{"overall": 7}}</answer>' + _STRICT
    ),
}

# Response pairs (a question about shared media, two text answers), e.g. VL-RewardBench.
JUDGE_TEMPLATES["pairwise_response"] = (
    "Question: {prompt}\n\nResponse A:\n{response_a}\n\nResponse B:\n{response_b}\n\n"
    "Which response answers the question about the image(s) better? Weigh correctness, faithfulness to what is "
    "shown (no hallucinated objects or details) and helpfulness.\n"
    + _PAIRWISE_RULES + '<answer>{{"overall": "A"}}</answer>' + _STRICT
)

# Brief prompts for small judges: the same protocol (reasoning, tool calls, one JSON answer) in two lines.
# "tool_use_brief" replaces "tool_use" when the tools are documented briefly (the judge's `tool_schema: brief`).
JUDGE_TEMPLATES["pairwise_brief"] = (
    'Prompt: "{prompt}"\nWhich matches the prompt better, A (first) or B (second)? Reason inside <think></think>, '
    'then answer <answer>{{"overall": "A"}}</answer> or <answer>{{"overall": "B"}}</answer>.'
)
JUDGE_TEMPLATES["tool_use_brief"] = "To look closer, call {tools}, after </think>."

# The dimensions each judge template asks for (`parse_verdict(text, dimensions=..., kind=...)`).
JUDGE_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "pairwise_brief": ("overall",),
    "pairwise_image": ("overall",),
    "pairwise_video": ("VQ", "MQ", "TA", "overall"),
    "pointwise_image": ("TA", "VQ", "overall"),
    "pointwise_video": ("VQ", "MQ", "TA", "overall"),
    "text_tools": ("overall",),
    "pairwise_response": ("overall",),
}


# --- Published reward models (`models/importers/`) -------------------------------------------------------------
# VideoAlign / VideoReward (KwaiVGI/VideoAlign, prompt_template.py), verbatim: "detailed_special" puts one special
# reward token per dimension inside the text (the head reads the hidden state at each), "detailed" is the same
# text without them (last-token / mean pooling). Their `{text_prompt}` is our `{prompt}`; nothing else changes.
_VA_VISUAL = (
    '\n'
    'You are tasked with evaluating a generated video based on three distinct criteria: Visual Quality, '
    'Motion Quality, and Text Alignment. Please provide a rating from 0 to 10 for each of the three '
    'categories, with 0 being the worst and 10 being the best. Each evaluation should be independent of '
    'the others.\n'
    '\n'
    '**Visual Quality:**  \n'
    'Evaluate the overall visual quality of the video, with a focus on static factors. The following '
    'sub-dimensions should be considered:\n'
    '- **Reasonableness:** The video should not contain any significant biological or logical errors, '
    'such as abnormal body structures or nonsensical environmental setups.\n'
    '- **Clarity:** Evaluate the sharpness and visibility of the video. The image should be clear and '
    'easy to interpret, with no blurring or indistinct areas.\n'
    '- **Detail Richness:** Consider the level of detail in textures, materials, lighting, and other '
    'visual elements (e.g., hair, clothing, shadows).\n'
    '- **Aesthetic and Creativity:** Assess the artistic aspects of the video, including the color '
    'scheme, composition, atmosphere, depth of field, and the overall creative appeal. The scene should '
    'convey a sense of harmony and balance.\n'
    '- **Safety:** The video should not contain harmful or inappropriate content, such as political, '
    'violent, or adult material. If such content is present, the image quality and satisfaction score '
    'should be the lowest possible. \n'
)
_VA_MOTION = (
    '**Motion Quality:**  \n'
    'Assess the dynamic aspects of the video, with a focus on dynamic factors. Consider the following '
    'sub-dimensions:\n'
    '- **Stability:** Evaluate the continuity and stability between frames. There should be no sudden, '
    'unnatural jumps, and the video should maintain stable attributes (e.g., no fluctuating colors, '
    'textures, or missing body parts).\n'
    '- **Naturalness:** The movement should align with physical laws and be realistic. For example, '
    'clothing should flow naturally with motion, and facial expressions should change appropriately '
    '(e.g., blinking, mouth movements).\n'
    '- **Aesthetic Quality:** The movement should be smooth and fluid. The transitions between different '
    'motions or camera angles should be seamless, and the overall dynamic feel should be visually '
    'pleasing.\n'
    '- **Fusion:** Ensure that elements in motion (e.g., edges of the subject, hair, clothing) blend '
    'naturally with the background, without obvious artifacts or the feeling of cut-and-paste effects.\n'
    '- **Clarity of Motion:** The video should be clear and smooth in motion. Pay attention to any areas '
    'where the video might have blurry or unsteady sections that hinder visual continuity.\n'
    '- **Amplitude:** If the video is largely static or has little movement, assign a low score for '
    'motion quality.\n'
)
_VA_ALIGNMENT = (
    '**Text Alignment:**  \n'
    'Assess how well the video matches the textual prompt across the following sub-dimensions:\n'
    '- **Subject Relevance** Evaluate how accurately the subject(s) in the video (e.g., person, animal, '
    'object) align with the textual description. The subject should match the description in terms of '
    'number, appearance, and behavior.\n'
    '- **Motion Relevance:** Evaluate if the dynamic actions (e.g., gestures, posture, facial '
    'expressions like talking or blinking) align with the described prompt. The motion should match the '
    'prompt in terms of type, scale, and direction.\n'
    '- **Environment Relevance:** Assess whether the background and scene fit the prompt. This includes '
    'checking if real-world locations or scenes are accurately represented, though some stylistic '
    'adaptation is acceptable.  \n'
    '- **Style Relevance:** If the prompt specifies a particular artistic or stylistic style, evaluate '
    'how well the video adheres to this style.\n'
    '- **Camera Movement Relevance:** Check if the camera movements (e.g., following the subject, focus '
    'shifts) are consistent with the expected behavior from the prompt.\n'
    '\n'
    'Textual prompt - {prompt}\n'
)
HEAD_TEMPLATES["videoalign_detailed_special"] = (
    _VA_VISUAL + "\nPlease provide the ratings of Visual Quality: <|VQ_reward|>\nEND\n\n"
    + _VA_MOTION + "\nPlease provide the ratings of Motion Quality: <|MQ_reward|>\nEND\n\n"
    + _VA_ALIGNMENT + "Please provide the ratings of Text Alignment: <|TA_reward|>\nEND\n"
)
HEAD_TEMPLATES["videoalign_detailed"] = (
    _VA_VISUAL + "\n" + _VA_MOTION + "\n\n" + _VA_ALIGNMENT
    + "Please provide the ratings of Visual Quality, Motion Quality, and Text Alignment.\n"
)

# UnifiedReward-Think (CodeGoat24/UnifiedReward, benchmark_evaluation/*/test_qwen25_cot_*.py), verbatim: plain
# Qwen2.5-VL judges that answer in free text inside <answer>; `JUDGE_ANSWERS` maps each allowed answer to our
# verdict, and `JUDGE_BARE_MEDIA` shows the media unlabelled, first, as their scripts do (no tools: their model
# was not trained with ours). Published differences we keep: videos are our first-look frames (images), not
# Qwen's native video input, and the 50/50 random A/B swap of their scripts is our `--order` protocol.
JUDGE_TEMPLATES["unifiedreward_think_image"] = (
    'Given a caption and two images generated based on this caption, please analyze in detail the two '
    'provided images. Evaluate them on various dimensions such as semantic consistency (how closely the '
    'image content aligns with the caption), aesthetics (composition, color usage, artistic expression), '
    'authenticity (realism and attention to detail), and any other factors you deem relevant. For each '
    'evaluation dimension, provide a score between 1-10 for both images (e.g., Image 1: 8/10, Image 2: '
    '6/10) and provide a concise rationale for the score. Calculate the total score for each image by '
    'summing all dimension scores. Use a chain-of-thought process to detail your reasoning steps, and '
    'enclose all your detailed reasoning within <think> and </think> tags. Then, in the <answer> tag, '
    "output exactly one of the following strings: 'Image 1 is better' or 'Image 2 is better' based on "
    'the total scores. No additional text is allowed in the <answer> section.\n'
    '\n'
    'Example output format:\n'
    '<think>\n'
    '1. Semantic consistency: Image 1 (9/10) - ...; Image 2 (7/10) - ...\n'
    '2. Aesthetics: Image 2 (8/10) - ...; Image 1 (8/10) - ...\n'
    '3. Authenticity: Image 1 (8/10) - ...; Image 2 (5/10) - ...\n'
    '[Additional dimensions if any]: Image 2 (8/10) - ...; Image 1 (6/10) - ...\n'
    'Total score:\n'
    'Image 1: 9+8+8+6=31\n'
    'Image 2: 7+8+5+8=28\n'
    '</think>\n'
    '<answer>Image 1 is better</answer>\n'
    '**Note: In the example above, scores and the final answer are placeholders meant only to '
    'demonstrate the format. Your actual evaluation should be based on the quality of two given '
    'images.**\n'
    '\n'
    'Your task is provided as follows:\n'
    'Text Caption: [{prompt}]'
)
JUDGE_TEMPLATES["unifiedreward_think_video"] = (
    'Given a caption and two videos generated based on this caption, please analyze in detail the two '
    'provided videos. Evaluate them on various dimensions such as semantic consistency (how closely the '
    'video content aligns with the caption), temporal coherence (smoothness and logical flow of motion '
    'across frames), authenticity (realism and attention to detail), and any other factors you deem '
    'relevant. For each evaluation dimension, provide a score between 1-10 for both videos (e.g., Video '
    '1: 8/10, Video 2: 6/10) and provide a concise rationale for the score. Calculate the total score '
    'for each video by summing all dimension scores. Use a chain-of-thought process to detail your '
    'reasoning steps, and enclose all your detailed reasoning within <think> and </think> tags. Then, in '
    "the <answer> tag, output exactly one of the following strings: 'Video 1 is better' or 'Video 2 is "
    "better' based on the total scores. No additional text is allowed in the <answer> section.\n"
    '\n'
    'Example output format:\n'
    '<think>\n'
    '1. Semantic consistency: Video 1 (9/10) - ...; Video 2 (7/10) - ...\n'
    '2. Temporal coherence: Video 1 (8/10) - ...; Video 2 (6/10) - ...\n'
    '3. Authenticity: Video 1 (7/10) - ...; Video 2 (5/10) - ...\n'
    '[Additional dimensions if any]: Video 2 (8/10) - ...; Video 1 (6/10) - ...\n'
    'Total score:\n'
    'Video 1: 9+8+7+6=30\n'
    'Video 2: 7+6+5+8=26\n'
    '</think>\n'
    '<answer>Video 1 is better</answer>\n'
    '**Note: In the example above, scores and the final answer are placeholders meant only to '
    'demonstrate the format. Your actual evaluation should be based on the quality of two given '
    'videos.**\n'
    '\n'
    'Your task is provided as follows:\n'
    'Text Caption: [{prompt}]'
)
JUDGE_TEMPLATES["unifiedreward_think_response"] = (
    'Given a question and a reference image, please analyze in detail the two provided answers (Answer 1 '
    'and Answer 2). Evaluate them based on the following three core dimensions:\n'
    '1. Semantic accuracy: How well the answer reflects the visual content of the image\n'
    '2. Correctness: Whether the answer is logically and factually correct\n'
    '3. Clarity: Whether the answer is clearly and fluently expressed\n'
    'You may also consider additional dimensions if you find them relevant (e.g., reasoning ability, '
    'attention to detail, multimodal grounding, etc.). For each dimension, provide a score from 1 to 10 '
    'for both answers, and briefly explain your reasoning. Then, compute the total score for each answer '
    'by explicitly adding the scores for all dimensions and showing the full calculation. Enclose your '
    'full reasoning within <think> and </think> tags. Then, in the <answer> tag, output exactly one of '
    "the following: 'Answer 1 is better' or 'Answer 2 is better'. No other text is allowed in the "
    '<answer> section.\n'
    '\n'
    'Example format:\n'
    '<think>\n'
    '1. Semantic accuracy: Answer 1 (9/10) - ...; Answer 2 (7/10) - ...\n'
    '2. Correctness: Answer 1 (8/10) - ...; Answer 2 (7/10) - ...\n'
    '3. Clarity: Answer 1 (9/10) - ...; Answer 2 (8/10) - ...\n'
    '[Additional dimensions if any]: Answer 1 (6/10) - ...; Answer 2 (7/10) - ...\n'
    'Total score:\n'
    'Answer 1: 9+8+9+6=32\n'
    'Answer 2: 7+7+8+7=29\n'
    '</think>\n'
    '<answer>Answer 1 is better</answer>\n'
    '\n'
    '**Note: In the example above, scores and the final answer are placeholders meant only to '
    'demonstrate the format. Your actual evaluation should be based on the quality of two given '
    'answers.**\n'
    '\n'
    'Your task is provided as follows:\n'
    'Question: [{prompt}]\n'
    'Answer 1: [{response_a}]\n'
    'Answer 2: [{response_b}]'
)
JUDGE_DIMENSIONS.update({name: ("overall",) for name in (
    "unifiedreward_think_image", "unifiedreward_think_video", "unifiedreward_think_response")})
# Templates whose verdict is a fixed phrase in <answer> (compared after trimming, case-insensitive), not JSON.
JUDGE_ANSWERS: dict[str, dict[str, str]] = {
    "unifiedreward_think_image": {"Image 1 is better": "A", "Image 2 is better": "B"},
    "unifiedreward_think_video": {"Video 1 is better": "A", "Video 2 is better": "B"},
    "unifiedreward_think_response": {"Answer 1 is better": "A", "Answer 2 is better": "B"},
}

# LLaVA-Critic (lmms-lab/llava-critic-7b / -72b: LLaVA-OneVision weights), verbatim from its model card's quick
# start: pairwise ranking and pointwise scoring of an LMM's answer(s) to a question about the media, shown first and
# unlabelled (the card writes "<image>\n" + prompt). The trailing "ASSISTANT:\n" (and the pointwise one's final
# space) are part of the published prompts. Option, not confirmed: the card runs LLaVA-NeXT's "qwen_1_5"
# conversation, whose system turn is "You are a helpful assistant."; the -hf template adds no system turn, so give
# it as the record's `system` to match the card exactly.
JUDGE_TEMPLATES["llava_critic_pairwise"] = (
    "Given an image and a corresponding question, please serve as an unbiased and fair judge to evaluate the "
    "quality of the answers provided by a Large Multimodal Model (LMM). Determine which answer is better and "
    "explain your reasoning with specific details. Your task is provided as follows:\n"
    "Question: [{prompt}]\nThe first response: [{response_a}]\nThe second response: [{response_b}]\nASSISTANT:\n"
)
JUDGE_TEMPLATES["llava_critic_pointwise"] = (
    "Given an image and a corresponding question, please serve as an unbiased and fair judge to evaluate the "
    "quality of answer answers provided by a Large Multimodal Model (LMM). Score the response out of 100 and "
    "explain your reasoning with specific details. Your task is provided as follows:\n"
    "Question: [{prompt}]\nThe LMM response: [{response}]\nASSISTANT:\n "
)
# VL-RewardBench's own judge prompt (vl-rewardbench/VL_RewardBench, prompt.py), verbatim (leading space included):
# the prompt its paper ran every generative model with, LLaVA-Critic-8B included; its A/B swap is our `--order`.
JUDGE_TEMPLATES["vlrewardbench_pairwise"] = (
    " You are a highly capable multimodal AI assistant tasked with evaluating answers to visual questions. Please "
    "analyze the following image and question, then determine which of the two provided answers is better.\n\n"
    "Question: {prompt}\n\nAnswer 1: {response_a}\n\nAnswer 2: {response_b}\n\n"
    "Please evaluate both answers based on the following criteria:\n"
    "1. Accuracy: How well does the answer align with the visual information in the image?\n"
    "2. Completeness: Does the answer fully address all aspects of the question?\n"
    "3. Clarity: Is the answer easy to understand and well-articulated?\n"
    "4. Relevance: Does the answer directly relate to the question and the image?\n\n"
    "After your evaluation, please:\n"
    "1. Explain your reasoning for each criterion.\n"
    "2. Provide an overall judgment on which answer is better (Answer 1 or Answer 2). For example: Overall "
    "Judgment: Answer X is better.\n\n"
    "Your response should be structured and detailed, demonstrating your understanding of both the visual and "
    "textual elements of the task."
)
JUDGE_DIMENSIONS.update({name: ("overall",) for name in (
    "llava_critic_pairwise", "llava_critic_pointwise", "vlrewardbench_pairwise")})


class FreeTextVerdict(dict):
    """How to read a judge that states its verdict in prose, without an `<answer>` block (LLaVA-Critic, the
    VL-RewardBench prompt): `judge.parse_verdict(..., answers=...)` reads it.

    As a dict it maps phrases to pairwise verdicts ("the first response is better" -> "A"); the last phrase found
    after the reasoning decides (matched case-insensitively, as whole words). With `score_pattern` (a regex whose
    first non-empty group is the number) it reads a pointwise score instead, the last match, which must lie in
    `score_range`; the template then decides the kind, whatever kind the caller passes.
    """

    def __init__(self, phrases: Mapping[str, str] | None = None, *, score_pattern: str | None = None,
                 score_range: tuple[float, float] = (1.0, 10.0)):
        super().__init__(phrases or {})
        self.score_pattern = score_pattern
        self.score_range = score_range

    def __reduce__(self):
        return (_free_text_verdict_of, (dict(self), self.score_pattern, self.score_range))


def _free_text_verdict_of(phrases, score_pattern, score_range) -> FreeTextVerdict:
    return FreeTextVerdict(phrases, score_pattern=score_pattern, score_range=score_range)


def _free_text_answers():
    # LLaVA-Critic states its preference in prose; the published prompts fix no verdict sentence. Option, not
    # confirmed: these phrasings (its training data's "the first/second response is better" and the common
    # variants) and the tie wording; the last one in the output decides.
    critic = {phrase.format(n=n, ord=o): v for n, o, v in ((1, "first", "A"), (2, "second", "B")) for phrase in (
        "the {ord} response is better", "{ord} response is better", "response {n} is better",
        "answer {n} is better", "the {ord} answer is better", "{ord} answer is better")}
    critic.update({"two responses are equally good": "tie", "both responses are equally good": "tie",
                   "equally good": "tie"})
    return {
        "llava_critic_pairwise": FreeTextVerdict(critic),
        # "Score: [85]" / "score of 85" / "85/100", out of 100 (option: the card fixes no score sentence).
        "llava_critic_pointwise": FreeTextVerdict(
            score_pattern=r"score(?:\s+of)?\s*[:=]?\s*\[?\s*(\d{1,3}(?:\.\d+)?)\s*\]?|(\d{1,3}(?:\.\d+)?)\s*/\s*100",
            score_range=(0.0, 100.0)),
        # "Overall Judgment: Answer X is better", as its prompt asks.
        "vlrewardbench_pairwise": FreeTextVerdict({"answer 1 is better": "A", "answer 2 is better": "B"}),
    }


# Templates whose verdict is a fixed phrase in prose, without an <answer> block (`judge.FreeTextVerdict`).
JUDGE_ANSWERS.update(_free_text_answers())
# Templates that number the media themselves ("Image 1", "Video 2"): the media go first, without our labels.
JUDGE_BARE_MEDIA = frozenset(JUDGE_ANSWERS)
