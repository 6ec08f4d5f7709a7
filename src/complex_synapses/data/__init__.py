"""Data: the IDX reader, the data sets, the continual-learning protocols and streams."""

from .datasets import DATASETS, Dataset, load_dataset
from .idx import DataError, read_idx, write_idx
from .protocols import EXPERIMENTS, SCENARIOS, TASK_ORDERS, Protocol, build_protocol, carve_validation
from .streams import STREAMS, Batch, new_task_share, stream

__all__ = [
    "DATASETS",
    "EXPERIMENTS",
    "SCENARIOS",
    "TASK_ORDERS",
    "carve_validation",
    "STREAMS",
    "Batch",
    "DataError",
    "Dataset",
    "Protocol",
    "build_protocol",
    "load_dataset",
    "read_idx",
    "stream",
    "new_task_share",
    "write_idx",
]
