"""Train with PyTorch Lightning: ``ComplexSynapse`` returned from ``configure_optimizers``.

    python examples/lightning_mnist.py                          # 8x8 digits, bundled with scikit-learn
    python examples/lightning_mnist.py --dataset mnist --epochs-per-task 1
    python examples/lightning_mnist.py --optimizer adam         # the same run with plain Adam
    python examples/lightning_mnist.py --resume runs/lightning/last.ckpt

Permuted tasks (each a fixed shuffle of the pixels; task 0 the images as they are)
follow each other within one ``Trainer.fit``: the data module serves task
``epoch // epochs_per_task``. One fit, because Lightning calls ``configure_optimizers``
at every ``fit``, and a new optimizer starts its chains afresh: the hidden levels that
the complex synapse remembers with live in the optimizer's state, as Adam's moments do.

Lightning needs nothing special: it steps the optimizer with a closure (evaluated
first), clips gradients through ``optimizer.param_groups``, steps the LR scheduler on
the same group dicts the base optimizer reads, and saves ``optimizer.state_dict()``
(the base optimizer's state and every hidden level) in each checkpoint, so ``--resume``
continues the chains where they were. The printed accuracies are one run's; whether the
chain helps here is what ``complex-synapses study`` answers, over seeds.
"""

from __future__ import annotations

import argparse
import warnings

import torch
from torch.utils.data import DataLoader, TensorDataset

from complex_synapses import ComplexSynapse
from complex_synapses.data import DATASETS, load_dataset

try:  # the unified package, else the standalone one
    import lightning.pytorch as pl
except ImportError:
    try:
        import pytorch_lightning as pl
    except ImportError as exc:
        need = "lightning_mnist.py needs Lightning: pip install 'complex-synapses[lightning]'"
        raise SystemExit(f"{need} ({exc})") from None


def permutations(n_tasks: int, n_pixels: int, seed: int) -> list[torch.Tensor]:
    """Task 0 keeps the pixel order; task k > 0 a fixed random permutation."""
    g = torch.Generator().manual_seed(seed)
    return [torch.arange(n_pixels)] + [torch.randperm(n_pixels, generator=g) for _ in range(n_tasks - 1)]


class PermutedTasks(pl.LightningDataModule):
    """Permuted versions of one data set, served one task at a time by epoch.

    ``train_dataloader`` is asked again every epoch (the Trainer's
    ``reload_dataloaders_every_n_epochs=1``) and returns task ``epoch // epochs_per_task``;
    validation covers every task, one loader each.
    """

    def __init__(self, dataset: str, data_dir: str, n_tasks: int, epochs_per_task: int, batch_size: int):
        super().__init__()
        data = load_dataset(dataset, data_dir)  # in memory, small: no prepare_data step needed
        self.train_x, self.train_y = data.train_x.flatten(1), data.train_y
        self.test_x, self.test_y = data.test_x.flatten(1), data.test_y
        self.n_inputs = self.train_x.shape[1]
        self.perms = permutations(n_tasks, self.n_inputs, seed=0)
        self.n_tasks, self.epochs_per_task, self.batch_size = n_tasks, epochs_per_task, batch_size

    def train_dataloader(self) -> DataLoader:
        task = min(self.trainer.current_epoch // self.epochs_per_task, self.n_tasks - 1)
        x = self.train_x[:, self.perms[task]]
        g = torch.Generator().manual_seed(self.trainer.current_epoch)  # the same order on resume
        return DataLoader(TensorDataset(x, self.train_y), self.batch_size, shuffle=True, generator=g)

    def val_dataloader(self) -> list[DataLoader]:
        return [DataLoader(TensorDataset(self.test_x[:, p], self.test_y), 1000) for p in self.perms]


class Classifier(pl.LightningModule):
    """A two-layer MLP; the optimizer is Adam, or Adam as the base of a complex synapse."""

    def __init__(self, n_inputs: int, optimizer: str, lr: float, n_beakers: int, alpha: float, beta: float):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(n_inputs, 100), torch.nn.ReLU(), torch.nn.Linear(100, 100), torch.nn.ReLU(),
            torch.nn.Linear(100, 10),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self(x), y)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int, dataloader_idx: int = 0
    ):
        x, y = batch
        accuracy = (self(x).argmax(1) == y).float().mean()
        self.log(f"acc/task{dataloader_idx}", accuracy, add_dataloader_idx=False, prog_bar=True)

    def configure_optimizers(self):
        h = self.hparams
        if h.optimizer == "adam":
            opt = torch.optim.Adam(self.parameters(), lr=h.lr)
        else:
            # Adam as the base: each weight the first of n_beakers levels, with
            # timescales from alpha to beta optimizer steps.
            opt = ComplexSynapse(
                self.parameters(),
                torch.optim.Adam,
                lr=h.lr,
                n_beakers=h.n_beakers,
                alpha=h.alpha,
                beta=h.beta,
            )
        warmup = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / 50))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": warmup, "interval": "step"}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--dataset", choices=DATASETS, default="digits", help="data set (default: digits)")
    p.add_argument("--data-dir", default="./store/datasets", help="where IDX files are found or downloaded")
    p.add_argument("--tasks", type=int, default=3, help="permuted tasks, one after another (default: 3)")
    p.add_argument("--epochs-per-task", type=int, default=5, help="epochs on each task (default: 5)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--optimizer", choices=("cs", "adam"), default="cs", help="cs: ComplexSynapse(Adam); adam")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (default: 1e-3)")
    p.add_argument("--n-beakers", type=int, default=5, help="levels per weight (default: 5)")
    p.add_argument("--alpha", type=float, default=100.0, help="shortest timescale, in steps (default: 100)")
    p.add_argument("--beta", type=float, default=3200.0, help="longest timescale, in steps (default: 3200)")
    p.add_argument(
        "--precision", default="32-true", help='Lightning precision, e.g. "bf16-mixed", "bf16-true"'
    )
    p.add_argument("--root", default="runs/lightning", help="checkpoints (last.ckpt) go here")
    p.add_argument("--resume", metavar="CKPT", help="continue a fit from this Lightning checkpoint")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    for name in ("tasks", "epochs_per_task", "batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    return args


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Fit, print the accuracy on every task, and return it (``acc/task0``, ...)."""
    args = parse_args(argv)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    pl.seed_everything(args.seed, verbose=False)
    data = PermutedTasks(args.dataset, args.data_dir, args.tasks, args.epochs_per_task, args.batch_size)
    model = Classifier(data.n_inputs, args.optimizer, args.lr, args.n_beakers, args.alpha, args.beta)
    trainer = pl.Trainer(
        max_epochs=args.tasks * args.epochs_per_task,
        reload_dataloaders_every_n_epochs=1,
        precision=args.precision,
        default_root_dir=args.root,
        callbacks=[pl.callbacks.ModelCheckpoint(dirpath=args.root, save_last=True)],
        logger=False,
        enable_model_summary=False,
        accelerator="auto",
        devices=1,
    )
    trainer.fit(model, data, ckpt_path=args.resume)
    accuracy = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("acc/")}
    print(
        f"{args.optimizer} after {args.tasks} tasks: "
        + "  ".join(f"{k} {v:.3f}" for k, v in accuracy.items())
    )
    return accuracy


if __name__ == "__main__":
    main()
