"""Time to accuracy: self-supervised recipes compared by what a minute of training buys.

    python -m benchmarks.time_to_accuracy [--minutes 10] [--candidates NAME ...] [--output DIR]

Each candidate is a course recipe (notebook 02's SimSiam, notebook 03's SimCLR) or a
variant of one: another temperature, batch size, crop scale, width, view size (16x16 views
are scored on validation images resized to 16x16) or number of views per image
(:mod:`benchmarks.multi_view`). It gets as many epochs as fit the budget on this machine, timed over a few
steps first, so that its learning-rate schedule ends with the budget, and it trains with
the recipe's own ``fit``. After every epoch the backbone's kNN accuracy (k = 20, cosine) is
measured on the validation images held out of the training split, with a labelled bank
drawn from the training pool; the test split is never used. Evaluation time does not count
as training time. The candidates run one after another in one process; the result is a
table (printed, and saved as JSON with the hardware) and a plot of accuracy against
training minutes.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from matplotlib.figure import Figure

from benchmarks.multi_view import multi_view_step
from course_utils.data import ImageDataset, load_dataset
from course_utils.evaluate import extract_features, knn_accuracy
from course_utils.images import resize
from course_utils.recipes import Recipe
from course_utils.recipes.fashion import fashion_split
from course_utils.recipes.simclr import SimCLRRecipe, labelled_split
from course_utils.recipes.simsiam import SimSiamRecipe
from course_utils.results import describe_hardware, hardware
from course_utils.runtime import REPO_ROOT, seed_everything

K = 20
CALIBRATION_STEPS = (2, 6)


@dataclass(frozen=True)
class Candidate:
    """A recipe to pretrain and the dataset whose validation split judges it; ``eval_size``
    resizes the kNN images to the side the encoder was trained on (None: as stored)."""

    recipe: Recipe
    dataset: str
    eval_size: int | None = None


def _simclr(size: int = 32, width: int = 16, stem_stride: int = 2, views: int = 2, crop_scale=(0.2, 1.0),
            **settings) -> Candidate:  # fmt: skip
    """Notebook 03's recipe with other views (side ``size``, ``views`` per image), encoder or settings."""
    recipe = SimCLRRecipe.default("cifar10")
    encoder = replace(recipe.encoder, image_size=size, width=width, stem_stride=stem_stride)
    recipe = replace(recipe, encoder=encoder, augment=replace(recipe.augment, size=size, crop_scale=crop_scale),
                     **settings)  # fmt: skip
    if views != 2:
        recipe = replace(recipe, step=multi_view_step(views))
    return Candidate(recipe, "cifar10", None if size == 32 else size)


def candidates() -> dict[str, Candidate]:
    """The recipes on offer, by name: the notebooks' own and the variants of issue 34's search."""
    return {
        "simclr": _simclr(),
        "simclr-t0.5": _simclr(temperature=0.5),
        "simclr-batch128": _simclr(batch_size=128),
        "simclr-batch128-t0.1": _simclr(batch_size=128, temperature=0.1),
        "simclr-batch128-t0.1-crop0.35": _simclr(batch_size=128, temperature=0.1, crop_scale=(0.35, 1.0)),
        "simclr-batch64-t0.1": _simclr(batch_size=64, temperature=0.1),
        "simclr-width32": _simclr(width=32),
        "simclr-16px-width32": _simclr(size=16, width=32),
        "simclr-16px-stride1": _simclr(size=16, stem_stride=1),
        "simclr-4views": _simclr(views=4),
        "simclr-16px-stride1-4views": _simclr(size=16, stem_stride=1, views=4),
        "simsiam": Candidate(SimSiamRecipe.default(), "fashion_mnist"),
    }


def labelled_pool_and_validation(dataset: str) -> tuple[ImageDataset, ImageDataset]:
    """The course's split of ``dataset``'s training images: (pool, held-out validation)."""
    split = fashion_split if dataset == "fashion_mnist" else labelled_split
    return split(load_dataset(dataset, "train"))


class KnnMonitor:
    """kNN accuracy of ``model.backbone`` on the validation images after every epoch,
    against the clock of training alone (the monitor's own time is taken off). With ``size``,
    the bank and validation images are resized to ``size`` x ``size`` first."""

    def __init__(self, bank: ImageDataset, validation: ImageDataset, k: int = K, size: int | None = None):
        if size is not None:
            bank, validation = (ImageDataset(resize(split.images, size), split.targets, split.classes,
                                             f"{split.source}, resized to {size}x{size}")
                                for split in (bank, validation))  # fmt: skip
        self.bank, self.validation, self.k = bank, validation, k
        self.start = time.perf_counter()
        self.eval_seconds = 0.0
        self.points: list[tuple[float, float]] = []

    def __call__(self, model: torch.nn.Module) -> dict[str, float]:
        began = time.perf_counter()
        trained_for = began - self.start - self.eval_seconds
        bank_x = extract_features(model.backbone, self.bank.images)
        val_x = extract_features(model.backbone, self.validation.images)
        accuracy = knn_accuracy(bank_x, self.bank.targets, val_x, self.validation.targets, k=self.k)
        self.eval_seconds += time.perf_counter() - began
        self.points.append((trained_for, accuracy))
        return {"val_knn_accuracy": accuracy}


def _no_monitor(model: torch.nn.Module) -> dict[str, float]:
    return {}  # the timing runs leave out a recipe's own per-epoch monitor (SimSiam's kNN and rank)


def seconds_per_step(recipe: Recipe, data: torch.Tensor) -> float:
    """Training seconds per batch, from the difference of two short runs (which cancels
    the fixed cost of starting one)."""
    batch = recipe.batch_size
    timings = []
    for steps in CALIBRATION_STEPS:
        model, subset = recipe.build(), data[: batch * steps]
        began = time.perf_counter()
        replace(recipe, epochs=1, images=len(subset)).fit(model, subset, validate=_no_monitor)
        timings.append(time.perf_counter() - began)
    return max(timings[1] - timings[0], 1e-6) / (CALIBRATION_STEPS[1] - CALIBRATION_STEPS[0])


def run(candidate: Candidate, minutes: float, bank_size: int, seed: int = 0) -> dict:
    """Train ``candidate`` for about ``minutes`` and return its kNN accuracy curve."""
    pool, validation = labelled_pool_and_validation(candidate.dataset)
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))
    bank = pool.subset(order[: min(bank_size, len(pool))], f"{bank_size} random images (seed {seed})")
    data = candidate.recipe.load_data()
    step_seconds = seconds_per_step(candidate.recipe, data)
    steps_per_epoch = len(data) // candidate.recipe.batch_size
    epochs = max(1, int(minutes * 60 / (step_seconds * steps_per_epoch)))
    recipe = replace(candidate.recipe, epochs=epochs, images=len(data))  # images: what load_data found
    seed_everything(recipe.seed)
    model = recipe.build()
    monitor = KnnMonitor(bank, validation, size=candidate.eval_size)
    monitor(model)  # the untrained network, at minute 0
    recipe.fit(model, data, validate=monitor)
    return {
        "recipe": repr(recipe),
        "epochs": epochs,
        "seconds_per_epoch_estimated": step_seconds * steps_per_epoch,
        "validation_images": len(validation),
        "bank_images": len(bank),
        "minutes": [round(t / 60, 3) for t, _ in monitor.points],
        "val_knn_accuracy": [round(a, 4) for _, a in monitor.points],
    }


def table(runs: dict[str, dict]) -> str:
    """A markdown table: each candidate's epochs, last and best kNN accuracy, minutes used."""
    lines = ["| candidate | epochs | minutes | kNN at start | kNN at end | best kNN |", "|---|---|---|---|---|---|"]
    for name, run_ in runs.items():
        accuracy = run_["val_knn_accuracy"]
        lines.append(
            f"| {name} | {run_['epochs']} | {run_['minutes'][-1]:.1f} | {accuracy[0]:.3f} | {accuracy[-1]:.3f} "
            f"| {max(accuracy):.3f} |"
        )
    return "\n".join(lines)


def plot(runs: dict[str, dict], path: Path) -> None:
    """kNN validation accuracy against training minutes, one line per candidate."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    for name, run_ in runs.items():
        ax.plot(run_["minutes"], run_["val_knn_accuracy"], marker="o", markersize=3, label=name)
    ax.set_xlabel("training time (minutes, evaluation not counted)")
    ax.set_ylabel(f"kNN accuracy on validation images (k = {K})")
    ax.set_title("What a minute of self-supervised training buys")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    offered = candidates()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.time_to_accuracy", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget of each candidate")
    parser.add_argument("--candidates", nargs="+", default=["simclr", "simsiam"], metavar="NAME",
                        help=f"which to train, in order: {', '.join(offered)}")  # fmt: skip
    parser.add_argument("--bank", type=int, default=5_000, help="labelled pool images the kNN vote draws on")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "runs" / "time_to_accuracy",
                        help="folder for the JSON and the plot (default runs/time_to_accuracy/)")  # fmt: skip
    args = parser.parse_args(argv)
    unknown = [name for name in args.candidates if name not in offered]
    if unknown:
        parser.error(f"unknown candidate {', '.join(map(repr, unknown))}; choose from {', '.join(offered)}")
    if not args.minutes > 0:
        parser.error(f"--minutes must be above 0, got {args.minutes}")
    if args.bank < K:
        parser.error(f"--bank must hold at least k = {K} images, got {args.bank}")
    args.output.mkdir(parents=True, exist_ok=True)

    runs = {name: run(offered[name], args.minutes, args.bank) for name in args.candidates}
    print(table(runs))
    record = {"hardware": hardware(), "minutes_budget": args.minutes, "k": K, "runs": runs}
    (args.output / "time_to_accuracy.json").write_text(json.dumps(record, indent=1) + "\n")
    plot(runs, args.output / "time_to_accuracy.png")
    print(f"hardware: {describe_hardware(record['hardware'])}")
    print(f"saved time_to_accuracy.json and .png in {args.output.name}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
