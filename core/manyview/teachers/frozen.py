"""A frozen teacher: a fixed module, or one loaded from a local safetensors checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from manyview.teachers.base import Teacher, call_module, read_key, trainable_parameter_names


def load_weights(
    module: nn.Module, path: str | Path, *, strict: bool = True, who: str = "frozen"
) -> nn.Module:
    """Load a local ``.safetensors`` file into ``module`` with clear errors.

    Raises:
        ValueError: the file is missing, unreadable or corrupt, or its tensors do not fit the
            module (missing or unexpected names, or other shapes), naming what differs.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{who}: checkpoint {str(path)!r} does not exist")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(
            f"{who}: cannot read {str(path)!r} as safetensors ({exc}); is the file complete?"
        ) from exc
    own = module.state_dict()
    wrong = [
        f"{k}: file {tuple(v.shape)} vs module {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and own[k].shape != v.shape
    ]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if wrong or (strict and (missing or unexpected)):
        raise ValueError(
            f"{who}: {str(path)!r} does not fit the module: "
            + "; ".join(
                part
                for part in (
                    f"shape mismatch {wrong[:3]}" if wrong else "",
                    f"missing {missing[:5]}" if strict and missing else "",
                    f"unexpected {unexpected[:5]}" if strict and unexpected else "",
                )
                if part
            )
        )
    module.load_state_dict(state, strict=strict)
    return module


class FrozenTeacher(Teacher):
    """A fixed teacher: any module, in eval mode, without gradients, never updated.

    Give exactly one of ``module``, ``encoder`` or ``run``.

    Args:
        module: the teacher network. Its parameters must not require grad (so a student
            passed by mistake is caught), unless ``freeze=True`` freezes them in place.
        checkpoint: a local ``.safetensors`` file loaded into ``module`` or the ``encoder``
            (never a download).
        encoder: a registered encoder name built with ``encoder_kwargs`` (then frozen).
        encoder_kwargs: arguments for ``encoder``.
        run: a trained manyview run directory (``manyview.load_run``): the teacher reads
            the batch's ``modality`` and embeds it as that run does (encoder and projector).
        modality: the run's modality to embed and read (default: ``key``, the student's).
        key: the entry of a mapping input the teacher reads (a recipe passes the student's
            modality); without it the input goes to the module as it is.
        freeze: set ``requires_grad=False`` on the module's parameters in place.
        strict: require the checkpoint's names to match the module's exactly.

    Calling it runs the module under ``torch.no_grad`` on the input (a tensor, a tuple of
    positional arguments, or a dict of keyword arguments), or on the ``key`` entry of a
    mapping. From TOML: ``[teacher] name = "frozen"`` with ``options = { encoder = "mlp",
    encoder_kwargs = {...}, checkpoint = "t.safetensors" }`` or ``options = { run =
    "runs/teacher" }``.
    """

    from_context: ClassVar[dict[str, str]] = {"key": "modality"}

    def __init__(
        self,
        module: nn.Module | None = None,
        *,
        checkpoint: str | Path | None = None,
        encoder: str | None = None,
        encoder_kwargs: dict[str, Any] | None = None,
        run: str | Path | None = None,
        modality: str | None = None,
        key: str | None = None,
        freeze: bool = False,
        strict: bool = True,
    ) -> None:
        super().__init__()
        given = [
            n for n, v in (("module", module), ("encoder", encoder), ("run", run)) if v is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "frozen: pass exactly one of module=, encoder= or run="
                + (f" (got {', '.join(given)})" if given else "")
            )
        if encoder is not None:
            import manyview

            module = manyview.create("encoder", encoder, **(encoder_kwargs or {}))
            freeze = True
        if run is not None:
            from manyview.runs import RunEncoder, load_run

            if checkpoint is not None:
                raise ValueError("frozen: run= brings its own weights; drop checkpoint=")
            if modality is None and key is None:
                raise ValueError(
                    "frozen: with run=, say which modality to embed (modality= or key=)"
                )
            key = modality = modality or key  # it reads the modality it embeds
            module, freeze = RunEncoder(load_run(run), modality), True
        if not isinstance(module, nn.Module):
            raise ValueError(f"frozen: module must be an nn.Module, got {type(module).__name__}")
        trainable = trainable_parameter_names(module)
        if trainable and not freeze:
            raise ValueError(
                f"frozen: the module has trainable parameters ({', '.join(trainable)}, ...); "
                "a frozen teacher must not share weights with a student. Pass a copy with "
                "requires_grad_(False), or freeze=True to freeze this module in place"
            )
        module.requires_grad_(False)
        if checkpoint is not None:
            load_weights(module, checkpoint, strict=strict)
        self.module = module.eval()
        self.key = key

    def targets(self, inputs: Any, **kwargs: Any) -> Any:
        return call_module(self.module, read_key(inputs, self.key, "frozen"))
