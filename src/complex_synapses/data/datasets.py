"""The image data sets: MNIST, Fashion-MNIST (IDX files) and scikit-learn's 8x8 digits.

IDX files are looked for, in order, in ``data_dir/<name>/`` (plain or ``.gz``), in the
data set's system folders (Debian's ``dataset-fashion-mnist`` package), and are else
downloaded once into ``data_dir/<name>/`` with pooch, which checks each file's MD5 and
writes it under its final name only when complete; a second mirror is tried when the
first fails. Everything is returned as tensors in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .idx import DataError, read_idx
from .npz import is_npz, read_npz

__all__ = ["Dataset", "IdxSource", "SOURCES", "DATASETS", "load_dataset", "fetch_idx_files"]

FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@dataclass(frozen=True)
class IdxSource:
    """Where the four IDX files of a data set come from."""

    name: str
    md5: dict[str, str]  # file name (.gz) -> MD5 of the published file
    mirrors: tuple[str, ...]  # base URLs, tried in order
    system_dirs: tuple[str, ...] = ()


# The published files' MD5s (as torchvision checks them).
SOURCES = {
    "mnist": IdxSource(
        "mnist",
        {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    ),
    "fashion-mnist": IdxSource(
        "fashion-mnist",
        {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        (
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        ("/usr/share/datasets/fashion-mnist",),
    ),
}
DATASETS = ("mnist", "fashion-mnist", "digits")


@dataclass
class Dataset:
    """Images as float32 in [0, 1], shape (N, H, W), or feature vectors (N, D) (a file of
    one's own, :mod:`.npz`); labels int64 (N,) in 0..n_classes-1."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    n_classes: int = 10
    origin: dict[str, str] = field(default_factory=dict)

    @property
    def side(self) -> int:
        return self.train_x.shape[-1]

    @property
    def images(self) -> bool:
        """Images (N, H, W), padded in the permuted protocols; else feature vectors."""
        return self.train_x.ndim == 3


def _find_local(source: IdxSource, data_dir: Path, stem: str) -> Path | None:
    for folder in (data_dir / source.name, *map(Path, source.system_dirs)):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def _download(source: IdxSource, data_dir: Path, stem: str) -> Path:
    import pooch  # only needed when something must be downloaded

    fname = stem + ".gz"
    errors = []
    for base in source.mirrors:
        try:
            path = pooch.retrieve(
                base + fname,
                known_hash="md5:" + source.md5[fname],
                fname=fname,
                path=data_dir / source.name,
                progressbar=False,
            )
            return Path(path)
        except ValueError as exc:  # pooch: the hash does not match; the file is not kept
            errors.append(f"{base}{fname}: wrong checksum ({str(exc).splitlines()[0]})")
        except Exception as exc:  # noqa: BLE001 - any network failure: try the next mirror
            errors.append(
                f"{base}{fname}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            )
    raise DataError(
        f"{source.name}: {fname} is not in {data_dir / source.name} and could not be downloaded:\n  "
        + "\n  ".join(errors)
        + f"\nPut the IDX files ({', '.join(FILES)}, .gz or not) in {data_dir / source.name}, or run "
        "where the mirrors can be reached."
    )


def fetch_idx_files(source: IdxSource, data_dir: str | Path, download: bool = True) -> dict[str, Path]:
    """The paths of the four IDX files, found locally or downloaded (see module doc)."""
    data_dir = Path(data_dir)
    paths = {}
    for stem in FILES:
        path = _find_local(source, data_dir, stem)
        if path is None:
            if not download:
                raise DataError(f"{source.name}: {stem}(.gz) not found in {data_dir / source.name}")
            path = _download(source, data_dir, stem)
        paths[stem] = path
    return paths


N_CLASSES = 10  # every data set here: MNIST, Fashion-MNIST, digits


DECODED = ("train_x", "train_y", "test_x", "test_y")


def _decoded_folder(source: IdxSource, data_dir: str | Path, paths: dict[str, Path]) -> Path:
    """Where the decoded arrays of these IDX files are kept: a name that hashes each
    file's path, size and modification time, so a changed file is decoded again."""
    stats = [
        (stem, str(Path(p).resolve()), Path(p).stat().st_size, Path(p).stat().st_mtime_ns)
        for stem, p in sorted(paths.items())
    ]
    key = hashlib.sha256(json.dumps(["decoded-v1", stats]).encode()).hexdigest()[:16]
    return Path(data_dir) / source.name / f"decoded-{key}"


def _read_decoded(folder: Path) -> dict[str, np.ndarray] | None:
    try:
        return {k: np.load(folder / f"{k}.npy", allow_pickle=False) for k in DECODED}
    except (OSError, ValueError):  # absent, or damaged: decode again
        return None


def _write_decoded(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    """The arrays as .npy files, written to a temporary folder and renamed; nothing
    where the data folder cannot be written (a read-only system copy)."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".decoding-"))
    except OSError:
        return
    try:
        for k, a in arrays.items():
            np.save(tmp / f"{k}.npy", a, allow_pickle=False)
        os.replace(tmp, folder)
    except OSError:  # no space, or another process renamed its copy first
        shutil.rmtree(tmp, ignore_errors=True)


def _load_idx(source: IdxSource, data_dir: str | Path, download: bool) -> Dataset:
    """The IDX files, decoded to float32 images in [0, 1] and int64 labels. The decoded
    arrays are kept as .npy files beside the downloads (``decoded-<hash>/``, about 4
    bytes a pixel: 220 MB for Fashion-MNIST), which a later process loads in a tenth
    of the time that decoding takes."""
    paths = fetch_idx_files(source, data_dir, download)
    folder = _decoded_folder(source, data_dir, paths)
    cached = _read_decoded(folder)
    if cached is None:
        cached = _decode(paths)
        shutil.rmtree(folder, ignore_errors=True)  # a damaged copy, if any
        _write_decoded(folder, cached)
    return Dataset(
        source.name,
        *(torch.from_numpy(cached[k]) for k in DECODED),
        origin={stem: str(p) for stem, p in paths.items()},
    )


def _decode(paths: dict[str, Path]) -> dict[str, np.ndarray]:
    arrays = {stem: read_idx(path) for stem, path in paths.items()}
    for split in ("train", "t10k"):
        x, y = arrays[f"{split}-images-idx3-ubyte"], arrays[f"{split}-labels-idx1-ubyte"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(
                f"{paths[f'{split}-images-idx3-ubyte']}: {x.shape} images do not fit {y.shape} labels "
                f"in {paths[f'{split}-labels-idx1-ubyte']}"
            )
        if y.size and (y.min() < 0 or y.max() >= N_CLASSES):
            bad = y[(y < 0) | (y >= N_CLASSES)]
            raise DataError(
                f"{paths[f'{split}-labels-idx1-ubyte']}: labels must be class numbers 0..{N_CLASSES - 1}, "
                f"found {len(bad)} outside (e.g. {int(bad[0])})"
            )

    return {
        "train_x": arrays["train-images-idx3-ubyte"].astype(np.float32) / 255.0,
        "train_y": arrays["train-labels-idx1-ubyte"].astype(np.int64),
        "test_x": arrays["t10k-images-idx3-ubyte"].astype(np.float32) / 255.0,
        "test_y": arrays["t10k-labels-idx1-ubyte"].astype(np.int64),
    }


def _load_digits(test_fraction: float = 1 / 3, split_seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images), split into train and test
    with a fixed seed, stratified by class."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(
        x, digits.target, test_size=test_fraction, random_state=split_seed, stratify=digits.target
    )
    as_labels = lambda a: torch.from_numpy(a.astype(np.int64))  # noqa: E731
    return Dataset(
        "digits",
        torch.from_numpy(xtr),
        as_labels(ytr),
        torch.from_numpy(xte),
        as_labels(yte),
        origin={"sklearn": "sklearn.datasets.load_digits"},
    )


def _load_npz(path: Path) -> Dataset:
    """A file of one's own (:mod:`.npz`), checked, as tensors."""
    info, a = read_npz(path)
    t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in a.items()}
    return Dataset(
        path.stem,
        t["x_train"],
        t["y_train"],
        t["x_test"],
        t["y_test"],
        n_classes=info.n_classes,
        origin={"npz": str(path), "sha256": info.sha256},
    )


def load_dataset(name: str, data_dir: str | Path = "./store/datasets", download: bool = True) -> Dataset:
    """Load data set ``name`` ("mnist", "fashion-mnist" or "digits"), or a file of one's
    own, ``PATH.npz`` (:mod:`.npz`)."""
    if is_npz(name):
        return _load_npz(Path(name))
    if name == "digits":
        return _load_digits()
    if name not in SOURCES:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return _load_idx(SOURCES[name], data_dir, download)
