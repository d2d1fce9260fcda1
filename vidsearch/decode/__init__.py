"""Decode a video file and sample its frames by presentation time, or its keyframes only.

open_video is the entry point. PyAV is the default reader: on the shared footage it picks the same frames with
the same pixels as decord, 1.3x faster overall (scripts/bench_decode.py), and it reads what decord cannot
(Theora, broken timestamps, truncated files); it alone can decode keyframes only. decord stays available as
the `decord` extra, where it has wheels (x86-64 Linux and Windows); without it "auto" is PyAV.
DecodeWorker runs open_video in a child process that is killed when a file hangs it (what ingest uses).
Importing this package loads neither library.
"""

from .decord_reader import DecordDecoder, decord_installed
from .pyav_reader import PyAVDecoder
from .readers import Decoder, Reader, Sampling, check_options, open_video
from .worker import DecodeWorker, Decoded

__all__ = [
    "DecodeWorker", "Decoded", "Decoder", "DecordDecoder", "PyAVDecoder", "Reader", "Sampling", "check_options",
    "decord_installed", "open_video",
]
