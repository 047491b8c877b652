"""The offline demo: the smallest real end-to-end path through mmreward, on a 2-core CPU in seconds.

    mmreward demo [--out DIR] [--family qwen2_5_vl]

It builds a tiny random-weight Qwen-VL checkpoint, writes a synthetic image and an mp4 video, loads both through
the one media path (`mmreward.data.media`: EXIF/RGB/pixel budget for the image; qwen-vl-utils frame sampling
and decoding of only the sampled frames for the video), runs the model on them with the real processor and chat
template, and reports what it did: sampled frames and timestamps, vision tokens, P("yes") at the answer position
and a short greedy generation. The weights are random, so the answer itself is noise; every step is real.
Training on a synthetic preference set replaces this once the Bradley–Terry trainer lands.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

QUESTION = 'Does the video show the same scene as the image? Answer yes or no.'


@dataclass
class DemoReport:
    """What the demo did, for the CLI to print and tests to check."""

    checkpoint: Path
    image_size: tuple[int, int]
    video_frames: int
    video_timestamps: list[float]
    video_indices: list[int]
    video_shape: tuple[int, ...]
    prompt_tokens: int
    image_tokens: int
    video_tokens: int
    p_yes: float
    generated: str
    seconds: float


def _write_inputs(out: Path) -> tuple[Path, Path]:
    """A synthetic red-circle PNG and a 4 s, 10 fps mp4 whose frame index is drawn in the pixels."""
    from PIL import Image, ImageDraw

    from mmreward.data.synthetic import write_index_video

    image_path = out / "red_circle.png"
    img = Image.new("RGB", (160, 120), "white")
    ImageDraw.Draw(img).ellipse((20, 30, 80, 90), fill=(220, 30, 30))
    img.save(image_path)
    video_path = write_index_video(out / "index.mp4", n_frames=40, fps=10)
    return image_path, video_path


def _p_yes(logits, tokenizer) -> float:
    """P("yes") normalised over {"yes", "no"} from next-token logits: (V,)."""
    import torch

    ids = [tokenizer.convert_tokens_to_ids(t) for t in ("yes", "no")]
    return torch.softmax(logits[ids].float(), dim=-1)[0].item()


def run_demo(out_dir: str | Path, family: str = "qwen2_5_vl") -> DemoReport:
    """Build a tiny model, load an image and a video through the media path, and run the model on them.

    Args:
        out_dir: working directory for the checkpoint and the generated media.
        family: tiny model family ("qwen2_vl", "qwen2_5_vl", "qwen3_vl").

    Returns:
        A `DemoReport` describing every step.
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from mmreward.data.media import VideoSampling, load_image, load_video
    from mmreward.models.tiny import FAMILIES, make_tiny_vlm

    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = make_tiny_vlm(out / f"tiny-{family}", family=family)
    image_path, video_path = _write_inputs(out)

    processor = AutoProcessor.from_pretrained(ckpt)
    model = AutoModelForImageTextToText.from_pretrained(ckpt).eval()
    factor = FAMILIES[family].patch_size * 2
    image_budget = processor.image_processor.size
    video_budget = processor.video_processor.size
    image = load_image(image_path, min_pixels=image_budget["shortest_edge"],
                       max_pixels=image_budget["longest_edge"], factor=factor)
    sampling = VideoSampling(fps=2.0, min_pixels=video_budget["shortest_edge"],
                             max_pixels=video_budget["longest_edge"], factor=factor)
    video = load_video(video_path, sampling=sampling)
    logger.info("image %s -> %dx%d (pixel budget, factor %d)", image_path.name, image.width, image.height, factor)
    logger.info("video %s: %d of %d frames at %.2f fps, indices %s, timestamps %s s",
                video_path.name, len(video.indices), video.total_frames, video.fps, video.indices,
                [round(t, 2) for t in video.timestamps])

    messages = [{"role": "user", "content": [
        {"type": "image"}, {"type": "video"}, {"type": "text", "text": QUESTION}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(
        text=[text], images=[image], videos=[video.frames], return_tensors="pt",
        # Frames are already sampled and resized by the media path; the processor must not resample them.
        videos_kwargs={"do_sample_frames": False, "fps": video.fps},
    )
    with torch.no_grad():
        logits = model(**inputs).logits[0, -1]
        generated = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    tokenizer = processor.tokenizer
    ids = inputs["input_ids"][0]
    report = DemoReport(
        checkpoint=ckpt,
        image_size=(image.width, image.height),
        video_frames=len(video.indices),
        video_timestamps=list(video.timestamps),
        video_indices=list(video.indices),
        video_shape=tuple(video.frames.shape),
        prompt_tokens=int(ids.numel()),
        image_tokens=int((ids == model.config.image_token_id).sum()),
        video_tokens=int((ids == model.config.video_token_id).sum()),
        p_yes=_p_yes(logits, tokenizer),
        generated=tokenizer.decode(generated[0, ids.numel():], skip_special_tokens=True),
        seconds=time.perf_counter() - start,
    )
    logger.info("prompt: %d tokens (%d image, %d video)", report.prompt_tokens, report.image_tokens,
                report.video_tokens)
    logger.info('P("yes") at the answer position: %.4f (random weights: near 0.5 means nothing yet)', report.p_yes)
    logger.info("greedy generation: %r", report.generated)
    logger.info("done in %.1f s; checkpoint at %s", report.seconds, ckpt)
    return report
