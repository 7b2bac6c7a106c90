"""Notebook 03's recipes: SimCLR pretraining of a ResNet-18, and the same ResNet-18
trained from scratch on a few labels per class for comparison."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from course_utils import checks
from course_utils.augment import ViewAugment
from course_utils.checkpoints import History
from course_utils.data import ImageDataset, hold_out, load_dataset, per_class
from course_utils.images import resize
from course_utils.methods.simclr import SimCLR, simclr_step
from course_utils.methods.supervised import supervised_step
from course_utils.models import Classifier, ResNet18Backbone
from course_utils.recipes import LIMITS, Recipe
from course_utils.runtime import pick, profile
from course_utils.train import ShuffledBatches, fit, fit_classifier, recipe_step

SIMCLR_DATASETS = ("cifar10", "stl10")


@dataclass(frozen=True, kw_only=True)
class Encoder:
    """The ResNet-18 shape both recipes share, and the images it sees.

    ``width`` is the first stage's channels (64 is torchvision's); ``imagenet_stem``
    selects the 7x7 stride-2 conv + max-pool, otherwise one 3x3 conv of ``stem_stride``.
    """

    dataset: str
    image_size: int
    width: int
    imagenet_stem: bool
    stem_stride: int

    def __post_init__(self) -> None:
        checks.fields(self, LIMITS)
        if self.dataset not in SIMCLR_DATASETS:
            raise ValueError(f"dataset must be one of {', '.join(SIMCLR_DATASETS)}, got {self.dataset!r}")

    @classmethod
    def default(cls, dataset: str) -> Encoder:
        """The source's full ResNet-18 on 96x96 STL10 on a GPU; a 16-channel one with a
        stride-2 3x3 stem on 32x32 images on a CPU."""
        source_scale = profile() == "full" and dataset == "stl10"
        return cls(dataset=dataset, image_size=96 if source_scale else 32, width=pick(smoke=8, laptop=16, full=64),
                   imagenet_stem=source_scale, stem_stride=pick(smoke=2, laptop=2, full=1))  # fmt: skip

    def build(self) -> ResNet18Backbone:
        return ResNet18Backbone(3, width=self.width, small_images=not self.imagenet_stem, stem_stride=self.stem_stride)


def labelled_split(train_set: ImageDataset) -> tuple[ImageDataset, ImageDataset]:
    """The labelled pool and the validation set of notebook 03: 100 images of every class held
    out (seed 0) of the labelled training split (CIFAR-10's 50,000 images, STL10's 5,000), 20
    in ``smoke``. The validation images choose the probe's penalty and the baseline's epoch;
    no training run sees them, and the test split is left for the final numbers."""
    return hold_out(train_set, pick(smoke=20, laptop=100, full=100))


def simclr_views(image_size: int, crop_scale: tuple[float, float]) -> ViewAugment:
    """The source's five augmentations (a 9x9 blur only on 96x96 views)."""
    return ViewAugment(size=image_size, crop_scale=crop_scale, jitter=(0.5, 0.5, 0.5, 0.1), jitter_p=0.8,
                       grayscale_p=0.2, blur_kernel=9 if image_size == 96 else 0)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class SimCLRRecipe(Recipe):
    """SimCLR (Chen et al., 2020): notebook 03's ``SimCLR`` model and ``simclr_step`` (NT-Xent on
    two views) on ``images`` pretraining images (STL10's unlabelled split, or CIFAR-10's training
    split with its labels unused), AdamW with a linear warm-up and a cosine decay to
    ``final_lr_fraction`` of ``lr``."""

    name = "simclr"
    notebook = "03_simclr"
    default_model = SimCLR
    default_step = simclr_step
    encoder: Encoder
    images: int | None  # None: the whole split
    epochs: int
    proj_dim: int = 128
    batch_size: int = 256
    lr: float
    weight_decay: float = 1e-4
    temperature: float
    warmup_steps: int
    final_lr_fraction: float = 1 / 50
    augment: ViewAugment

    @classmethod
    def default(cls, dataset: str) -> SimCLRRecipe:
        """The source's recipe in the full profile (500 epochs); in the laptop profile a shorter, hotter one."""
        encoder = Encoder.default(dataset)
        return cls(
            encoder=encoder, images=pick(smoke=512, laptop=49_000, full=None),
            epochs=pick(smoke=2, laptop=18, full=500),
            batch_size=pick(smoke=128, laptop=256, full=256), lr=pick(smoke=2e-3, laptop=3e-3, full=5e-4),
            temperature=pick(smoke=0.2, laptop=0.2, full=0.07), warmup_steps=pick(smoke=2, laptop=50, full=0),
            augment=simclr_views(encoder.image_size, pick(smoke=(0.2, 1.0), laptop=(0.2, 1.0), full=(0.08, 1.0))),
        )  # fmt: skip

    def short_runs(self) -> dict[str, SimCLRRecipe]:
        """Notebook 03's augmentation ablation (notebook 06 measures it too): short runs (25,600
        images, 1 epoch in ``laptop``) with crops only, colour only, and this recipe's crops and colour."""
        short = dataclasses.replace(self, images=pick(smoke=512, laptop=25_600, full=50_000),
                                    epochs=pick(smoke=1, laptop=1, full=20))  # fmt: skip
        views = {"crop only": dataclasses.replace(self.augment, jitter_p=0.0, grayscale_p=0.0),
                 "colour only": dataclasses.replace(self.augment, crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0)),
                 "crop + colour": self.augment}  # fmt: skip
        return {name: dataclasses.replace(short, augment=augment) for name, augment in views.items()}

    @property
    def split(self) -> str:
        return "unlabeled" if self.encoder.dataset == "stl10" else "train"

    def build(self) -> SimCLR:
        return self.model_class(self.encoder.build(), out_dim=self.proj_dim)

    def load_data(self) -> torch.Tensor:
        return self.pretraining_images(load_dataset(self.encoder.dataset, self.split))

    def pretraining_images(self, split: ImageDataset) -> torch.Tensor:
        """``images`` of the pretraining split in a seeded random order (all of them for None);
        from CIFAR-10's training split, only the images outside the validation set."""
        if self.split == "train":
            split, _ = labelled_split(split)
        order = torch.randperm(len(split), generator=torch.Generator().manual_seed(self.seed))
        return split.images[order[: self.images]]

    def fit(self, model: nn.Module, data: torch.Tensor, validate=None) -> History:
        checks.setting_matches("images", self.images, data)
        step = recipe_step(self.training_step, data, self)
        batches = ShuffledBatches(len(data), self.batch_size, self.seed)
        return fit(model, step, batches, epochs=self.epochs, lr=self.lr, weight_decay=self.weight_decay,
                   warmup_steps=self.warmup_steps, final_lr_fraction=self.final_lr_fraction, validate=validate,
                   desc="SimCLR")  # fmt: skip

    def cost(self) -> str:
        images = "the whole split" if self.images is None else f"{self.images:,} images"
        return f"{self.epochs} epochs over {images}, about 30 s an epoch of 50,000 32x32 images on a 2-core CPU"


def scratch_views(image_size: int) -> ViewAugment:
    """The source's weaker augmentations for the from-scratch baseline: a flip, a mild
    crop, grayscale and a light blur, no colour jitter (a classifier needs the whole
    object, and colour is a clue to its class)."""
    return ViewAugment(size=image_size, crop_scale=(0.8, 1.0), jitter_p=0.0, grayscale_p=0.2,
                       blur_kernel=9 if image_size == 96 else 3, blur_sigma=(0.1, 0.5), blur_p=1.0)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class ScratchRecipe(Recipe):
    """The same ResNet-18 plus a linear layer trained end to end, from random weights, with
    notebook 01's ``supervised_step`` on ``labels_per_class`` labelled training images per class
    (a seeded draw from the pool of :func:`labelled_split`): AdamW with a cosine decay to 0, and
    the weights of the epoch with the best validation accuracy kept."""

    name = "simclr_scratch"
    notebook = "03_simclr"
    default_model = Classifier
    default_step = supervised_step
    encoder: Encoder
    labels_per_class: int
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    augment: ViewAugment

    @classmethod
    def default(cls, dataset: str, labels_per_class: int) -> ScratchRecipe:
        """More epochs for fewer labels, so that every run sees enough steps; the validation
        accuracy chooses the epoch that is kept. In the laptop profile the learning rate is 10^-2,
        the best of 10^-3, 3 x 10^-3 and 10^-2 on the validation images (README notes); in the
        full profile the source's 10^-3."""
        encoder = Encoder.default(dataset)
        # labels per class -> (epochs, batch) in the laptop profile: smaller batches for fewer labels, so that
        # every run takes a few hundred steps or more
        laptop = {10: (100, 32), 20: (80, 32), 50: (60, 64), 100: (60, 64), 200: (50, 128), 500: (40, 128)}
        epochs, batch_size = laptop.get(labels_per_class, (40, 128))
        return cls(
            encoder=encoder, labels_per_class=labels_per_class,
            epochs=pick(smoke=3 if labels_per_class <= 10 else 2, laptop=epochs, full=150),
            batch_size=pick(smoke=64, laptop=batch_size, full=64), lr=pick(smoke=1e-2, laptop=1e-2, full=1e-3),
            weight_decay=pick(smoke=5e-4, laptop=5e-4, full=2e-4),
            augment=scratch_views(encoder.image_size),
        )  # fmt: skip

    def build(self) -> Classifier:
        return self.model_class(self.encoder.build(), nn.Linear(8 * self.encoder.width, 10))

    def labelled(self, pool: ImageDataset) -> ImageDataset:
        """This recipe's labelled images, drawn from the pool of :func:`labelled_split`."""
        return per_class(pool, self.labels_per_class, seed=self.seed)

    def load_data(self) -> tuple[ImageDataset, ImageDataset]:
        pool, validation = labelled_split(load_dataset(self.encoder.dataset, "train"))
        return self.labelled(pool), validation

    def fit(self, model: nn.Module, data: tuple[ImageDataset, ImageDataset], validate=None) -> History:
        """``data`` is (labelled images, validation set)."""
        labelled, validation = data
        checks.setting_matches("labels_per_class x classes", self.labels_per_class * len(labelled.classes), labelled)
        size = self.encoder.image_size
        return fit_classifier(
            model, resize(labelled.images, size), labelled.targets, epochs=self.epochs,
            batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay, recipe=self,
            step=self.training_step, validation=(resize(validation.images, size), validation.targets),
            seed=self.seed, validate=validate, desc=f"from scratch, {self.labels_per_class}/class",
        )  # fmt: skip

    def cost(self) -> str:
        return f"{self.epochs} epochs over {10 * self.labels_per_class:,} labelled images"
