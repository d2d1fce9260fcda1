"""The CPU's cores shared out between the thread pools of one ingest: every model's pool (PyTorch for CLIP, ONNX
Runtime for YOLO and any other ONNX model, CTranslate2 for the speech recognizer) and the decoder process. Every
model stage takes its pool from here.

Models run one after another in the ingest's thread, so each model's pool gets every core. Decoding runs
beside them in its own process; on a machine of few cores it gets its core back only while the models' threads
sleep, so there a pool's idle threads sleep at once instead of spinning for work (ONNX Runtime spins by default,
and so does the OpenMP runtime under PyTorch). With many cores spinning costs nothing that decoding needs.

The speech recognizer is the exception: it works in a thread of its own beside the picture models, so its pool takes
half the cores and leaves them the rest.
"""

from __future__ import annotations

import os

# at most this many cores: idle model threads sleep rather than spin
FEW_CORES = 4

_granted: int | None = None


def use_cores(count: int | None) -> None:
    """Hold this process's pools to `count` cores (a Ray task's share of its machine); None: all it may use."""
    global _granted
    _granted = count


def cores() -> int:
    """The cores this process may use: as granted by use_cores, else its affinity (as a container or `taskset` sets
    it)."""
    if _granted is not None:
        return _granted
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def model_threads() -> int:
    return cores()


def speech_threads() -> int:
    """The speech recognizer's pool (faster-whisper's cpu_threads): half the cores, at least one."""
    return max(1, cores() // 2)


def idle_threads_spin() -> bool:
    return cores() > FEW_CORES


def prepare_torch() -> None:
    """Before torch is first imported: OpenMP reads its wait policy once, at start. A user's own setting stays."""
    if not idle_threads_spin():
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def configure_torch() -> None:
    import torch

    torch.set_num_threads(model_threads())


def onnx_session_options():
    """ONNX Runtime session options for a model of the ingest (YOLO, and other ONNX stages)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = model_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if idle_threads_spin() else "0")
    return options
