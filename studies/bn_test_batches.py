"""What a test batch's composition does to a binarized network's accuracy (issue 39).

Below 32 bits the network normalises on the statistics of the batch it is given, at test
as in training (as Laborieux et al.'s code, ``track_running_stats=False``), so a test
sample's prediction depends on the samples that share its forward pass. The project
tests in chunks of ``TEST_CHUNK`` (4,096) samples in the test set's order, the same for
every method and run. This script trains the positive control's network (2 x 512 sign
units, Adam at 0.005) on one Fashion-MNIST task, then tests the same weights with other
chunkings: the whole test set at once, the default, the training batch (100), and small
batches, each in the test set's order and (for the default) shuffled.

    python studies/bn_test_batches.py --out docs/results

Writes ``bn-test-batches.csv`` (chunk, order, accuracy) and prints it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from complex_synapses.experiments.run.settings import RunSettings
from complex_synapses.experiments.run.train import TEST_CHUNK, correct, prepare
from complex_synapses.files import csv_text, write_text


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iters", type=int, default=600, help="training batches (default 600: one epoch)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--out", type=Path, default=Path("."))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    settings = RunSettings.make(
        experiment="permMNIST",
        dataset=args.dataset,
        scenario="domain",
        tasks=1,
        iters=args.iters,
        batch=100,
        fc_units=512,
        weight_bits=1,
        lr=0.005,
        seed=args.seed,
    )
    protocol, model, optimizer, method = prepare(settings, torch.device("cpu"))
    task = protocol.tasks[0]
    g = torch.Generator().manual_seed(args.seed)
    for _ in range(settings.iters):
        pick = torch.randint(0, len(task.train_rows), (settings.batch,), generator=g)
        loss = torch.nn.functional.cross_entropy(
            model(protocol.images(0, task.train_rows[pick])), task.train_y[pick]
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    n = len(task.test_rows)
    shuffled = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    rows = []
    for chunk, order in [
        (n, "test set"),
        (TEST_CHUNK, "test set"),
        (TEST_CHUNK, "shuffled"),
        (1000, "test set"),
        (100, "test set"),
        (10, "test set"),
        (2, "test set"),
    ]:
        pick = None if order == "test set" else shuffled
        flags = correct(model, protocol, 0, pick, chunk=chunk)
        rows.append([chunk, order, float(flags.float().mean())])
        print(f"chunk {chunk:>6} ({order:<8}): {100 * rows[-1][2]:.2f}%")
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "bn-test-batches.csv", csv_text(["chunk", "order", "accuracy"], rows, digits=6))


if __name__ == "__main__":
    main()
