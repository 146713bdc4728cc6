"""``manyview sample``: a grid of images from a trained run of any recipe that generates
images (:class:`manyview.runs.ImageGenerator`, e.g. the ``diffusion`` recipe).

    manyview sample --checkpoint runs/ddae-<date>-<time> [--n 64] [--steps 50] [--seed 0]
        [--labels 0,1,2 | --labels all] [--guidance 2.0] [--out grid.png] [--device cpu]

Registered through ``manyview_register_commands``; this module is imported only when the
command is parsed or runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    parser.add_argument("--checkpoint", required=True, metavar="RUN_DIR", help="the run")
    parser.add_argument("--n", type=int, default=64, help="how many images (default 64)")
    parser.add_argument(
        "--steps", type=int, default=None, help="sampling steps (default: the recipe's)"
    )
    parser.add_argument("--seed", type=int, default=0, help="the noise seed (default 0)")
    parser.add_argument(
        "--labels",
        default=None,
        help="classes for a class-conditional run: comma-separated, or 'all' (cycled)",
    )
    parser.add_argument(
        "--guidance", type=float, default=1.0, help="classifier-free guidance scale (default 1)"
    )
    parser.add_argument("--nrow", type=int, default=None, help="images per grid row")
    parser.add_argument("--out", default=None, help="the PNG (default RUN_DIR/samples.png)")
    parser.add_argument("--device", default="cpu")


def _fail(message: str) -> int:
    print(f"manyview sample: {message}", file=sys.stderr)
    return 2


def _labels(text: str | None, n: int, num_classes: int | None) -> list[int] | str | None:
    """The labels, ``None`` for none, or an error message (a string)."""
    if text is None:
        return None
    if not num_classes:
        return "--labels needs a class-conditional run (this one has no classes)"
    if text.strip() == "all":
        return [i % num_classes for i in range(n)]
    try:
        given = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        return f"--labels must be integers separated by commas or 'all', got {text!r}"
    bad = [c for c in given if not 0 <= c < num_classes]
    if not given or bad:
        return f"--labels must be classes in [0, {num_classes}), got {text!r}"
    return [given[i % len(given)] for i in range(n)]


def run(args: argparse.Namespace) -> int:
    """Sample a PNG grid of images from a trained run that generates images."""
    if args.n < 1:
        return _fail(f"--n must be a positive integer, got {args.n}")
    if args.steps is not None and args.steps < 1:
        return _fail(f"--steps must be a positive integer, got {args.steps}")
    import torch

    from manyview.benchmarks.generation import save_image_grid
    from manyview.runs import ImageGenerator, RunError, load_run

    try:
        trained = load_run(args.checkpoint, device=args.device)
    except RunError as exc:
        return _fail(str(exc))
    recipe = trained.recipe
    if not isinstance(recipe, ImageGenerator):
        return _fail(
            f"the run's recipe {type(recipe).__name__} does not generate images "
            '(manyview.runs.ImageGenerator); train one that does, e.g. recipe = "diffusion"'
        )
    labels = _labels(args.labels, args.n, getattr(recipe, "num_classes", None))
    if isinstance(labels, str):
        return _fail(labels)
    kwargs = {}
    if args.guidance != 1.0:
        if labels is None:
            return _fail("--guidance needs --labels (guidance is towards the classes)")
        kwargs["guidance"] = args.guidance
    generator = torch.Generator().manual_seed(args.seed)
    try:
        images = trained.sample(
            args.n,
            steps=args.steps,
            labels=None if labels is None else torch.tensor(labels),
            generator=generator,
            **kwargs,
        )
    except (ValueError, TypeError) as exc:
        return _fail(str(exc).splitlines()[0])
    out = Path(args.out) if args.out else Path(args.checkpoint) / "samples.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image_grid(images.cpu(), out, nrow=args.nrow)
    steps = args.steps or recipe.sample_steps
    print(f"wrote {out}: {args.n} images, {steps} steps, seed {args.seed}")
    return 0
