"""SimCLR training speed: the course's two-view step against the source tutorials' pipeline.

    python -m benchmarks.ssl_step [--model imagenet|cifar] [--size 32] [--batch 256]
                                  [--precision bf16|fp32] [--compile] [--rounds 5] [--steps 5]

Both sides train the same network (torchvision's ResNet-18 with the course's SimCLR
projection head and NT-Xent loss, AdamW) on the same images and batch size:

- **source**: what the source tutorials do: per-image PIL transforms (crop-and-resize,
  flip, colour jitter, grayscale; ``ToTensor``, ``Normalize``) in a ``DataLoader`` with 2
  worker processes, float32, the default (NCHW) memory layout;
- **course**: the course's step (notebook 03's ``simclr_step``, which also computes the
  positives' ranks it logs): uint8 images in memory, the views made for the whole batch at
  once (``ViewAugment``), bfloat16 autocast where the hardware computes it natively
  (``--precision fp32`` turns it off), channels-last.

The rounds alternate (source, course, source, ...) in one process, so a machine that gets
slower or faster during the run affects both sides alike; each round times ``--steps``
steps after one untimed warm-up step, and the medians over rounds are reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from types import SimpleNamespace

import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from course_utils.data import load_from_disk
from course_utils.images import resize
from course_utils.methods.simclr import SimCLR, nt_xent, simclr_step
from course_utils.recipes.simclr import simclr_views
from course_utils.results import describe_hardware, hardware
from course_utils.train import recipe_step

MODELS = ("imagenet", "cifar")
TEMPERATURE = 0.5


def resnet18(model: str) -> nn.Module:
    """torchvision's ResNet-18 without its classifier; ``cifar`` swaps the ImageNet stem
    (7x7 stride-2 conv and max-pool) for one 3x3 stride-1 conv, as CIFAR ResNets do."""
    network = torchvision.models.resnet18()
    if model == "cifar":
        network.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        network.maxpool = nn.Identity()
    network.fc = nn.Identity()
    network.out_dim = 512
    return network


def simclr(model: str, channels_last: bool) -> SimCLR:
    torch.manual_seed(0)
    network = SimCLR(resnet18(model), out_dim=128)
    return network.to(memory_format=torch.channels_last) if channels_last else network


def benchmark_images(size: int, count: int = 4096) -> tuple[torch.Tensor, str]:
    """``count`` CIFAR-10 training images (uint8, N x 3 x size x size) from the data
    directory, or random pixels when CIFAR-10 is not there (nothing is downloaded; the speed
    does not depend on what the pixels show)."""
    cifar10 = load_from_disk("cifar10", "train")
    if cifar10 is not None:
        images, source = cifar10.images[:count], "CIFAR-10"
    else:
        images, source = torch.randint(0, 256, (count, 3, 32, 32), generator=torch.Generator().manual_seed(0),
                                       dtype=torch.uint8), "random pixels"  # fmt: skip
    return resize(images, size), source


class TwoViews(Dataset):
    """The source tutorials' dataset: a PIL image, transformed twice, per item."""

    def __init__(self, images: torch.Tensor, size: int):
        self.images = [transforms.functional.to_pil_image(image) for image in images]
        self.transform = transforms.Compose(
            [
                transforms.RandomHorizontalFlip(),
                transforms.RandomResizedCrop(size=size),
                transforms.RandomApply([transforms.ColorJitter(0.5, 0.5, 0.5, 0.1)], p=0.8),
                transforms.RandomGrayscale(p=0.2),
                transforms.ToTensor(),
                transforms.Normalize((0.5,), (0.5,)),
            ]
        )

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index]
        return self.transform(image), self.transform(image)


def update(model: nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


class SourceSide:
    """Per-image transforms in 2 DataLoader workers, float32, NCHW."""

    def __init__(self, images: torch.Tensor, model: str, size: int, batch: int):
        self.model = simclr(model, channels_last=False)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-3)
        loader = DataLoader(TwoViews(images, size), batch_size=batch, shuffle=True, drop_last=True, num_workers=2,
                            persistent_workers=True)  # fmt: skip
        self.loader, self.batches = loader, iter(loader)

    def step(self) -> None:
        try:
            x1, x2 = next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            x1, x2 = next(self.batches)
        update(self.model, self.optimizer, nt_xent(*self.model(x1, x2), temperature=TEMPERATURE))


class CourseSide:
    """The course's two-view step: batched views of uint8 images, bfloat16 autocast, channels-last."""

    def __init__(self, images: torch.Tensor, model: str, size: int, batch: int, compile_model: bool = False):
        self.model = simclr(model, channels_last=True)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-3)
        if compile_model:
            self.model.forward = torch.compile(self.model.forward)
        views = simclr_views(size, crop_scale=(0.08, 1.0))
        augment = lambda batch: views(batch).contiguous(memory_format=torch.channels_last)  # noqa: E731
        settings = SimpleNamespace(augment=augment, temperature=TEMPERATURE)  # what simclr_step reads of a recipe
        self.two_view = recipe_step(simclr_step, images, settings)
        self.batch, self.count = batch, len(images)

    def step(self) -> None:
        loss, _ = self.two_view(self.model, torch.randint(self.count, (self.batch,)))
        update(self.model, self.optimizer, loss)


def images_per_second(side: SourceSide | CourseSide, steps: int, batch: int) -> float:
    side.step()  # warm-up: the first batch of a DataLoader round, oneDNN's first calls
    start = time.perf_counter()
    for _ in range(steps):
        side.step()
    return steps * batch / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=MODELS, default="imagenet", help="ResNet-18 stem (default: imagenet)")
    parser.add_argument("--size", type=int, default=32, help="image side in pixels (default: 32)")
    parser.add_argument("--batch", type=int, default=256, help="images per batch (default: 256)")
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16", help="the course side's precision")
    parser.add_argument("--compile", action="store_true", help="torch.compile the course side's model")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default: 5)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per round and side (default: 5)")
    args = parser.parse_args(argv)
    for name in ("size", "batch", "rounds", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    os.environ["COURSE_BF16"] = "1" if args.precision == "bf16" else "0"
    images, source = benchmark_images(args.size)
    if len(images) < args.batch:
        parser.error(f"--batch {args.batch} is larger than the {len(images)} benchmark images")
    sides = {
        "source": SourceSide(images, args.model, args.size, args.batch),
        "course": CourseSide(images, args.model, args.size, args.batch, args.compile),
    }
    if args.compile:
        start = time.perf_counter()
        sides["course"].step()
        print(f"torch.compile: the first course step took {time.perf_counter() - start:.0f} s")
    compiled = ", compiled" if args.compile else ""
    print(f"ResNet-18 ({args.model} stem), {args.size} px {source}, batch {args.batch}, course in {args.precision}"
          f"{compiled}; {describe_hardware(hardware())}, torch {torch.__version__}, {platform.machine()}")  # fmt: skip
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for round_ in range(args.rounds):
        for name, side in sides.items():
            rates[name].append(images_per_second(side, args.steps, args.batch))
        print(f"round {round_ + 1}: " + ", ".join(f"{name} {values[-1]:.0f} img/s" for name, values in rates.items()))
    source_rate, course_rate = (statistics.median(rates[name]) for name in sides)
    print(f"median: source {source_rate:.0f} img/s, course {course_rate:.0f} img/s, "
          f"course / source = {course_rate / source_rate:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
