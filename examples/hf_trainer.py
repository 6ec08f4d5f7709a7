"""Train with the Hugging Face Trainer: ``optimizers=(ComplexSynapse(...), scheduler)``.

    pip install 'complex-synapses[hf]'          # transformers and accelerate
    python examples/hf_trainer.py               # a tiny GPT-2, built from its config (no download)
    python examples/hf_trainer.py --optimizer adamw
    python examples/hf_trainer.py --resume runs/hf/checkpoint-100

A one-layer GPT-2 learns a synthetic language (token sequences from a fixed random
Markov chain), so the script runs offline in seconds on a CPU. The Trainer needs
nothing special: given an optimizer and a scheduler it steps them, clips gradients
(``max_grad_norm``) through ``optimizer.param_groups``, and saves
``optimizer.state_dict()`` (AdamW's moments and every hidden level of the chain) as
``optimizer.pt`` in each checkpoint, which ``--resume`` loads back: the resumed run ends
where the uninterrupted one would.
"""

from __future__ import annotations

import argparse

import torch

try:
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        Trainer,
        TrainingArguments,
        get_linear_schedule_with_warmup,
    )
except ImportError as exc:
    need = "hf_trainer.py needs transformers and accelerate: pip install 'complex-synapses[hf]'"
    raise SystemExit(f"{need} ({exc})") from None

from complex_synapses import ComplexSynapse


class MarkovText(torch.utils.data.Dataset):
    """Sequences of ``length`` tokens from a random Markov chain over ``vocab`` tokens in
    which every token has three likely successors: a language a small model can learn."""

    def __init__(self, n_sequences: int, length: int = 16, vocab: int = 32, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        chain = torch.Generator().manual_seed(1234)  # the language: the same for every split
        successors = torch.randint(0, vocab, (vocab, 3), generator=chain)
        ids = torch.empty(n_sequences, length, dtype=torch.long)
        ids[:, 0] = torch.randint(0, vocab, (n_sequences,), generator=g)
        for t in range(1, length):
            pick = torch.randint(0, 3, (n_sequences,), generator=g)
            ids[:, t] = successors[ids[:, t - 1], pick]
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def tiny_gpt2(vocab: int = 32, seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=vocab, n_positions=16, n_embd=32, n_layer=1, n_head=2, bos_token_id=0, eos_token_id=0
    )
    return GPT2LMHeadModel(config)


def make_optimizer(model: torch.nn.Module, name: str, lr: float, n_beakers: int, alpha: float, beta: float):
    """AdamW, or AdamW as the base of a complex synapse; weight decay on the matrices
    only, as the Trainer's own optimizer does."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}]
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    return ComplexSynapse(groups, torch.optim.AdamW, lr=lr, n_beakers=n_beakers, alpha=alpha, beta=beta)


def make_trainer(args: argparse.Namespace, model: torch.nn.Module | None = None) -> Trainer:
    """The Trainer for ``args`` (see :func:`parse_args`), on a new tiny GPT-2 unless given one."""
    model = model if model is not None else tiny_gpt2(seed=args.seed)
    opt = make_optimizer(model, args.optimizer, args.lr, args.n_beakers, args.alpha, args.beta)
    schedule = get_linear_schedule_with_warmup(
        opt, num_warmup_steps=args.steps // 10, num_training_steps=args.steps
    )
    training = TrainingArguments(
        output_dir=args.output_dir,
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        save_steps=args.save_steps,
        logging_steps=max(1, args.steps // 10),
        report_to="none",
        seed=args.seed,
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=args.quiet,
    )
    train, evaluate = MarkovText(args.sequences, seed=args.seed), MarkovText(256, seed=10_000 + args.seed)
    return Trainer(
        model=model, args=training, train_dataset=train, eval_dataset=evaluate, optimizers=(opt, schedule)
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument(
        "--optimizer", choices=("cs", "adamw"), default="cs", help="cs: ComplexSynapse(AdamW); adamw"
    )
    p.add_argument("--steps", type=int, default=200, help="optimizer steps (default: 200)")
    p.add_argument(
        "--save-steps", type=int, default=100, help="a checkpoint every this many steps (default: 100)"
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--sequences", type=int, default=1024, help="training sequences (default: 1024)")
    p.add_argument("--lr", type=float, default=3e-3, help="AdamW's peak learning rate (default: 3e-3)")
    p.add_argument("--n-beakers", type=int, default=5, help="levels per weight (default: 5)")
    p.add_argument("--alpha", type=float, default=400.0, help="shortest timescale, in steps (default: 400)")
    p.add_argument("--beta", type=float, default=40000.0, help="longest timescale, in steps (default: 40000)")
    p.add_argument("--output-dir", default="runs/hf", help="checkpoints go here (checkpoint-<step>/)")
    p.add_argument("--resume", metavar="CHECKPOINT", help="continue from this checkpoint folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    for name in ("steps", "save_steps", "batch_size", "sequences"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    return args


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train, evaluate, print the held-out loss, and return the Trainer's metrics."""
    args = parse_args(argv)
    trainer = make_trainer(args)
    trainer.train(resume_from_checkpoint=args.resume)
    metrics = trainer.evaluate()
    print(f"{args.optimizer}: held-out loss {metrics['eval_loss']:.3f} after {args.steps} steps")
    return metrics


if __name__ == "__main__":
    main()
