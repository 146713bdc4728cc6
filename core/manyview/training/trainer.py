"""The trainer behind ``manyview train``: a recipe, an optimizer and checkpoints that
survive ``kill -9``.

Determinism: on the CPU, a run and a run that was killed and resumed from any checkpoint end
with bit-identical weights. Everything random is restored on resume: the data order (a
function of seed and epoch, plus the number of batches consumed), the views' generator, the
global torch generator (dropout), optimizer, scheduler, teacher and stateful losses.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import default_collate

import manyview
from manyview import distributed
from manyview.config import ConfigError, dump_config
from manyview.manager import HookGuard
from manyview.metrics import alignment, effective_rank, uniformity
from manyview.recipes.base import Recipe
from manyview.runs import seed_all
from manyview.training.checkpoint import (
    CheckpointError,
    candidates,
    clean_partial,
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from manyview.training.errors import RunDirError, Stopped, TrainingError
from manyview.training.optim import build_optimizer, build_scheduler
from manyview.training.progress import Progress
from manyview.training.rundir import check_run_dir, holds_a_run
from manyview.training.sampler import EpochBatchSampler
from manyview.training.strategies import make_strategy

# what a checkpoint's state.pt must hold (Trainer.state)
STATE_KEYS = (
    "step",
    "batches_consumed",
    "bad_steps",
    "bad_in_row",
    "optimizer",
    "scheduler",
    "rng",
    "recipe",
)


class Trainer:
    """Runs one configuration.

    Args:
        config: a validated configuration (:func:`manyview.config.load_config`).
        out: the run directory (``config.toml``, ``metrics.jsonl``, ``checkpoints/``).
        resume: continue from the newest checkpoint in ``out``.
        progress: show progress (default: on the main rank).
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        out: str | Path,
        *,
        resume: bool = False,
        progress: bool = True,
    ) -> None:
        self.config = config
        self.run = config["run"]
        self.out = Path(out)
        self.resume = resume
        check_device(self.run["device"])
        self.ctx = distributed.init_from_env(self.run["device"], config["distributed"]["backend"])
        self.device = self.ctx.device
        self.step = 0
        self.batches_consumed = 0
        self.bad_steps = 0
        self.bad_in_row = 0
        self._stop_signal: str | None = None
        self._hooks = HookGuard()  # per run: failures counted, repeat offenders disabled
        self.progress_enabled = progress and self.ctx.is_main

    # ------------------------------------------------------------------ setup

    def _seed(self) -> None:
        seed_all(self.run["seed"] + self.ctx.rank)
        if self.device.type == "cpu":
            self._deterministic_before = torch.are_deterministic_algorithms_enabled()
            torch.use_deterministic_algorithms(True, warn_only=True)

    def _build(self) -> None:
        data = self.config["data"]
        try:
            self.dataset = manyview.create("dataset", data["name"], **data["options"])
        except (LookupError, TypeError, ValueError) as exc:
            raise ConfigError(f"[data] ({data['name']}): {exc}") from None
        if len(self.dataset) == 0:
            raise ConfigError(f"[data] ({data['name']}): the dataset is empty")
        name = self.run["recipe"]
        try:
            factory = manyview.entry("recipe", name).load()
        except LookupError as exc:
            raise ConfigError(f"[run] recipe: {exc}") from None
        recipe = factory(self.config, self.dataset)
        if not isinstance(recipe, Recipe) or not isinstance(
            getattr(recipe, "model", None), nn.Module
        ):
            raise ConfigError(
                f"[run] recipe: {name!r} built a {type(recipe).__name__}, not a "
                "manyview.recipes.Recipe with a `model` module (docs/architecture.md)"
            )
        if self.config["teacher"] is not None and not _uses_teacher(recipe):
            raise ConfigError(
                f"[teacher] is set, but the {name!r} recipe uses no teacher; remove the "
                '[teacher] table, or use a recipe that distils (e.g. recipe = "distill")'
            )
        self.recipe = recipe.to(self.device)
        self.model: nn.Module = self.recipe.model
        self.teacher = self.recipe.teacher
        params = self.recipe.trainable()
        if not params:
            raise ConfigError(f"[run] recipe: {name!r} has no trainable parameters")
        self.optimizer = build_optimizer(self.config["optimizer"], params)
        self.scheduler = build_scheduler(self.config["schedule"], self.optimizer, self.run["steps"])
        try:
            self.sampler = EpochBatchSampler(
                len(self.dataset),
                self.run["batch_size"],
                seed=self.run["seed"],
                drop_last=self.config["data"]["drop_last"],
                rank=self.ctx.rank,
                world_size=self.ctx.world_size,
            )
        except ValueError as exc:
            raise ConfigError(f"[run] batch_size = {self.run['batch_size']}: {exc}") from None
        if self.sampler.merged_tail and self.ctx.is_main:
            tail = self.sampler.merged_tail
            print(
                f"note: data.drop_last = false leaves a last batch of {tail} sample(s) per "
                "epoch, too few for the losses; it is merged into the batch before it",
                file=sys.stderr,
            )
        # the views draw on the batch's device, so their generator lives there too
        self.generator = torch.Generator(device=self.device).manual_seed(
            (self.run["seed"] * 7919 + self.ctx.rank + 1) % 2**64  # any 64-bit seed
        )
        self.strategy = make_strategy(self.recipe, self.run, self.device, self.ctx.world_size)
        if self.run["compile"]:
            self.recipe.compile_model()
        self.writer = None
        if self.run["tensorboard"] and self.ctx.is_main:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ConfigError(
                    "[run] tensorboard = true needs the tensorboard package: pip install tensorboard"
                ) from None
            self.writer = SummaryWriter(str(self.out / "tensorboard"))

    # ------------------------------------------------------------------ state

    def state(self) -> dict[str, Any]:
        """Everything but the model's weights, for ``state.pt``."""
        return {
            "step": self.step,
            "batches_consumed": self.batches_consumed,
            "bad_steps": self.bad_steps,
            "bad_in_row": self.bad_in_row,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_state(self.generator),
            # everything the recipe owns but the model's weights (model.safetensors)
            "recipe": {
                k: v for k, v in self.recipe.state_dict().items() if not k.startswith("model.")
            },
        }

    def save(self) -> Path | None:
        if not self.ctx.is_main:
            return None
        path = save_checkpoint(
            self.out / "checkpoints",
            self.step,
            self.model.state_dict(),
            self.state(),
            keep=self.run["keep_checkpoints"],
        )
        self._hook("manyview_checkpoint_saved", trainer=self, path=str(path))
        return path

    def _restore(self) -> None:
        """Load the newest readable checkpoint (falling back to an older one, saying so), or
        restart a run that died before its first checkpoint from step 0."""
        root = self.out / "checkpoints"
        if self.ctx.is_main:
            for path in clean_partial(root):
                self._note(f"removed {path}, left by a run killed while writing or pruning")
        found = candidates(root)
        if not found:
            if not holds_a_run(self.out):
                raise CheckpointError(
                    f"{self.out} holds no run to resume; start it without --resume"
                )
            self._note(
                f"{self.out} has no checkpoint (its run stopped before the first): it "
                "starts again from step 0"
            )
            if self.ctx.is_main:
                (self.out / "metrics.jsonl").unlink(missing_ok=True)
                shutil.rmtree(self.out / "tensorboard", ignore_errors=True)
            return
        errors = []
        for path in found:
            try:
                weights, state = load_checkpoint(path, required=STATE_KEYS)
            except CheckpointError as exc:
                errors.append(exc)
                continue
            if errors:
                self._note(f"{errors[0]}; resuming from the previous checkpoint, {path}")
            break
        else:
            raise errors[0]
        full = {**{f"model.{k}": v for k, v in weights.items()}, **state["recipe"]}
        try:
            missing, unexpected = self.recipe.load_state_dict(full, strict=False)
        except RuntimeError as exc:  # a tensor of another shape
            first = " ".join(str(exc).split(":", 1)[-1].split())[:240]
            raise CheckpointError(
                f"{path} does not fit this run's recipe ({first}); resume with the "
                "configuration it was written with, or start a new run with another --out"
            ) from None
        if missing or unexpected:
            raise CheckpointError(
                f"{path} does not fit this run's recipe (missing {missing[:3]}, unexpected "
                f"{unexpected[:3]}); resume with the configuration it was written with, or "
                "start a new run with another --out"
            )
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            set_rng_state(state["rng"], self.generator)
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(
                f"{path / 'state.pt'}: its optimizer, schedule or random state does not fit "
                f"this run ({type(exc).__name__}: {' '.join(str(exc).split())[:160]}); was "
                "[optimizer] changed? Start a new run with another --out"
            ) from None
        self.step = int(state["step"])
        self.batches_consumed = int(state["batches_consumed"])
        self.bad_steps, self.bad_in_row = int(state["bad_steps"]), int(state["bad_in_row"])
        self._truncate_metrics()

    def _note(self, text: str) -> None:
        """One line on stderr, from the main rank."""
        if self.ctx.is_main:
            print(f"note: {text}", file=sys.stderr)

    def _warn_changed_config(self) -> None:
        """On resume, say which keys differ from the run's saved config.toml: the run is then
        no longer an exact continuation."""
        saved_path = self.out / "config.toml"
        if not self.ctx.is_main or not saved_path.is_file():
            return
        import tomllib

        try:
            saved = tomllib.loads(saved_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
            return
        now = tomllib.loads(dump_config(self.config))
        changed = _differences(saved, now)
        if changed:
            shown = "; ".join(changed[:4]) + (
                f"; and {len(changed) - 4} more" if len(changed) > 4 else ""
            )
            self._note(
                f"resuming {self.out} with a changed configuration ({shown}): the run is no "
                "longer an exact continuation of the one that wrote the checkpoint"
            )

    def _truncate_metrics(self) -> None:
        """Drop log lines of steps after the checkpoint (they will be logged again)."""
        path = self.out / "metrics.jsonl"
        if not path.exists():
            return
        kept = []
        for line in path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= self.step:
                    kept.append(line)
            except json.JSONDecodeError:
                continue  # a line cut by kill -9
        path.write_text("".join(f"{line}\n" for line in kept))

    # ------------------------------------------------------------------ helpers

    def _hook(self, name: str, **kwargs: Any) -> None:
        """Call a lifecycle hook on each plugin on its own: one that raises anything is
        reported (once, by name), the others and the run go on; after 3 failures it is
        disabled for the rest of the run."""
        self._hooks.call(name, **kwargs)

    def _batches(self):
        epoch, position = divmod(self.batches_consumed, self.sampler.batches_per_epoch())
        self.sampler.load_state_dict({"epoch": epoch, "position": position})
        fetch_batch = getattr(self.dataset, "get_batch", None)
        for indices in self.sampler:
            if fetch_batch is not None:  # a dataset that collates a whole batch at once
                yield _to_device(fetch_batch(indices), self.device)
            else:
                items = [self.dataset[i] for i in indices]
                yield _to_device(default_collate(items), self.device)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._stop_signal = signal.Signals(signum).name

    def _diagnostics(self, z: torch.Tensor) -> dict[str, float]:
        z = torch.nn.functional.normalize(z.detach().float(), dim=-1)
        out = {
            "uniformity": uniformity(z),
            "effective_rank": effective_rank(z[:, 0]),
            "effective_rank_n": float(z.shape[0]),
        }
        if z.dim() == 3 and z.shape[1] >= 2:
            out["alignment"] = alignment(z)
        return out

    # ------------------------------------------------------------------ loop

    def fit(self, until: int | None = None) -> dict[str, Any]:
        """Train to ``run.steps`` (or stop early at step ``until``, with a checkpoint there,
        without changing the schedule); return the last logged metrics."""
        self.until = self.run["steps"] if until is None else min(int(until), self.run["steps"])
        if self.ctx.is_main:  # before anything is built: a bad --out costs nothing
            check_run_dir(self.out, resume=self.resume)
        self._seed()
        self._build()
        if self.resume:
            self._restore()
            if self.step >= self.until:
                self._note(
                    f"{self.out} has already finished (step {self.step} of "
                    f"{self.run['steps']}): nothing to train. Benchmark it with `manyview bench "
                    f"--checkpoint {self.out}`, or train longer in a new run with another --out"
                )
                self._restore_determinism()
                return {}
            self._warn_changed_config()
        if self.ctx.is_main:
            try:
                self.out.mkdir(parents=True, exist_ok=True)
                (self.out / "config.toml").write_text(dump_config(self.config))
            except OSError as exc:
                raise RunDirError(
                    f"cannot write {exc.filename or self.out}: {exc.strerror or exc}; give "
                    "another --out"
                ) from None
        handlers = {}
        if self.ctx.is_main:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(ValueError):  # not the main thread
                    handlers[sig] = signal.signal(sig, self._on_signal)
        progress = Progress(self.run["steps"], self.step, enabled=self.progress_enabled)
        self._hook("manyview_train_start", trainer=self)
        metrics: dict[str, Any] = {}
        try:
            metrics = self._loop(progress)
        except OSError as exc:  # the disk filled up, a file was replaced by a folder ...
            kept = latest_checkpoint(self.out / "checkpoints")
            raise TrainingError(
                f"cannot write {exc.filename or self.out} at step {self.step}: "
                f"{exc.strerror or exc}; the last checkpoint kept is {kept}. Fix it and "
                f"continue with `manyview train --resume {self.out}`"
            ) from None
        finally:
            progress.close()
            self._restore_determinism()
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            if self.writer is not None:
                self.writer.close()
        self._hook("manyview_train_end", trainer=self)
        return metrics

    def _restore_determinism(self) -> None:
        if hasattr(self, "_deterministic_before"):
            torch.use_deterministic_algorithms(self._deterministic_before)

    def _loop(self, progress: Progress) -> dict[str, Any]:
        run = self.run
        accum = run["grad_accum"]
        autocast = torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=run["precision"] == "bf16"
        )
        batches = self._batches()
        window_loss, window_steps, window_samples = 0.0, 0, 0
        window_start = time.perf_counter()
        metrics: dict[str, Any] = {}
        self.recipe.train()
        mode = self.config["distributed"]["gather"]
        while self.step < self.until:
            self.optimizer.zero_grad(set_to_none=True)
            total, finite, last, components = 0.0, True, None, {}
            for _ in range(accum):
                batch = next(batches)
                self.batches_consumed += 1
                with autocast, distributed.gather_mode(mode):
                    out = self.strategy.run(batch, self.generator, 1.0 / accum)
                if out is None:  # not finite on some rank: nothing was backpropagated
                    finite = False
                    break
                total += out.loss.detach()  # stays on the device: no sync per step
                last, components = out, out.components
                window_samples += _batch_size(batch) * self.ctx.world_size
            if finite:
                self.strategy.before_optimizer_step()
                if run["grad_clip"]:
                    torch.nn.utils.clip_grad_norm_(self.recipe.trainable(), run["grad_clip"])
                self.optimizer.step()
                self.bad_in_row = 0
            else:
                self.optimizer.zero_grad(set_to_none=True)
                self.bad_steps += 1
                self.bad_in_row += 1
                what = self.strategy.skipped or "loss"
                progress.write(
                    f"step {self.step + 1}: the {what} {'are' if what == 'embeddings' else 'is'} "
                    "not finite; the step is skipped"
                )
            self.scheduler.step()
            self.step += 1
            if finite:
                self.recipe.after_step(self.step - 1)
            if finite:
                window_loss += total / accum
                window_steps += 1
            if self.bad_in_row >= run["max_bad_steps"]:
                # rank 0 writes it; the others name the same folder
                path = self.save() or self.out / "checkpoints" / f"step-{self.step}"
                what = self.strategy.skipped or "loss"
                raise TrainingError(
                    f"the {what} {'were' if what == 'embeddings' else 'was'} not finite for "
                    f"{self.bad_in_row} steps in a row (up to step "
                    f"{self.step}); lower optimizer.lr, set run.grad_clip, or check the data. "
                    f"Last checkpoint: {path}"
                )
            logging_step = self.step % run["log_every"] == 0 or self.step == run["steps"]
            if logging_step and window_steps:
                elapsed = time.perf_counter() - window_start
                metrics = {
                    "step": self.step,
                    # with local anchors each rank's loss is its share: log the global mean
                    "loss": distributed.mean_across_ranks(float(window_loss) / window_steps),
                    "lr": self.optimizer.param_groups[0]["lr"],
                    "samples_per_s": window_samples / max(elapsed, 1e-9),
                    "bad_steps": self.bad_steps,
                    **{f"loss/{k}": float(v) for k, v in components.items()},
                }
                every = run["metrics_every"]
                if (
                    every
                    and last is not None
                    and last.embeddings is not None
                    and (self.step % every == 0 or self.step == run["steps"])
                ):
                    metrics.update(self._diagnostics(last.embeddings))
                self._log(metrics, progress)
                window_loss, window_steps, window_samples = 0.0, 0, 0
                window_start = time.perf_counter()
            self._hook("manyview_step_end", trainer=self, step=self.step, metrics=metrics)
            if self.step % run["checkpoint_every"] == 0 or self.step in (run["steps"], self.until):
                self.save()
            if self._stop_signal is not None:
                path = self.save()
                progress.write(
                    f"{self._stop_signal}: stopped at step {self.step}; checkpoint {path}. "
                    f"Continue with: manyview train --resume {self.out}"
                )
                raise Stopped(f"{self._stop_signal}: stopped at step {self.step}")
        return metrics

    def _log(self, metrics: dict[str, Any], progress: Progress) -> None:
        if not self.ctx.is_main:
            return
        clean = {
            k: (v if not isinstance(v, float) or math.isfinite(v) else None)
            for k, v in metrics.items()
        }
        with open(self.out / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(clean) + "\n")
        progress.update(self.step, metrics)
        if self.writer is not None:
            for key, value in metrics.items():
                if key != "step" and isinstance(value, int | float):
                    self.writer.add_scalar(key, value, self.step)


def check_device(device: str) -> None:
    """A one-line ConfigError when ``[run] device`` names a device torch cannot use here."""
    if device.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.split(":")[1]) if ":" in device else 0
        if count == 0:
            raise ConfigError(
                f'[run] device = "{device}": torch sees no CUDA device on this machine; '
                'set device = "cpu" (--set run.device=cpu)'
            )
        if index >= count:
            raise ConfigError(
                f'[run] device = "{device}": this machine has {count} CUDA device(s), '
                f"cuda:0 to cuda:{count - 1}"
            )
    elif device == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ConfigError('[run] device = "mps": MPS is not available here; set device = "cpu"')


def _uses_teacher(recipe: Recipe) -> bool:
    """``Recipe.uses_teacher`` when the recipe says; else whether it built a teacher."""
    declared = getattr(recipe, "uses_teacher", None)
    return bool(declared) if declared is not None else recipe.teacher is not None


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """``key: old -> new`` for every leaf that differs between two parsed configurations."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{prefix}.{key}" if prefix else str(key)
            out += _differences(old.get(key), new.get(key), where)
        return out
    return [] if old == new else [f"{prefix}: {old!r} -> {new!r}"]


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list):
        return [_to_device(v, device) for v in batch]
    return batch


def _batch_size(batch: Mapping[str, Any]) -> int:
    for value in batch.values():
        if isinstance(value, torch.Tensor):
            return int(value.shape[0])
        if isinstance(value, list):
            return len(value)
    return 0
