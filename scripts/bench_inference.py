"""CPU inference backends for vidsearch's two models, compared in one run, as one table.

    .venv/bin/python scripts/bench_inference.py --yolo-weights yolo11n.pt --footage /path/to/videos

CLIP: the ViT-B-32 image tower (224x224 normalized batch -> embedding) with random weights (torch.manual_seed(0)):
speed is real, but agreement with random weights says little about trained weights (their outlier activations).
YOLO: the given weights through ultralytics' own predict (letterbox, NMS: the same code for every backend).
Variants of one model are timed interleaved, round by round, so load from other processes hits them alike;
`ratio` is the median over rounds of (PyTorch fp32 time / variant time) in the same round. Backends whose package
is missing (onnx + onnxruntime, openvino) are skipped with a note. Exports are cached under --work.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import shutil
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np

from benchkit import add_footage_option, interleaved, print_table, random_weights

os.environ.setdefault("YOLO_OFFLINE", "1")  # no AutoUpdate pip installs, no downloads during export
CLIPS = ("scenes/opencv_vtest_pets2009.avi", "scenes/intel_one-by-one-person-detection.mp4")
CALIB_CLIPS = ("scenes/rknn_people-walking.mp4", "scenes/crowd_walking_1080p.mp4")  # not the measured frames
NOTES: list[str] = []


def has(*modules: str) -> bool:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    NOTES.extend(f"skipped what needs {m} (not installed)" for m in missing)
    return not missing


def sample_frames(path: Path, n: int, step: int | None = None) -> list[np.ndarray]:
    """n RGB frames spread over the clip, or its first n frames `step` apart."""
    import av

    with av.open(str(path)) as container:
        total = container.streams.video[0].frames or 10_000
        want = set(range(0, n * step, step)) if step else set(np.linspace(0, total - 1, n).astype(int).tolist())
        return [f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(video=0)) if i in want][:n]


def cpu_seconds() -> tuple[float, float, float]:
    """(busy seconds of all CPUs, this process's CPU seconds, wall clock), to tell how loaded the machine was."""
    stat, own = Path("/proc/stat"), os.times()  # Linux; elsewhere the load note reads 0%
    ticks = [int(v) for v in stat.read_text().split("\n", 1)[0].split()[1:]] if stat.exists() else [0] * 5
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK"), own.user + own.system, time.perf_counter()


def interleaved_noting_load(variants: dict, arg, rounds: int, label: str) -> dict:
    """benchkit.interleaved, and a note of how busy other processes kept the CPUs meanwhile."""
    before = cpu_seconds()
    timed = interleaved(variants, arg, rounds)
    after = cpu_seconds()
    other = (after[0] - before[0] - after[1] + before[1]) / ((after[2] - before[2]) * os.cpu_count())
    NOTES.append(f"{label}: other processes kept {max(other, 0):.0%} of the {os.cpu_count()} CPUs busy while timed")
    return timed


def clip_variants(work: Path, threads: int) -> dict:
    """{(backend, precision): fn(float32 NCHW array) -> embeddings array}, PyTorch fp32 first."""
    import open_clip
    import torch

    visual = open_clip.create_model("ViT-B-32", pretrained=random_weights("ViT-B-32")[1]).visual.eval()

    def torch_fn(module, dtype=torch.float32):
        def run(x):
            with torch.inference_mode():
                return module(torch.from_numpy(x).to(dtype)).float().numpy()
        return run

    out = {("PyTorch", "fp32"): torch_fn(visual)}
    if torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported():
        out["PyTorch", "bf16 weights"] = torch_fn(copy.deepcopy(visual).to(torch.bfloat16), torch.bfloat16)
    else:
        NOTES.append("PyTorch bf16 skipped: no AVX512-BF16/AMX on this CPU (bf16 would be emulated, slow)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao
        dynamic = torch.ao.quantization.quantize_dynamic(copy.deepcopy(visual), {torch.nn.Linear}, dtype=torch.qint8)
    out["PyTorch torch.ao", "int8 dynamic"] = torch_fn(dynamic)
    if not has("onnx", "onnxruntime"):
        return out
    fp32, int8 = work / "clip-vit-b-32-visual.onnx", work / "clip-vit-b-32-visual-int8.onnx"
    if not fp32.exists():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter is deprecated, but its graph quantizes faster
            torch.onnx.export(visual, (torch.zeros(1, 3, 224, 224),), str(fp32), dynamo=False, opset_version=17,
                              input_names=["pixels"], output_names=["embedding"],
                              dynamic_axes={"pixels": {0: "batch"}, "embedding": {0: "batch"}})
    if not int8.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"])  # the patch Conv stays fp32: ConvInteger is slow
    import onnxruntime as ort

    def ort_fn(path):
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda x: session.run(["embedding"], {"pixels": x})[0]

    out["ONNX Runtime", "fp32"], out["ONNX Runtime", "int8 dynamic"] = ort_fn(fp32), ort_fn(int8)
    if has("openvino"):
        import openvino as ov

        core = ov.Core()
        bf16 = "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        for precision in ["f32", "bf16"] if bf16 else ["f32"]:
            config = {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads,
                      "PERFORMANCE_HINT": "LATENCY"}
            compiled = core.compile_model(core.read_model(str(fp32)), "CPU", config)
            out["OpenVINO", precision] = lambda x, c=compiled: c(x)[0]
    return out


def bench_clip(frames, args) -> list[tuple]:
    import open_clip
    import torch
    from PIL import Image

    # open_clip's eval transform: shorter side to 224 bicubic, center crop, OpenAI mean/std; the same for all backends
    preprocess = open_clip.image_transform(224, is_train=False)
    pixels = torch.stack([preprocess(Image.fromarray(f)) for f in frames]).numpy()
    variants = clip_variants(args.work, args.threads)

    def embed(fn):  # L2-normalized, as vidsearch stores them
        e = np.concatenate([fn(pixels[i : i + 16]) for i in range(0, len(pixels), 16)])
        return e / np.linalg.norm(e, axis=1, keepdims=True)

    reference = embed(next(iter(variants.values())))
    cosines = {key: (embed(fn) * reference).sum(1) for key, fn in variants.items()}
    rows = []
    for batch in args.clip_batches:
        x = np.ascontiguousarray(np.resize(pixels, (batch, *pixels.shape[1:])))
        timed = interleaved_noting_load(variants, x, args.rounds, f"CLIP batch {batch}")
        agree = {k: f"cos min {c.min():.5f} mean {c.mean():.5f}" for k, c in cosines.items()}
        rows += [("CLIP ViT-B-32", *k, batch, batch / s, r, agree[k]) for k, (s, r) in timed.items()]
    return rows


def yolo_models(weights: Path, work: Path, footage: Path, frame: np.ndarray) -> dict:
    """{(backend, precision): ultralytics YOLO}, exported into `work` once, PyTorch first."""
    from ultralytics import YOLO

    local = work / weights.name
    if not local.exists():
        shutil.copy(weights, local)
    out = {("PyTorch", "fp32"): YOLO(str(local), task="detect")}
    if has("onnx", "onnxruntime"):
        if not local.with_suffix(".onnx").exists():
            YOLO(str(local)).export(format="onnx", dynamic=True, simplify=False)
        out["ONNX Runtime", "fp32"] = YOLO(str(local.with_suffix(".onnx")), task="detect")
        int8 = work / "int8" / f"{local.stem}_int8.onnx"  # own folder: this export deletes the fp32 .onnx it made
        if not int8.exists():  # static INT8 calibrates on unlabeled frames of other clips, through a local data yaml
            from PIL import Image
            (work / "calib" / "images").mkdir(parents=True, exist_ok=True)
            for clip in CALIB_CLIPS:
                for i, frame in enumerate(sample_frames(footage / clip, 28, step=25)):
                    Image.fromarray(frame).save(work / "calib" / "images" / f"{Path(clip).stem}_{i}.jpg")
            names = "".join(f"\n  {k}: {v}" for k, v in out["PyTorch", "fp32"].names.items())
            data = work / "calib" / "data.yaml"
            data.write_text(f"path: {data.parent}\ntrain: images\nval: images\nnames:{names}\n")
            int8.parent.mkdir(exist_ok=True)
            shutil.copy(weights, int8.parent / weights.name)
            YOLO(str(int8.parent / weights.name)).export(format="onnx", dynamic=True, simplify=False, quantize=8,
                                                         data=str(data))
        out["ONNX Runtime", "int8 static (QDQ)"] = YOLO(str(int8), task="detect")
    if has("openvino"):
        folder = work / f"{local.stem}_openvino_model"
        if not folder.exists():
            YOLO(str(local)).export(format="openvino", dynamic=True)
        out["OpenVINO", "default hint"] = YOLO(str(folder), task="detect")  # bf16 where the CPU has AMX
        # ultralytics compiles with a LATENCY hint only: recompile a second one with f32 (private attributes)
        import openvino as ov

        (f32 := YOLO(str(folder), task="detect")).predict([frame], verbose=False)
        backend, core = f32.predictor.model.backend, ov.Core()
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        backend.compile_model = partial(core.compile_model, device_name="CPU", config=config)
        backend.ov_compiled_model = backend.compile_model(core.read_model(next(folder.glob("*.xml"))))
        out["OpenVINO", "f32"] = f32
    return out


def box_agreement(reference, result) -> str:
    """Reference boxes matched at IoU >= 0.9 (greedily, by score), persons lost (none at IoU >= 0.5), max score diff."""
    def matches(overlap, threshold):
        pairs, free = [], np.ones(overlap.shape[1], bool)
        for i in range(overlap.shape[0]):  # ultralytics sorts boxes by score
            j = int(np.argmax(np.where(free, overlap[i], -1))) if free.any() else None
            if j is not None and overlap[i, j] >= threshold:
                free[j] = False
                pairs.append((i, j))
        return pairs

    total = close = lost = found = worst = 0
    for (a, a_scores), (b, b_scores) in zip(reference, result):
        corners = np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2])
        inter, area = np.prod(np.clip(corners, 0, None), axis=2), lambda z: np.prod(z[:, 2:] - z[:, :2], axis=1)
        overlap = inter / (area(a)[:, None] + area(b)[None, :] - inter)
        pairs = matches(overlap, 0.9)
        total, close, found = total + len(a), close + len(pairs), found + len(b)
        lost += len(a) - len(matches(overlap, 0.5))
        worst = max([worst] + [abs(a_scores[i] - b_scores[j]) for i, j in pairs])
    return f"IoU>=.9 {close}/{total}, lost {lost}, boxes {found}, max|dscore| {worst:.3f}"


def bench_yolo(frames, args) -> list[tuple]:
    bgr = [np.ascontiguousarray(f[..., ::-1]) for f in frames]  # ultralytics takes numpy images as BGR
    models = yolo_models(args.yolo_weights.resolve(), args.work, args.footage, bgr[0])
    sizes = {("PyTorch", "fp32"): (640, 480, 416), ("ONNX Runtime", "fp32"): (640, 480),
             ("OpenVINO", "default hint"): (640, 480)}
    variants = {(*k, size): m for k, m in models.items() for size in sizes.get(k, (640,))}
    kw = dict(conf=0.5, iou=0.5, classes=[0], batch=args.yolo_batch, verbose=False)  # vidsearch's defaults

    def detect(model, size, images):
        return [(r.boxes.xyxy.numpy(), r.boxes.conf.numpy()) for r in model.predict(images, imgsz=size, **kw)]

    reference = detect(models["PyTorch", "fp32"], 640, bgr)
    agreement = {k: box_agreement(reference, detect(m, k[2], bgr)) for k, m in variants.items()}
    fns = {k: partial(detect, m, k[2]) for k, m in variants.items()}
    timed = interleaved_noting_load(fns, (bgr * 2)[: args.yolo_batch], args.rounds, f"YOLO batch {args.yolo_batch}")
    return [("YOLO11n", b, f"{p} @{s}", args.yolo_batch, args.yolo_batch / t, r, agreement[b, p, s])
            for (b, p, s), (t, r) in timed.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--yolo-weights", type=Path, required=True)
    add_footage_option(parser)
    parser.add_argument("--frames", type=int, default=32, help="frames sampled from each of the two clips")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clip-batches", type=lambda s: [int(b) for b in s.split(",")], default=[16, 32])
    parser.add_argument("--yolo-batch", type=int, default=16)
    parser.add_argument("--only", choices=("clip", "yolo"))
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "vidsearch-bench-inference")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    import torch

    torch.set_num_threads(args.threads)
    frames = [f for clip in CLIPS for f in sample_frames(args.footage / clip, args.frames)]
    rows = bench_clip(frames, args) if args.only != "yolo" else []
    rows += bench_yolo(frames, args) if args.only != "clip" else []
    print(f"\n{len(frames)} frames, {args.threads} threads, {args.rounds} interleaved rounds; items/s: median round; "
          "ratio: median per-round speed-up vs PyTorch fp32 of the same model and batch")
    print_table(("model", "backend", "precision", "batch", "items/s", "ratio", "agreement with PyTorch fp32"),
                [(m, b, p, str(n), f"{ips:.1f}", f"x{r:.2f}", a) for m, b, p, n, ips, r, a in rows])
    for note in dict.fromkeys(NOTES):
        print(f"note: {note}")


if __name__ == "__main__":
    main()
