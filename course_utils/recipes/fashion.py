"""Notebook 01's recipe: the FashionMNIST source's network trained with labels.

Every FashionMNIST experiment of the course splits the training file the same way
(:func:`fashion_split`): 5,000 images held out for validation, the rest the *training
pool*. Notebook 01 trains on the whole pool, on its first 1,000 labels and on a few
labels per class; notebook 02 compares SimSiam with those runs, which it reloads by
building the same recipes.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from course_utils import checks
from course_utils.augment import ViewAugment
from course_utils.checkpoints import History
from course_utils.data import ImageDataset, first_k, hold_out, load_dataset, per_class
from course_utils.methods.supervised import fashion_classifier, supervised_step
from course_utils.models import Classifier
from course_utils.recipes import Recipe
from course_utils.runtime import pick
from course_utils.train import fit_classifier

# The ordinary augmentation for small grayscale garments: a flip, a crop keeping half of
# the area or more, brightness and contrast. A supervised baseline trains with it.
FASHION_TRAIN_VIEWS = ViewAugment(size=28, crop_scale=(0.5, 1.0), jitter=(0.4, 0.4, 0.0, 0.0), jitter_p=0.8,
                                  grayscale_p=0.0)  # fmt: skip


def fashion_split(train_set: ImageDataset) -> tuple[ImageDataset, ImageDataset]:
    """The training pool (55,000 images) and the validation set (500 of every class, drawn
    with seed 0 from after the first 1,000 images, so the source's first 1,000 stay in the
    pool; 20 of every class in ``smoke``). No training run sees the validation images;
    they choose epochs and settings."""
    return hold_out(train_set, pick(smoke=20, laptop=500, full=500), seed=0, after=1_000)


@dataclass(frozen=True, kw_only=True)
class FashionSupervised(Recipe):
    """Notebook 01's ``fashion_classifier`` trained end to end with its ``supervised_step``
    (cross-entropy, ``augment`` on every batch) on ``labels`` images of the training pool: the
    first ones in file order (as in the source), or, with ``balanced``, ``labels // 10`` of every
    class drawn with the recipe's seed. Adam with a cosine decay to 0, and the weights of the
    epoch with the best validation accuracy kept."""

    name = "fashion_supervised"
    notebook = "01_supervised_baseline"
    default_model = fashion_classifier
    default_step = supervised_step
    labels: int
    balanced: bool = False
    epochs: int
    batch_size: int
    lr: float = 1e-3
    augment: ViewAugment | None = FASHION_TRAIN_VIEWS

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.balanced and self.labels % 10:
            raise ValueError(f"balanced subsets take labels // 10 of every class: labels must be a multiple of 10, "
                             f"got {self.labels}")  # fmt: skip

    @classmethod
    def all_labels(cls) -> FashionSupervised:
        """Every label of the training pool (a 5,000-image slice in ``smoke``)."""
        return cls(labels=pick(smoke=5_000, laptop=55_000, full=55_000), epochs=pick(smoke=1, laptop=10, full=30),
                   batch_size=128)  # fmt: skip

    @classmethod
    def few_labels(cls) -> FashionSupervised:
        """The first 1,000 labels, the setting of the SimSiam article."""
        return cls(labels=1_000, epochs=pick(smoke=10, laptop=100, full=100), batch_size=64)

    @classmethod
    def per_class(cls, k: int, seed: int = 0) -> FashionSupervised:
        """``k`` labels of every class (a draw that changes with ``seed``): fewer labels get
        smaller batches and more epochs, so that every run takes enough steps."""
        batch_size = 20 if k < 10 else 32 if k < 100 else 64 if k < 1000 else 128
        epochs = 100 if k < 1000 else 30
        return cls(labels=10 * k, balanced=True, epochs=pick(smoke=5, laptop=epochs, full=2 * epochs),
                   batch_size=batch_size, seed=seed)  # fmt: skip

    @classmethod
    def sweep(cls) -> dict[int, list[FashionSupervised]]:
        """The label-efficiency runs of notebooks 01 and 02: 10, 100 and 1,000 labels per
        class, three seeds each (one count and one seed in ``smoke``)."""
        counts, seeds = pick(
            smoke=((10,), (0,)), laptop=((10, 100, 1000), (0, 1, 2)), full=((10, 100, 1000), (0, 1, 2))
        )
        return {k: [cls.per_class(k, seed) for seed in seeds] for k in counts}

    def build(self) -> Classifier:
        return self.model_class()

    def labelled(self, pool: ImageDataset) -> ImageDataset:
        """This recipe's labelled images, taken from the training pool of :func:`fashion_split`."""
        return per_class(pool, self.labels // 10, seed=self.seed) if self.balanced else first_k(pool, self.labels)

    def load_data(self) -> tuple[ImageDataset, ImageDataset]:
        pool, validation = fashion_split(load_dataset("fashion_mnist", "train"))
        return self.labelled(pool), validation

    def fit(self, model: nn.Module, data: tuple[ImageDataset, ImageDataset], validate=None) -> History:
        """``data`` is (labelled images, validation set)."""
        labelled, validation = data
        checks.setting_matches("labels", self.labels, labelled)
        return fit_classifier(
            model, labelled.images, labelled.targets, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
            recipe=self, step=self.training_step, validation=(validation.images, validation.targets),
            seed=self.seed, validate=validate, desc=f"{len(labelled):,} labels",
        )  # fmt: skip

    def cost(self) -> str:
        return f"{self.epochs} epochs over {self.labels:,} labelled images"
