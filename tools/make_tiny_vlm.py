"""Build a tiny random-weight VLM checkpoint directory of any supported family, offline, in seconds.

    python tools/make_tiny_vlm.py --family qwen2_5_vl --out /tmp/tiny-qwen25vl
    python tools/make_tiny_vlm.py --family qwen3_vl --out /tmp/tiny-qwen3vl --seed 1
    python tools/make_tiny_vlm.py --family qwen3_5_moe --out /tmp/tiny-qwen35moe   # also qwen3_5, internvl

The directory loads with `AutoProcessor.from_pretrained(DIR)` and `AutoModelForImageTextToText.from_pretrained(DIR)`
exactly like the real hub checkpoint of that family (see `mmreward/models/tiny.py`).
"""

import argparse
import logging

from mmreward.models.tiny import FAMILIES, make_tiny_vlm


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=sorted(FAMILIES), default="qwen2_5_vl")
    parser.add_argument("--out", required=True, help="checkpoint directory to write")
    parser.add_argument("--seed", type=int, default=0, help="seed for the random weights")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = make_tiny_vlm(args.out, family=args.family, seed=args.seed)
    print(out)


if __name__ == "__main__":
    main()
