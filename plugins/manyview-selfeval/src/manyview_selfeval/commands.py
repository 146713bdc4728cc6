"""``manyview generate``: a PNG grid of images generated from prompts by a trained ``self_e``
run, in any number of steps.

    manyview generate --checkpoint RUN --prompt seven --prompt 7 [--n 8] [--steps 2]
        [--guidance ep_cfg] [--scale 5] [--seed 0] [--out grid.png] [--device cpu]

One grid row per prompt, ``--n`` samples each. Registered through
``manyview_register_commands``; this module is imported only when the command is parsed or
runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """The command's arguments."""
    parser.add_argument("--checkpoint", required=True, metavar="RUN_DIR", help="a self_e run")
    parser.add_argument(
        "--prompt",
        action="append",
        required=True,
        help="a prompt (repeat for more: one grid row each)",
    )
    parser.add_argument("--n", type=int, default=8, help="images per prompt (default 8)")
    parser.add_argument(
        "--steps", type=int, default=None, help="sampling steps K (default: the run's)"
    )
    parser.add_argument("--guidance", default=None, help="ep_cfg, cfg or none (default: the run's)")
    parser.add_argument(
        "--scale", type=float, default=None, help="the guidance weight >= 1 (default: the run's)"
    )
    parser.add_argument("--seed", type=int, default=0, help="the noise seed (default 0)")
    parser.add_argument("--out", default=None, help="the PNG (default RUN_DIR/generated.png)")
    parser.add_argument("--device", default="cpu")


def _fail(message: str) -> int:
    print(f"manyview generate: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Generate a PNG grid from a trained self_e run: one row per prompt."""
    if args.n < 1:
        return _fail(f"--n must be a positive integer, got {args.n}")
    if args.steps is not None and args.steps < 1:
        return _fail(f"--steps must be a positive integer (K >= 1), got {args.steps}")
    if args.scale is not None and not args.scale >= 1:
        return _fail(
            f"--scale (the guidance weight) must be >= 1 (1 is no guidance), got {args.scale:g}"
        )
    import torch

    from manyview.benchmarks.generation import save_image_grid
    from manyview.runs import RunError, load_run
    from manyview_selfeval.recipes.self_e import SelfERecipe
    from manyview_selfeval.sampling import GUIDANCES

    if args.guidance is not None and args.guidance not in GUIDANCES:
        from manyview import did_you_mean

        return _fail(
            f"--guidance must be one of {', '.join(GUIDANCES)}, got {args.guidance!r}"
            f"{did_you_mean(args.guidance, GUIDANCES)}"
        )
    try:
        trained = load_run(args.checkpoint, device=args.device)
    except RunError as exc:
        return _fail(str(exc).splitlines()[0])
    recipe = trained.recipe
    if not isinstance(recipe, SelfERecipe):
        return _fail(
            f"the run's recipe {type(recipe).__name__} is not a self_e run; train one with "
            "`manyview train self_e` (for other image generators: manyview sample)"
        )
    try:
        prompts = recipe.check_prompts(args.prompt)
    except ValueError as exc:
        return _fail(str(exc).splitlines()[0])
    options = {}
    if args.guidance is not None:
        options["guidance"] = args.guidance
    if args.scale is not None:
        options["scale"] = args.scale
    rows = [p for p in prompts for _ in range(args.n)]
    generator = torch.Generator().manual_seed(args.seed)
    try:
        images = trained.sample(
            len(rows), steps=args.steps, generator=generator, prompts=rows, **options
        )
    except (ValueError, TypeError) as exc:
        return _fail(str(exc).splitlines()[0])
    out = Path(args.out) if args.out else Path(args.checkpoint) / "generated.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image_grid(images.cpu(), out, nrow=args.n)
    steps = args.steps or recipe.sample_steps
    print(
        f"wrote {out}: {len(prompts)} prompt(s) x {args.n} images, {steps} steps, seed {args.seed}"
    )
    return 0
