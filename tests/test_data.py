import gzip
import hashlib
import http.server
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from complex_synapses.data import DataError, build_protocol, load_dataset, read_idx, stream, write_idx
from complex_synapses.data.datasets import FILES, IdxSource, fetch_idx_files

FASHION = Path("/usr/share/datasets/fashion-mnist")


def fake_idx_dir(folder: Path, n=20, side=28, seed=0) -> dict[str, str]:
    """Write a small MNIST-like set of the four IDX .gz files; return their MD5s."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n, side, side), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n // 2, side, side), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(n // 2, dtype=np.uint8) % 10,
    }
    md5 = {}
    for stem, a in arrays.items():
        write_idx(folder / (stem + ".gz"), a)
        md5[stem + ".gz"] = hashlib.md5((folder / (stem + ".gz")).read_bytes()).hexdigest()
    return md5


def test_idx_round_trip(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a.idx", "a.idx.gz"):
        write_idx(tmp_path / name, a)
        np.testing.assert_array_equal(read_idx(tmp_path / name), a)
    f = np.linspace(0, 1, 5).astype(np.float32)
    write_idx(tmp_path / "f.idx", f)
    np.testing.assert_array_equal(read_idx(tmp_path / "f.idx"), f)


def test_bad_idx_files_name_the_file(tmp_path):
    a = np.zeros((4, 5, 5), dtype=np.uint8)
    write_idx(tmp_path / "good.idx", a)
    raw = (tmp_path / "good.idx").read_bytes()
    (tmp_path / "magic.idx").write_bytes(b"\x01\x02" + raw[2:])
    (tmp_path / "short.idx").write_bytes(raw[:-7])
    (tmp_path / "short.idx.gz").write_bytes(gzip.compress(raw)[:-20])
    for name, match in [
        ("magic.idx", "bad magic"),
        ("short.idx", "size mismatch"),
        ("short.idx.gz", "truncated gzip"),
    ]:
        with pytest.raises(DataError, match=match) as err:
            read_idx(tmp_path / name)
        assert name in str(err.value)
    with pytest.raises(DataError, match="no such file"):
        read_idx(tmp_path / "missing.idx")


class _Server:
    """A static file server on 127.0.0.1 that counts the requests it gets."""

    def __init__(self, root: Path):
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests.append(self.path)
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port_url() -> str:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/"


def test_download_checks_hash_uses_second_mirror_and_caches(tmp_path):
    md5 = fake_idx_dir(tmp_path / "served")
    with _Server(tmp_path / "served") as server:
        source = IdxSource("toy", md5, (closed_port_url(), server.url))
        paths = fetch_idx_files(source, tmp_path / "data")
        assert sorted(p.name for p in paths.values()) == sorted(s + ".gz" for s in FILES)
        assert len(server.requests) == 4
        for stem, p in paths.items():
            np.testing.assert_array_equal(read_idx(p), read_idx(tmp_path / "served" / (stem + ".gz")))
        fetch_idx_files(source, tmp_path / "data")  # the cache: nothing downloaded again
        assert len(server.requests) == 4


@pytest.mark.parametrize("damage", ["corrupt", "truncated"])
def test_bad_download_is_refused_and_nothing_is_kept(tmp_path, damage):
    md5 = fake_idx_dir(tmp_path / "served")
    victim = tmp_path / "served" / "train-images-idx3-ubyte.gz"
    raw = victim.read_bytes()
    victim.write_bytes(raw[:100] + b"x" * 50 + raw[150:] if damage == "corrupt" else raw[: len(raw) // 2])
    with _Server(tmp_path / "served") as server:
        source = IdxSource("toy", md5, (server.url,))
        with pytest.raises(DataError, match="train-images-idx3-ubyte.gz.*wrong checksum"):
            fetch_idx_files(source, tmp_path / "data")
    assert not (tmp_path / "data" / "toy" / "train-images-idx3-ubyte.gz").exists()
    leftovers = (
        [p.name for p in (tmp_path / "data" / "toy").iterdir()]
        if (tmp_path / "data" / "toy").exists()
        else []
    )
    assert all(not name.startswith("train-images") for name in leftovers)


def test_offline_gives_a_clear_error(tmp_path):
    mirrors = (closed_port_url(), closed_port_url())
    source = IdxSource("toy", {s + ".gz": "0" * 32 for s in FILES}, mirrors)
    with pytest.raises(DataError) as err:
        fetch_idx_files(source, tmp_path / "data")
    msg = str(err.value)
    assert "train-images-idx3-ubyte.gz is not in" in msg and "could not be downloaded" in msg
    assert all(m + "train-images-idx3-ubyte.gz" in msg for m in mirrors)
    assert not any((tmp_path / "data" / "toy").glob("*")) if (tmp_path / "data" / "toy").exists() else True


def test_local_files_are_used_without_network(tmp_path, monkeypatch):
    fake_idx_dir(tmp_path / "data" / "mnist")
    from complex_synapses.data import datasets

    monkeypatch.setitem(datasets.SOURCES, "mnist", IdxSource("mnist", {}, (closed_port_url(),)))
    d = load_dataset("mnist", tmp_path / "data")
    assert d.train_x.shape == (20, 28, 28) and d.train_x.dtype == torch.float32 and d.train_x.max() <= 1.0
    assert d.test_y.shape == (10,)


def test_digits_are_embedded_and_fixed():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert a.train_x.shape[1:] == (8, 8) and len(a.train_y) + len(a.test_y) == 1797
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)


@pytest.mark.skipif(not FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_the_debian_package(tmp_path):
    d = load_dataset("fashion-mnist", tmp_path)
    assert d.train_x.shape == (60000, 28, 28) and d.test_x.shape == (10000, 28, 28)
    assert sorted(d.train_y.unique().tolist()) == list(range(10))
    assert str(FASHION) in d.origin["train-images-idx3-ubyte"]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_split_protocol(digits):
    p = build_protocol(digits, "splitMNIST", "task", 5, seed=0)
    assert [t.classes for t in p.tasks] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    for k, t in enumerate(p.tasks):
        assert set(t.train_y.tolist()) == {0, 1}
        assert set(digits.train_y[t.train_rows].tolist()) == {2 * k, 2 * k + 1}
    assert p.n_outputs == 10 and p.multi_head and p.input_size == 64
    c = build_protocol(digits, "splitMNIST", "class", 5, seed=0)
    assert set(c.tasks[3].train_y.tolist()) == {6, 7} and c.active_outputs(3) == 8
    d = build_protocol(digits, "splitMNIST", "domain", 5, seed=0)
    assert d.n_outputs == 2 and not d.multi_head
    # seeds >= 10 shuffle the class order, the same way each time
    s1, s2 = (build_protocol(digits, "splitMNIST", "task", 5, seed=12) for _ in range(2))
    original = [sorted(set(digits.train_y[t.train_rows].tolist())) for t in s1.tasks]
    assert original != [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert original == [sorted(set(digits.train_y[t.train_rows].tolist())) for t in s2.tasks]


def test_permuted_protocol(digits):
    p = build_protocol(digits, "permMNIST", "class", 3, seed=0)
    assert p.input_size == 12 * 12 and p.n_outputs == 30
    assert p.tasks[0].permutation is None and p.tasks[1].permutation is not None
    assert not torch.equal(p.tasks[1].permutation, p.tasks[2].permutation)
    assert p.tasks[2].train_y.min() == 20
    rows = torch.arange(4)
    x0, x1 = p.images(0, rows), p.images(1, rows)
    assert torch.equal(x1, x0[:, p.tasks[1].permutation])
    padded = torch.nn.functional.pad(digits.train_x[:4], (2, 2, 2, 2)).flatten(1)
    assert torch.equal(x0, padded)
    assert build_protocol(digits, "permMNIST", "task", 3, seed=11).tasks[0].permutation is not None


def test_protocol_errors(digits):
    with pytest.raises(ValueError, match="at most|cannot have more tasks"):
        build_protocol(digits, "splitMNIST", "task", 11, seed=0)
    with pytest.raises(ValueError, match="scenario"):
        build_protocol(digits, "splitMNIST", "tasks", 5, seed=0)


def test_streams(digits):
    p = build_protocol(digits, "splitMNIST", "task", 5, seed=0)
    batches = list(stream(p, "task-based", 7, 16, seed=3))
    assert len(batches) == 35 and [b.task for b in batches[::7]] == [0, 1, 2, 3, 4]
    again = list(stream(p, "task-based", 7, 16, seed=3))
    assert all(torch.equal(a.x, b.x) for a, b in zip(batches, again))
    q = build_protocol(digits, "permMNIST", "domain", 3, seed=0)
    mixed = list(stream(q, "random", 4, 64, seed=1))
    assert len(mixed) == 12 and all(len(set(b.task.tolist())) > 1 for b in mixed)
    # each sample is the image of its own task, with its label
    b = mixed[0]
    for i in range(8):
        t = int(b.task[i])
        matches = (q.images(t, q.tasks[t].train_rows) == b.x[i]).all(1).nonzero().flatten()
        assert len(matches) >= 1 and int(q.tasks[t].train_y[matches[0]]) == int(b.y[i])
    with pytest.raises(ValueError, match="stream"):
        stream(p, "shuffled", 1, 1, seed=0)


def test_gradual_share_rises_across_each_change():
    from complex_synapses.data import new_task_share

    iters, window, n = 10, 6, 3
    shares = [new_task_share(it, iters, window, n) for it in range(iters * n)]
    assert shares[:7] == [(0, 0.0)] * 7  # the first task alone until its window opens
    assert [t + s for t, s in shares[-7:]] == [2.0] * 7  # the last task alone after the window closes
    assert shares[7][0] == 0 and 0 < shares[7][1] < 0.5 < shares[10][1] < 1  # rising around 10
    assert shares[13] == (0, 1.0)  # the window is over: all from task 1 (task 0 + 1)
    ramp = [s for t, s in shares[7:13]]
    assert ramp == sorted(ramp) and abs(ramp[2] + ramp[3] - 1) < 1e-12  # symmetric about the change
    # a window of one iteration is the task-based assignment
    sharp = [t + round(s) for t, s in (new_task_share(it, iters, 1, n) for it in range(iters * n))]
    assert sharp == [it // iters for it in range(iters * n)]


def test_gradual_stream_mixes_neighbouring_tasks(digits):
    q = build_protocol(digits, "permMNIST", "class", 3, seed=0)
    batches = list(stream(q, "gradual", 20, 200, seed=1))  # window: iters
    assert len(batches) == 60
    first = [float((b.task == 1).float().mean()) for b in batches[10:30]]
    assert first[0] < 0.1 and first[-1] > 0.9 and 0.3 < first[10] < 0.7  # 0 -> 1 around iteration 20
    assert all(set(b.task.tolist()) <= {i // 20 - 1, i // 20, i // 20 + 1} for i, b in enumerate(batches))
    assert batches[5].active == 10 and batches[25].active == 20  # Class-IL: the classes seen so far
    b = batches[25]
    for i in range(6):  # each sample the image of its own task, with its label
        t = int(b.task[i])
        matches = (q.images(t, q.tasks[t].train_rows) == b.x[i]).all(1).nonzero().flatten()
        assert len(matches) >= 1 and int(q.tasks[t].train_y[matches[0]]) == int(b.y[i])
    with pytest.raises(ValueError, match="drift window"):
        stream(q, "gradual", 20, 8, seed=0, window=21)


def test_many_permuted_tasks(digits):
    q = build_protocol(digits, "permMNIST", "class", 100, seed=12)
    perms = torch.stack([t.permutation for t in q.tasks])
    assert len(q.tasks) == 100 and q.n_outputs == 1000
    assert len({tuple(p.tolist()) for p in perms}) == 100


def test_decoded_arrays_are_kept_and_reused(tmp_path, monkeypatch):
    """The first load decodes and keeps .npy files; the next loads them (decoding made to
    fail), with the same tensors; a changed IDX file or a damaged copy is decoded again;
    a data folder that cannot be written still loads."""
    import os

    from complex_synapses.data import datasets

    fake_idx_dir(tmp_path / "data" / "mnist")
    monkeypatch.setitem(datasets.SOURCES, "mnist", IdxSource("mnist", {}, (closed_port_url(),)))
    first = load_dataset("mnist", tmp_path / "data")
    (folder,) = (tmp_path / "data" / "mnist").glob("decoded-*")
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{k}.npy" for k in datasets.DECODED)
    decode = datasets._decode
    monkeypatch.setattr(datasets, "_decode", lambda paths: pytest.fail("decoded again"))
    again = load_dataset("mnist", tmp_path / "data")
    for k in datasets.DECODED:
        assert torch.equal(getattr(first, k), getattr(again, k))
    monkeypatch.setattr(datasets, "_decode", decode)
    (folder / "train_x.npy").write_bytes(b"damaged")
    assert torch.equal(load_dataset("mnist", tmp_path / "data").train_x, first.train_x)
    assert torch.equal(torch.from_numpy(np.load(folder / "train_x.npy")), first.train_x)  # repaired
    images = tmp_path / "data" / "mnist" / "train-images-idx3-ubyte.gz"
    os.utime(images, ns=(images.stat().st_atime_ns, images.stat().st_mtime_ns + 10**9))
    load_dataset("mnist", tmp_path / "data")
    assert len(list((tmp_path / "data" / "mnist").glob("decoded-*"))) == 2
    fake_idx_dir(tmp_path / "ro" / "mnist")

    def read_only(*a, **k):
        raise PermissionError("read-only")

    monkeypatch.setattr(datasets.tempfile, "mkdtemp", read_only)
    d = load_dataset("mnist", tmp_path / "ro")
    assert torch.equal(d.train_x, first.train_x) and not list((tmp_path / "ro" / "mnist").glob("decoded-*"))


def test_random_task_order_draws_every_seed_alike():
    """--task-order random: seeds below 10 draw their class order and first permutation
    as the others do; original (the default): they keep the original project's order.
    From seed 10 the two are the same protocol."""
    from complex_synapses.data import build_protocol, load_dataset

    data = load_dataset("digits", None)

    def first_classes(seed, order):
        task = build_protocol(data, "splitMNIST", "task", 5, seed, task_order=order).tasks[0]
        return sorted(set(data.train_y[task.train_rows].tolist()))

    assert first_classes(3, "original") == [0, 1] and first_classes(3, "random") != [0, 1]
    assert first_classes(12, "original") == first_classes(12, "random")
    perm = {
        o: build_protocol(data, "permMNIST", "domain", 2, 3, task_order=o) for o in ("original", "random")
    }
    assert perm["original"].tasks[0].permutation is None and perm["random"].tasks[0].permutation is not None
    with pytest.raises(ValueError, match="task_order must be one of original, random"):
        build_protocol(data, "permMNIST", "domain", 2, 3, task_order="sorted")


def test_rounds_bring_the_tasks_back_in_order():
    from complex_synapses.data import build_protocol, load_dataset
    from complex_synapses.data.streams import n_batches, stream

    p = build_protocol(load_dataset("digits", None), "permMNIST", "domain", 3, 12)
    tasks = [b.task for b in stream(p, "task-based", 4, 8, 0, rounds=2)]
    assert tasks == [t for t in (0, 1, 2, 0, 1, 2) for _ in range(4)] and len(tasks) == n_batches(p, 4, 2)
    with pytest.raises(ValueError, match="rounds are for the task-based stream"):
        stream(p, "random", 4, 8, 0, rounds=2)
