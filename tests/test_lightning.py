"""ComplexSynapse under PyTorch Lightning's Trainer: fit, checkpoint and resume,
gradient accumulation and clipping, bfloat16 precisions, and the example script."""

import importlib.util
import logging
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from complex_synapses import ComplexSynapse

pl = pytest.importorskip(
    "pytorch_lightning", reason="Lightning is not installed (pip install '.[lightning]')"
)

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*does not have many workers.*",
    "ignore:.*callbacks used to create the checkpoint.*",  # the resumed fit saves none
    "ignore:.*exists and is not empty.*",  # the example resumes into its own folder
    "ignore:.*treespec.*",  # Lightning's own use of torch's pytree
)
logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

ROOT = Path(__file__).resolve().parents[1]
CHAIN = dict(n_beakers=5, alpha=2.0, beta=1000.0)


def data(batch_size: int = 16) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=g)
    return DataLoader(TensorDataset(x, x[:, :3].argmax(1)), batch_size=batch_size)


class Net(pl.LightningModule):
    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 3))
        self.initial = {n: p.detach().clone() for n, p in self.named_parameters()}

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        opt = optimizer(self.parameters())
        return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler(opt), "interval": "step"}}


def optimizer(params) -> ComplexSynapse:
    return ComplexSynapse(params, torch.optim.Adam, lr=1e-2, **CHAIN)


def scheduler(opt) -> torch.optim.lr_scheduler.LRScheduler:
    return torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.9)


def trainer(epochs: int = 4, **kwargs) -> "pl.Trainer":
    kwargs = {"enable_checkpointing": False, **kwargs}
    return pl.Trainer(
        max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
        enable_model_summary=False, **kwargs,
    )  # fmt: skip


def fit(model: Net, loader: DataLoader | None = None, **kwargs) -> ComplexSynapse:
    t = trainer(**kwargs)
    t.fit(model, loader or data())
    return t.optimizers[0]


def own_loop(epochs: int = 4, batch_size: int = 16, clip: float | None = None) -> tuple[Net, ComplexSynapse]:
    """What Lightning's fit does, written out: the reference the Trainer must match."""
    model = Net()
    opt = optimizer(model.parameters())
    sched = scheduler(opt)
    for _ in range(epochs):
        for batch in data(batch_size):
            opt.zero_grad()
            model.training_step(batch, 0).backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            sched.step()
    return model, opt


def assert_same_end(a: Net, opt_a: ComplexSynapse, b: Net, opt_b: ComplexSynapse, exact: bool = True) -> None:
    check = (
        torch.testing.assert_close
        if not exact
        else lambda x, y: torch.testing.assert_close(x, y, rtol=0, atol=0)
    )
    for pa, pb in zip(a.parameters(), b.parameters()):
        check(pa.detach(), pb.detach())
        check(opt_a.levels(pa), opt_b.levels(pb))
        check(opt_a.base.state[pa]["exp_avg"], opt_b.base.state[pb]["exp_avg"])
        assert opt_a.state[pa]["chain_step"] == opt_b.state[pb]["chain_step"]
    assert opt_a.param_groups[0]["lr"] == opt_b.param_groups[0]["lr"]


def test_fit_is_the_own_loop():
    model = Net()
    opt = fit(model)
    assert isinstance(opt, ComplexSynapse)
    assert opt.state[next(model.parameters())]["chain_step"] == 4 * 16
    assert_same_end(model, opt, *own_loop())


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed", "bf16-true"])
def test_resume_from_a_checkpoint_ends_where_the_whole_fit_ends(tmp_path, precision):
    whole = Net()
    saver = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, every_n_epochs=1, save_top_k=-1)
    opt_whole = fit(whole, precision=precision, callbacks=[saver], enable_checkpointing=True)
    midway = tmp_path / "epoch=1-step=32.ckpt"  # after 2 of the 4 epochs
    assert midway.exists(), sorted(p.name for p in tmp_path.iterdir())
    saved = torch.load(midway, weights_only=True)["optimizer_states"][0]
    assert saved["base_optimizer"] == "Adam" and len(saved["state"][0]["hidden"]) == CHAIN["n_beakers"] - 1

    resumed = Net(seed=1)  # other weights, to see that the checkpoint's are taken
    t = trainer(precision=precision)
    t.fit(resumed, data(), ckpt_path=midway)
    assert_same_end(whole, opt_whole, resumed, t.optimizers[0])


def test_gradient_accumulation_is_one_step_per_accumulated_batch():
    model = Net()
    opt = fit(model, data(batch_size=8), accumulate_grad_batches=2)
    # Lightning scales each half-batch's loss by 1/2: the same gradient as a batch of 16.
    assert opt.state[next(model.parameters())]["chain_step"] == 4 * 16
    assert_same_end(model, opt, *own_loop(batch_size=16), exact=False)


def test_gradient_clipping_reaches_the_step():
    model = Net()
    opt = fit(model, gradient_clip_val=0.05)
    assert_same_end(model, opt, *own_loop(clip=0.05))
    unclipped, _ = own_loop()
    assert not torch.allclose(model.net[0].weight, unclipped.net[0].weight)


def test_bf16_true_keeps_the_slow_levels_moving():
    """Parameters in bfloat16: a slow level's change per step is far below bfloat16's
    resolution, so the chain state is float32; the slowest level must move as it does
    in a float32 fit (same chain, gradients through bfloat16)."""
    runs = {}
    for precision in ("32-true", "bf16-true"):
        model = Net()
        opt = fit(model, precision=precision)
        w = model.net[0].weight
        levels = opt.levels(w)
        assert w.dtype == (torch.bfloat16 if precision == "bf16-true" else torch.float32)
        assert levels.dtype == torch.float32
        runs[precision] = levels[-1] - model.initial["net.0.weight"].float()
    fp32, bf16 = runs["32-true"], runs["bf16-true"]
    w0 = model.initial["net.0.weight"].abs()
    half_spacing = 2.0 ** (torch.floor(torch.log2(w0)) - 8)  # bfloat16 keeps 8 significant bits
    per_step = fp32.abs() / opt.state[model.net[0].weight]["chain_step"]
    assert (per_step < half_spacing).float().mean() > 0.9  # in bfloat16 these would round back
    assert bf16.norm() > 0.5 * fp32.norm()
    assert torch.nn.functional.cosine_similarity(bf16.flatten(), fp32.flatten(), dim=0) > 0.9


def load_example():
    spec = importlib.util.spec_from_file_location("lightning_mnist", ROOT / "examples" / "lightning_mnist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_fits_checkpoints_and_resumes(tmp_path):
    pytest.importorskip("sklearn", reason="the digits data set comes with scikit-learn")
    example = load_example()
    args = ["--tasks", "2", "--epochs-per-task", "1", "--root", str(tmp_path)]
    accuracy = example.main([*args, "--batch-size", "64"])
    assert sorted(accuracy) == ["acc/task0", "acc/task1"]
    assert all(0.0 <= a <= 1.0 for a in accuracy.values()) and accuracy["acc/task1"] > 0.2  # chance: 0.1
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert saved["optimizer_states"][0]["base_optimizer"] == "Adam"
    more = example.main(["--tasks", "2", "--epochs-per-task", "2", "--root", str(tmp_path),
                         "--batch-size", "64", "--resume", str(tmp_path / "last.ckpt")])  # fmt: skip
    assert sorted(more) == ["acc/task0", "acc/task1"]
    resumed = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert resumed["epoch"] == 3 and resumed["global_step"] == saved["global_step"] * 2
    with pytest.raises(SystemExit):
        example.parse_args(["--tasks", "0"])
