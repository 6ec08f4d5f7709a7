"""ComplexSynapse under the Hugging Face Trainer (the ``hf`` extra): the example trains,
and a run resumed from a checkpoint ends where the uninterrupted run ends."""

import importlib.util
from pathlib import Path

import pytest
import torch

from complex_synapses import ComplexSynapse

# Whether they are installed, without importing them (2 s) in every worker that collects
# this file; the example imports them where a test runs.
if importlib.util.find_spec("transformers") is None:
    pytest.skip("transformers is not installed (pip install '.[hf]')", allow_module_level=True)
if importlib.util.find_spec("accelerate") is None:
    pytest.skip("the Trainer needs accelerate (pip install '.[hf]')", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("hf_trainer", ROOT / "examples" / "hf_trainer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train(example, out: Path, resume: Path | None = None, seed_model: int = 0):
    # 96 sequences in batches of 16: 6 steps an epoch, so step 4 is mid-epoch.
    args = example.parse_args(
        ["--steps", "10", "--save-steps", "4", "--sequences", "96", "--output-dir", str(out), "--quiet",
         "--alpha", "2", "--beta", "200"]
    )  # fmt: skip
    model = example.tiny_gpt2(seed=seed_model)
    trainer = example.make_trainer(args, model)
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    return model, trainer.optimizer


def unwrap(opt) -> ComplexSynapse:
    return getattr(opt, "optimizer", opt)  # accelerate wraps the optimizer it is given


def test_resumed_training_ends_where_the_whole_run_ends(example, tmp_path):
    whole, opt_whole = train(example, tmp_path / "whole")
    checkpoint = tmp_path / "whole" / "checkpoint-4"
    saved = torch.load(checkpoint / "optimizer.pt", weights_only=True)
    assert saved["base_optimizer"] == "AdamW" and len(saved["state"][0]["hidden"]) == 4

    resumed, opt_resumed = train(example, tmp_path / "resumed", resume=checkpoint, seed_model=1)
    a, b = unwrap(opt_whole), unwrap(opt_resumed)
    assert isinstance(a, ComplexSynapse) and isinstance(b, ComplexSynapse)
    for (name, pa), pb in zip(whole.named_parameters(), resumed.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0, msg=name)
        torch.testing.assert_close(a.levels(pa), b.levels(pb), rtol=0, atol=0, msg=name)
        assert a.state[pa]["chain_step"] == b.state[pb]["chain_step"] == 10
    assert a.param_groups[0]["lr"] == b.param_groups[0]["lr"]
    first = next(whole.parameters())
    assert not torch.equal(a.levels(first)[-1], example.tiny_gpt2(seed=0).transformer.wte.weight.detach())


def test_example_trains(example, tmp_path):
    metrics = example.main(["--steps", "30", "--save-steps", "30", "--output-dir", str(tmp_path), "--quiet"])
    assert 0 < metrics["eval_loss"] < torch.log(torch.tensor(32.0))  # below guessing among 32 tokens
    assert (tmp_path / "checkpoint-30" / "optimizer.pt").exists()
    with pytest.raises(SystemExit):
        example.parse_args(["--steps", "0"])
