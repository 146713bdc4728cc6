"""A resumable, shardable batch sampler: the data order is a function of (seed, epoch)."""

from __future__ import annotations

from collections.abc import Iterator

import torch


class EpochBatchSampler:
    """Yields batches of indices from a fresh permutation each epoch.

    The permutation of epoch e is drawn from a generator seeded with ``seed + e``, so the
    order never depends on what happened before: resuming only needs ``(epoch, position)``.
    Under ``world_size`` ranks each global batch is cut into equal contiguous shards and
    rank r takes shard r (the global batch is ``batch_size * world_size``).

    With ``drop_last=False`` the epoch's last, incomplete batch is kept, unless it would give
    some rank fewer than ``min_batch`` samples (a contrastive loss needs two): then it is
    merged into the batch before it (:attr:`merged_tail` is its size, else 0), so no batch
    is ever too small for the losses.

    Args:
        num_samples: dataset size.
        batch_size: per-rank batch size.
        seed: base seed.
        drop_last: drop the epoch's last incomplete batch (default ``True``).
        rank, world_size: this process's shard.
        min_batch: the fewest samples a rank's batch may hold (default 2).

    Raises:
        ValueError: the dataset holds fewer samples than one batch needs.
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        *,
        seed: int = 0,
        drop_last: bool = True,
        rank: int = 0,
        world_size: int = 1,
        min_batch: int = 2,
    ) -> None:
        global_batch = batch_size * world_size
        if num_samples < global_batch and drop_last:
            raise ValueError(
                f"the dataset has {num_samples} samples, fewer than one batch of "
                f"{global_batch}; lower run.batch_size to at most {num_samples // world_size}"
                " (or set data.drop_last = false)"
            )
        if num_samples < min_batch * world_size:
            raise ValueError(
                f"the dataset has {num_samples} samples; {world_size} rank(s) need at least "
                f"{min_batch * world_size}"
            )
        rest = num_samples % global_batch
        #: the size of the epoch's tail merged into the batch before it (0: none)
        self.merged_tail = rest if rest and not drop_last and rest < min_batch * world_size else 0
        self.num_samples, self.batch_size = num_samples, batch_size
        self.seed, self.drop_last = seed, drop_last
        self.rank, self.world_size = rank, world_size
        self.epoch, self.position = 0, 0  # position: global batches consumed in this epoch

    def batches_per_epoch(self) -> int:
        global_batch = self.batch_size * self.world_size
        full, rest = divmod(self.num_samples, global_batch)
        return full + (1 if rest and not self.drop_last and not self.merged_tail else 0)

    def _order(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed + epoch)
        return torch.randperm(self.num_samples, generator=g)

    def __iter__(self) -> Iterator[list[int]]:
        global_batch = self.batch_size * self.world_size
        while True:
            order = self._order(self.epoch)
            count = self.batches_per_epoch()
            while self.position < count:
                stop = (self.position + 1) * global_batch
                if self.merged_tail and self.position == count - 1:
                    stop = self.num_samples  # the last batch takes the too-small tail
                chunk = order[self.position * global_batch : stop]
                shard = chunk.tensor_split(self.world_size)[self.rank]
                self.position += 1
                yield shard.tolist()
            self.epoch, self.position = self.epoch + 1, 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
