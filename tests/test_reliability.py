"""Nothing silent, round two: bad input gets one clear line where it arrives, no trained model or
stored output is lost, and the command line never ends in a traceback."""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from test_course import write_notebook, write_result

from course_tools import course
from course_utils import results
from course_utils.checkpoints import load_checkpoint, save_checkpoint
from course_utils.data import ImageDataset, first_k, hold_out, per_class
from course_utils.embed import embed_2d
from course_utils.evaluate import knn_accuracy, linear_probe, scores, seed_spread, tuned_probe
from course_utils.explore import draw_temperature, scaled_views, softmax_over_candidates, temperature_explorer
from course_utils.methods.metric import all_triplets_loss, supervised_nt_xent
from course_utils.methods.rows import RowClassifier, SmallCNN, image_to_rows
from course_utils.methods.simclr import nt_xent
from course_utils.recipes import Recipe
from course_utils.recipes.fashion import FashionSupervised
from course_utils.recipes.metric import MetricRecipe
from course_utils.recipes.rows import CNNRecipe, RowRecipe
from course_utils.recipes.simclr import Encoder, SimCLRRecipe
from course_utils.recipes.simsiam import SimSiamRecipe
from course_utils.representations import knn_predict, variance_spectrum
from course_utils.runtime import REPO_ROOT
from course_utils.train import evaluate_loss

# ---------------------------------------------------------------- the checkpoint cache


@dataclass(frozen=True, kw_only=True)
class Summing(Recipe):
    """Trains in no time: its weight becomes the sum of the data times ``scale``."""

    name = "summing"
    notebook = "tests"
    scale: float = 1.0
    runs = []  # the data each training run saw

    def build(self) -> torch.nn.Module:
        return torch.nn.Linear(1, 1, bias=False)

    def load_data(self) -> torch.Tensor:
        return torch.ones(4)

    def fit(self, model, data, validate=None):
        Summing.runs.append(data.sum().item())
        with torch.no_grad():
            model.weight.fill_(data.sum().item() * self.scale)
        return {"loss": [0.5], **({"metric": [validate(model)]} if validate else {})}


@pytest.fixture
def summing():
    Summing.runs.clear()
    return Summing()


def test_the_cache_key_covers_the_data_handed_in(summing):
    a, b = torch.full((3,), 2.0), torch.full((3,), 5.0)
    assert summing.pretrained(data=a)[0].weight.item() == 6
    model, _ = summing.pretrained(data=b)  # used to print "Loaded ... same settings" and return A's weights
    assert model.weight.item() == 15 and Summing.runs == [6, 15]
    assert summing.pretrained()[0].weight.item() == 4, "without data, load_data() decides: B's weights are not it"
    assert summing.pretrained(data=torch.ones(4))[0].weight.item() == 4 and len(Summing.runs) == 3, (
        "data equal to load_data()'s reuses the checkpoint trained on load_data()"
    )
    summing.pretrained(data=torch.ones(2, 2))
    assert len(Summing.runs) == 4, "the same bytes in another shape are other data"


def test_a_checkpoint_trained_on_handed_in_data_is_reused_without_data_when_that_data_is_the_default(summing):
    summing.pretrained(data=torch.ones(4))
    assert summing.pretrained()[0].weight.item() == 4 and len(Summing.runs) == 1


def test_a_checkpoint_without_a_data_fingerprint_is_taken_as_trained_on_the_recipes_data(summing):
    model = summing.build()
    model.weight.data.fill_(7.0)
    save_checkpoint(summing.checkpoint_path(), model, summing.settings(), {"loss": [1.0]})  # as before this change
    assert summing.pretrained()[0].weight.item() == 7 and not Summing.runs


def test_metrics_a_monitor_logs_do_not_decide_whether_a_checkpoint_is_reused(summing):
    summing.pretrained()
    _, history = summing.pretrained(validate=lambda model: 1.0)
    assert len(Summing.runs) == 1 and "metric" not in history


def test_a_failed_save_returns_the_trained_model_and_says_where(summing, monkeypatch):
    def full_disk(record, f):
        f.write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.warns(RuntimeWarning, match=r"could not be saved to .*summing-.*\.pt .*No space left"):
        model, history = summing.pretrained(data=torch.full((2,), 3.0))
    assert model.weight.item() == 6 and history == {"loss": [0.5]}
    assert list(summing.checkpoint_path().parent.iterdir()) == [], "no checkpoint and no stray .tmp"


def test_a_history_that_cannot_be_stored_keeps_the_model(summing):
    with pytest.warns(RuntimeWarning, match="could not be saved"):
        model, history = summing.pretrained(validate=lambda model: "not a number")
    assert model.weight.item() == 4 and history["metric"] == ["not a number"]


def test_a_folder_where_the_checkpoint_goes_stops_before_training(summing, monkeypatch):
    summing.checkpoint_path().mkdir(parents=True)
    monkeypatch.setenv("COURSE_RETRAIN", "1")
    with pytest.raises(IsADirectoryError, match="a folder stands where the checkpoint .*summing-"):
        summing.pretrained()
    assert not Summing.runs and [p.name for p in summing.checkpoint_path().parent.iterdir()] == [
        summing.checkpoint_path().name
    ], "no stray .tmp"


# ---------------------------------------------------------------- recipe settings


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: SimSiamRecipe(images=-5, epochs=1), "images must be an int >= 1, got -5"),
        (lambda: SimSiamRecipe(images=True, epochs=1), "images must be an int, got True"),
        (lambda: SimSiamRecipe(images="5", epochs=1), "images must be an int, got '5'"),
        (lambda: SimSiamRecipe(images=100, epochs=2.0), "epochs must be an int, got 2.0"),
        (lambda: SimSiamRecipe(images=100, epochs=1, lr=float("nan")), "lr must be a finite number > 0"),
        (lambda: SimSiamRecipe(images=100, epochs=1, stop_gradient=1), "stop_gradient must be a bool"),
        (lambda: SimSiamRecipe(images=100, epochs=1, seed=-1), "seed must be an int >= 0"),
        (lambda: SimSiamRecipe(images=100, epochs=1, augment="crops"), "augment must be a ViewAugment"),
        (lambda: _simclr(warmup_steps=-5), "warmup_steps must be an int >= 0"),
        (lambda: _simclr(final_lr_fraction=-1.0), "final_lr_fraction must be a finite number >= 0 and <= 1"),
        (lambda: _simclr(final_lr_fraction=1.5), "final_lr_fraction must be a finite number >= 0 and <= 1"),
        (lambda: _simclr(temperature=0.0), "temperature must be a finite number >= 0.0001"),
        (lambda: _simclr(images=0), "images must be an int >= 1"),
        (lambda: Encoder(dataset="cifar10", image_size=32, width=8.0, imagenet_stem=False, stem_stride=2), "width"),
        (lambda: RowRecipe(patience=-1), "patience must be an int >= 0, got -1"),
        (lambda: RowRecipe(head=(64, 0)), r"head\[1\] must be an int >= 1"),
        (lambda: RowRecipe(dropout=1.5), "dropout must be a finite number >= 0 and <= 1"),
        (lambda: RowRecipe(train_size=2.5), "train_size must be an int"),
        (lambda: RowRecipe(layout="diagonal"), "layout 'diagonal' unknown"),
        (lambda: CNNRecipe(weight_decay=-1e-4), "weight_decay must be a finite number >= 0"),
        (lambda: FashionSupervised(labels=True, epochs=1, batch_size=1), "labels must be an int, got True"),
    ],
)
def test_recipe_settings_are_checked_when_the_recipe_is_made(build, message):
    with pytest.raises((TypeError, ValueError), match=message):
        build()


def _simclr(**changes) -> SimCLRRecipe:
    return SimCLRRecipe(**{**SimCLRRecipe.default("cifar10").__dict__, **changes})


def test_the_images_a_recipe_names_are_the_images_it_trains_on():
    recipe = SimSiamRecipe(images=10**7, epochs=1)  # used to train on all 55,000 under the name 10**7
    with pytest.raises(ValueError, match="hold 5 items but the recipe says images=10,000,000"):
        recipe.fit(recipe.build(), torch.zeros(5, 1, 28, 28, dtype=torch.uint8))
    labelled = ImageDataset(torch.zeros(20, 1, 4, 4, dtype=torch.uint8), torch.arange(20) % 10, list("abcdefghij"), "t")
    few = FashionSupervised(labels=30, epochs=1, batch_size=8)
    with pytest.raises(ValueError, match="hold 20 items but the recipe says labels=30"):
        few.fit(few.build(), (labelled, labelled))


# ---------------------------------------------------------------- notebook 05's models


@pytest.mark.parametrize("model", [RowClassifier(hidden_size=8, head=(4,)), SmallCNN(width=4)], ids=type)
def test_notebook_05_models_refuse_what_they_were_not_trained_on(model):
    images = torch.rand(2, 3, 32, 32)
    assert model.eval()(images).shape == (2, 10)
    with pytest.raises(TypeError, match="expects float images, got torch.uint8"):
        model((images * 255).to(torch.uint8))
    with pytest.raises(ValueError, match=r"values in \[0, 1\], got values in \[.*, 2.*\]"):
        model(images * 255)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\) images, got \(2, 1, 32, 32\)"):
        model(images[:, :1])
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\) images, got \(3, 32, 32\)"):
        model(images[0])


def test_row_inputs_of_the_wrong_shape_are_refused():
    model = RowClassifier(hidden_size=8, head=(4,))
    with pytest.raises(ValueError, match=r"rows must be \(N, T, 96\), got \(32, 96\)"):
        model.forward_rows(torch.rand(32, 96))  # an unbatched sequence used to pass as 32 steps of one image
    with pytest.raises(ValueError, match="non-empty batch of images"):
        image_to_rows(torch.zeros(0, 3, 32, 32))


def test_evaluate_loss_refuses_inputs_and_targets_of_different_lengths():
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="inputs has 20, targets has 10"):
        evaluate_loss(model, torch.rand(20, 2), torch.zeros(10, dtype=torch.long), batch_size=5)


# ---------------------------------------------------------------- numbers


def test_weighted_knn_votes_without_overflow_like_the_formula_in_float64():
    degrees = np.radians([0.0, 18.2])
    train = np.stack([np.cos(degrees), np.sin(degrees)], axis=1).astype(np.float32)
    labels = np.array([1, 0])  # the nearest point has the higher label: a NaN vote would pick 0
    test = np.array([[1.0, 0.0]], dtype=np.float32)
    for tau in (0.005, 0.07):  # exp(1 / 0.005) = e^200 overflows float32 (the features' type), not float64
        votes = [np.exp(np.cos(degrees)[labels == c] / tau).sum() for c in (0, 1)]  # the formula, float64
        assert knn_predict(train, labels, test, k=2, temperature=tau).tolist() == [int(np.argmax(votes))] == [1]
    # tau = 0.001 overflows float64 too; by hand, class 1 outvotes class 0 by exp((1 - cos 18.2°) / tau) = e^50
    assert knn_predict(train, labels, test, k=2, temperature=0.001).tolist() == [1]
    # a farther but more numerous class wins when tau is large enough, as the formula says
    train3 = np.vstack([train, train[1:]])
    assert knn_predict(train3, np.array([1, 0, 0]), test, k=3, temperature=1.0).tolist() == [0]


def test_contrastive_losses_keep_float64():
    z = torch.randn(6, 4, dtype=torch.float64)
    assert nt_xent(z[:3], z[3:], 0.5).dtype == torch.float64
    assert supervised_nt_xent(z, torch.tensor([0, 0, 1, 1, 2, 2]), 0.5).dtype == torch.float64
    assert nt_xent(z[:3].float(), z[3:].float(), 0.5).dtype == torch.float32
    assert nt_xent(z[:3].bfloat16(), z[3:].bfloat16(), 0.5).dtype == torch.float32


@pytest.mark.parametrize("tau", [0.0, math.inf, 1e-40, math.nan, -1.0, True, "0.1"])
def test_temperatures_that_would_give_nan_or_inf_are_refused(tau):
    z, labels = torch.randn(4, 3), torch.tensor([0, 0, 1, 1])
    for call in (
        lambda: dataclasses.replace(SimCLRRecipe.default("cifar10"), temperature=tau),  # nt_xent's, at the boundary
        lambda: MetricRecipe.default(objective="nt_xent", temperature=tau),  # supervised_nt_xent's temperature
        lambda: knn_predict(z, labels, z, k=2, temperature=tau),
        lambda: softmax_over_candidates(torch.tensor([0.9, 0.1]), tau),
    ):
        with pytest.raises((TypeError, ValueError), match="temperature must be a"):
            call()


def test_margins_must_be_finite_and_positive():
    for objective in ["pairs", "triplets", "triplets_hard"]:  # the recipe hands its margin to the loss
        with pytest.raises(ValueError, match="margin must be a finite number > 0, got inf"):
            MetricRecipe.default(objective=objective, margin=math.inf)


def test_constant_features_and_nan_runs_are_named_not_nan():
    with pytest.raises(ValueError, match=r"rows are not all the same \(collapsed\)"):
        variance_spectrum(np.ones((10, 3)))  # used to return NaNs
    with pytest.raises(ValueError, match="finite numbers, one per seed"):
        seed_spread([0.8, float("nan")])
    with pytest.raises(ValueError, match="finite numbers, one per seed"):
        seed_spread(["0.8"])
    assert seed_spread([1.0, 3.0]) == {"mean": 2.0, "std": math.sqrt(2.0), "runs": 2}


# ---------------------------------------------------------------- the functions a student calls


@pytest.fixture
def dataset() -> ImageDataset:
    return ImageDataset(torch.zeros(30, 1, 2, 2, dtype=torch.uint8), torch.arange(30) % 3, ["a", "b", "c"], "test")


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda ds: first_k(ds, True), TypeError, "k .* must be an int, got True"),  # used to take 1
        (lambda ds: first_k(ds, 2.5), TypeError, "must be an int, got 2.5"),
        (lambda ds: first_k(ds, 31), ValueError, "<= 30, got 31"),
        (lambda ds: per_class(ds, 0), ValueError, r"k \(items per class\) must be an int >= 1, got 0"),
        (lambda ds: per_class(ds, "2"), TypeError, "must be an int, got '2'"),
        (lambda ds: per_class(ds, 2, seed=1.5), TypeError, "seed must be an int, got 1.5"),
        (lambda ds: per_class(ds, 2, seed=-3), ValueError, "seed must be an int >= 0"),
        (lambda ds: hold_out(ds, 2, after=2.0), TypeError, "after must be an int"),
    ],
)
def test_counts_and_seeds_of_the_data_helpers(dataset, call, error, message):
    with pytest.raises(error, match=message):
        call(dataset)


def test_probes_refuse_mismatched_lengths_one_class_and_unlabelled_targets():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 3)), np.arange(12) % 2
    with pytest.raises(ValueError, match=r"train labels must be 12 integer labels"):
        linear_probe(x, y[:11], x, y)
    with pytest.raises(ValueError, match="train labels holds 1 class"):
        linear_probe(x, np.zeros(12, int), x, y)
    with pytest.raises(ValueError, match="test labels must be 12"):
        linear_probe(x, y, x, y[:5])
    with pytest.raises(ValueError, match=r"'C' parameter of LogisticRegression must be a float in the range \(0.0"):
        linear_probe(x, y, x, y, C=0)
    with pytest.raises(ValueError, match="train labels holds 1 class"):
        tuned_probe((x, np.ones(12, int)), (x, y))
    with pytest.raises(ValueError, match="validation labels must be 12"):
        tuned_probe((x, y), (x, y[:3]))
    with pytest.raises(ValueError, match=r"holds -1: .*-1 marks an unlabeled image"):
        tuned_probe((x, y - 1), (x, y))
    with pytest.raises(ValueError, match="test_y must be 12"):
        knn_accuracy(x, y, x, y[:4], k=3)
    with pytest.raises(ValueError, match="'n_neighbors' parameter of KNeighborsClassifier must be an int .* Got 2.5"):
        knn_accuracy(x, y, x, y, k=2.5)


def test_scores_and_ranks_refuse_what_does_not_pair_up():
    with pytest.raises(ValueError, match="y_pred must be 4 integer labels"):
        scores(np.arange(4), np.arange(3))
    with pytest.raises(ValueError, match="y_true must be integer labels"):
        scores(np.array([0.5, 1.0]), np.array([0, 1]))
    with pytest.raises(ValueError, match="y_true must be integer labels"):
        scores(np.array([], dtype=int), np.array([], dtype=int))
    # simclr_step computes the loss before the ranks it logs: nt_xent refuses what the ranks cannot use
    with pytest.raises(ValueError, match=r"negatives\), got \(4, 3\) and \(3, 3\)"):
        nt_xent(torch.rand(4, 3), torch.rand(3, 3))
    with pytest.raises(ValueError, match="same N >= 2"):
        nt_xent(torch.rand(0, 3), torch.rand(0, 3))  # the ranks used to return NaNs


def test_losses_name_the_real_problem():
    with pytest.raises(ValueError, match="found no triplet: the batch needs 2 images of one class"):
        all_triplets_loss(torch.rand(4, 3), torch.tensor([0, 1, 2, 3]), 0.5)  # used to say "empty batch"


@pytest.mark.parametrize(
    ("features", "method", "message"),
    [
        (np.full((10, 3), np.nan), "pca", "Input X contains NaN"),  # scikit-learn's check
        (np.ones((1, 3)), "pca", r"rows are not all the same \(collapsed\), got \(1, 3\)"),
        (np.ones((10, 3)), "tsne", r"rows are not all the same \(collapsed\)"),  # t-SNE used to crash the kernel
        (
            np.random.default_rng(0).normal(size=(10, 1)),
            "pca",
            r"n_components=2 must be between 0 and min\(n_samples, n_features\)=1",
        ),
        (np.random.default_rng(0).normal(size=(10, 3)), "umap", "more than 15 points"),
    ],
)
def test_embed_2d_refuses_what_it_cannot_map(features, method, message):
    with pytest.raises(ValueError, match=message):
        embed_2d(features, method, perplexity=5)


def test_explorer_values_are_checked_before_any_widget_is_drawn():
    with pytest.raises(ValueError, match="strength must be a finite number"):
        scaled_views(SimSiamRecipe.default().augment, float("nan"))
    with pytest.raises(ValueError, match="at least one temperature"):
        draw_temperature(torch.tensor([0.9, 0.1]), [])
    with pytest.raises(ValueError, match="at least 2 similarities"):
        temperature_explorer(torch.tensor([[0.9, 0.1]]))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"metrics": [0.5]}, "metrics must be a dict"),
        ({"sources": "fashion_mnist"}, "sources must be a list of strings"),
        ({"wall_seconds": float("nan")}, "wall_seconds must be a finite number"),
        ({"wall_seconds": -3}, "wall_seconds must be a finite number >= 0"),
        ({"config": "lr=1"}, "config must be a dict"),
    ],
)
def test_results_save_refuses_values_the_table_cannot_read(changes, message):
    arguments = {"metrics": {"f1": 0.5}, "sources": ["x"], "wall_seconds": 3.0, **changes}
    with pytest.raises((TypeError, ValueError), match=message):
        results.save("01_demo", **arguments)


# ---------------------------------------------------------------- the command line


def test_run_never_writes_over_the_notebook_it_runs(isolated, capsys):
    path = write_notebook(isolated / "nbs" / "01_demo.ipynb", "raise ValueError('stop')")
    before = path.read_bytes()
    assert course.main(["run", str(path), "--output", str(path.parent), "--profile", "smoke"]) == 1
    assert "holds the notebook 01_demo.ipynb itself" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_relative_folders_reach_the_kernels_as_absolute_paths(isolated, monkeypatch):
    seen = {}
    monkeypatch.chdir(isolated)
    monkeypatch.setenv("COURSE_CHECKPOINT_DIR", "my-checkpoints")
    monkeypatch.setattr(course, "execute", lambda path, target: seen.update(os.environ) or course.Outcome())
    course.run([str(write_notebook(isolated / "nbs" / "01_demo.ipynb", "1"))], "smoke", isolated / "out", False)
    assert seen["COURSE_CHECKPOINT_DIR"] == str(isolated / "my-checkpoints")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"hardware": {"cpu": "x"}}, "hardware not in the form"),
        ({"hardware": 4}, "hardware not in the form"),
        ({"datasets": "fashion"}, "datasets not in the form"),
        ({"nulls": ["metrics.x"]}, "nulls not in the form"),
        ({"finished": 20261207}, "finished not in the form"),
    ],
)
def test_table_names_a_results_file_of_an_unexpected_form(isolated, capsys, fields, message):
    write_result(isolated / "results", "01_demo", **fields)
    (isolated / "README.md").write_text(f"{course.BEGIN}\nold table\n{course.END}\n")
    with pytest.raises(course.CourseError, match=f"01_demo.json: {message}"):
        course.table(check=False, folder=isolated / "results", page=isolated / "README.md")
    assert "old table" in (isolated / "README.md").read_text()


def test_table_refuses_a_missing_results_folder_and_folders_in_place_of_files(isolated, capsys):
    readme = isolated / "README.md"
    readme.write_text(f"{course.BEGIN}\nold table\n{course.END}\n")
    with pytest.raises(course.CourseError, match="results folder .*resluts does not exist"):
        course.table(check=False, folder=isolated / "resluts", page=readme)  # used to write "No results"
    assert "old table" in readme.read_text()
    (isolated / "results" / "01_demo.json").mkdir(parents=True)
    with pytest.raises(course.CourseError, match="cannot read the results file .*01_demo.json"):
        course.table(check=False, folder=isolated / "results", page=readme)
    (isolated / "results" / "01_demo.json").rmdir()
    (isolated / "folder-readme").mkdir()
    with pytest.raises(course.CourseError, match="cannot read .*folder-readme"):
        course.table(check=False, folder=isolated / "results", page=isolated / "folder-readme")


def test_the_table_command_exits_1_without_a_traceback_on_a_misspelt_results_folder(isolated):
    env = {**os.environ, "COURSE_RESULTS_DIR": str(isolated / "resluts"), "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-m", "course_tools", "table", "--check"], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr and "does not exist" in done.stderr


def test_status_marks_an_empty_checkpoint_as_damaged(isolated, capsys):
    folder = isolated / "nbs"
    write_notebook(folder / "01_base.ipynb", "1")
    cpu = isolated / "checkpoints" / "cpu"
    cpu.mkdir(parents=True)
    (cpu / "fashion_supervised-000000000000.pt").write_bytes(b"")
    save_checkpoint(cpu / "fashion_supervised-111111111111.pt", torch.nn.Linear(1, 1), {}, {})
    assert load_checkpoint(cpu / "fashion_supervised-111111111111.pt")
    course.status(folder)
    assert (
        "  checkpoints: laptop (in cpu/): DAMAGED fashion_supervised-000000000000.pt, "
        "fashion_supervised-111111111111.pt" in capsys.readouterr().out.splitlines()
    )


def test_status_names_folders_that_are_files_or_missing(isolated, monkeypatch, capsys):
    (isolated / "a-file").write_text("x")
    monkeypatch.setenv("COURSE_CHECKPOINT_DIR", str(isolated / "a-file"))
    with pytest.raises(course.CourseError, match="a-file is a file, not a folder; check COURSE_CHECKPOINT_DIR"):
        course.status(isolated)  # used to list "none" everywhere
    monkeypatch.setenv("COURSE_CHECKPOINT_DIR", str(isolated / "chekpoints"))
    course.status(isolated)
    assert "chekpoints does not exist (check COURSE_CHECKPOINT_DIR)" in capsys.readouterr().out


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_run_says_so_and_exits_130(isolated, signum):
    marker = isolated / "sleeping"
    path = write_notebook(isolated / "nbs" / "01_wait.ipynb", f"open({str(marker)!r}, 'w').close()\nimport time\n"
                          "time.sleep(60)")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "course_tools", "run", str(path), "--output", str(isolated / "out")]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 90
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err[-2000:]
    assert f"interrupted ({signum.name})" in err and "Traceback" not in err and "FAIL" not in err, err[-2000:]
