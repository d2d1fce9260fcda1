"""Measure search quality with real CLIP weights on the labeled dev sets, and print the tables a report needs.

    python scripts/eval_real_model.py --footage ../shared/videos --eval ../shared/eval/dev \
        --archive /tmp/vidsearch-real --yolo-weights yolo11n.pt

Needs the CLIP weights: by default open_clip downloads ViT-B-32 `datacomp_xl_s13b_b90k` on first use (internet),
or pass `--clip-pretrained /path/to/open_clip_pytorch_model.bin`. Tests here run only a random-weight model,
which carries no text-image meaning, so these figures can only come from a run with real weights.

Prints, per set: Recall@1/5/10, MRR and person-box match for frames only, persons only, both fused, and as
each query's target says; then the score calibration: where the scores of relevant first hits and of the
best hits of queries with nothing relevant in the archive lie, and the `search.min_score` entry to add to
configs/default.json for this model (the score that keeps 95 % of the relevant first hits).
With `--json FILE` the same figures are written as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from benchkit import add_footage_option
from vidsearch import Archive
from vidsearch.evaluate import is_relevant, load_manifest, search_kind


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_footage_option(parser)
    parser.add_argument("--eval", type=Path, required=True, help="folder of eval sets (*.json)")
    parser.add_argument("--archive", type=Path, required=True, help="archive folder (reused when it exists)")
    parser.add_argument("--clip-model", default="ViT-B-32")
    parser.add_argument("--clip-pretrained", default="datacomp_xl_s13b_b90k")
    parser.add_argument("--yolo-weights", default="yolo11n.pt")
    parser.add_argument("--device", default="auto")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    manifests = sorted(args.eval.glob("*.json"))
    if not manifests:
        sys.exit(f"no eval sets in {args.eval}")
    with Archive.open(
        args.archive, clip_model=args.clip_model, clip_pretrained=args.clip_pretrained,
        yolo_weights=args.yolo_weights, device=args.device,
    ) as archive:
        started = time.perf_counter()
        named = {args.footage / r.video for m in manifests for q in load_manifest(m).queries for r in q.relevant}
        report = archive.ingest(sorted(p for p in named if p.exists()))
        print(f"ingest: {report.indexed} videos indexed, {report.unchanged} unchanged, "
              f"{len(report.failed)} failed, {time.perf_counter() - started:.0f} s")
        outcomes = archive.evaluate(manifests, args.footage, k=args.k)
        calibration = calibrate(archive, manifests)

    print(f"\n{'set':40s} {'mode':8s} {'queries':>7s} {'R@1':>6s} {'R@5':>6s} {'R@10':>6s} {'MRR':>6s} {'box@10':>7s}")
    for outcome in outcomes:
        for mode, set_report in [("target", outcome.report), *outcome.modes.items()]:
            r = set_report.to_json()
            box = "-" if r["person_box_match@10"] is None else f"{r['person_box_match@10']:.3f}"
            print(f"{r['name'][:40]:40s} {mode:8s} {r['queries']:7d} {r['recall@1']:6.3f} {r['recall@5']:6.3f} "
                  f"{r['recall@10']:6.3f} {r['mrr']:6.3f} {box:>7s}")
        if outcome.not_indexed:
            print(f"  not in this archive: {', '.join(outcome.not_indexed)}")
    print("\nscore calibration (fused search):")
    for key, value in calibration.items():
        print(f"  {key:38s} {value}")
    if args.json:
        args.json.write_text(json.dumps(
            {"sets": [o.to_json() for o in outcomes], "calibration": calibration}, indent=1
        ))


def calibrate(archive: Archive, manifests: list[Path]) -> dict:
    """Scores of the first relevant hit per query, against the best score of every other hit above it."""
    relevant_scores, noise_scores = [], []
    for path in manifests:
        manifest = load_manifest(path)
        for query in manifest.queries:
            hits = archive.query(query.text, k=10, kind=search_kind(query))
            first = next((h for h in hits if is_relevant(h, query, manifest.tolerance_s)), None)
            if first is not None:
                relevant_scores.append(first.score)
            noise_scores.extend(h.score for h in hits if not is_relevant(h, query, manifest.tolerance_s))
    relevant, noise = np.array(relevant_scores), np.array(noise_scores)
    threshold = float(np.percentile(relevant, 5)) if len(relevant) else None
    model = archive.catalog.stored_model()
    return {
        "queries with a relevant hit in the top 10": len(relevant),
        "relevant first hit score p5/p50": _percentiles(relevant),
        "irrelevant hit score p50/p95": _percentiles(noise, (50, 95)),
        "irrelevant hits above the threshold": (
            f"{float(np.mean(noise >= threshold)):.3f}" if threshold is not None and len(noise) else "-"
        ),
        "min_score entry for configs/default.json": (
            json.dumps({model.key: round(threshold, 4)})
            if threshold is not None else "-"
        ),
    }


def _percentiles(values: np.ndarray, at: tuple[int, int] = (5, 50)) -> str:
    return " / ".join(f"{np.percentile(values, p):.4f}" for p in at) if len(values) else "-"


if __name__ == "__main__":
    main()
