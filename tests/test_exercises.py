"""The notebooks' exercises (nbgrader cells): every check passes on the solution, fails on the
stub a student starts from, and fails on planted wrong answers, with a message saying what was
expected. Each exercise runs as a student's would: the notebook's import cell, then the solution
(or a wrong answer) and the test cell, visible checks and hidden tests alike, in a fresh namespace."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import nbformat
import pytest
import torch

from course_utils.exercises import check_balanced_subset, check_positive_rank, expect_close
from course_utils.runtime import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("0[1-6]_*.ipynb"))
SOLUTION = re.compile(r"^([ \t]*)### BEGIN SOLUTION\n.*?^[ \t]*### END SOLUTION[ \t]*$", re.M | re.S)
STUB = r"\1# YOUR CODE HERE\n\1raise NotImplementedError()"  # what nbgrader generate_assignment writes


@dataclass(frozen=True)
class Exercise:
    notebook: Path
    imports: str  # the notebook's first code cell and the exported cells above the exercise
    solution: str
    test: str
    points: float


@cache
def exercises() -> dict[str, Exercise]:
    """grade id of the solution cell -> the exercise, for every notebook."""
    found = {}
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        imports = next(cell.source for cell in cells if cell.cell_type == "code")
        for index, cell in enumerate(cells):
            grading = cell.metadata.get("nbgrader", {})
            if grading.get("solution") and cell.cell_type == "code":
                test = cells[index + 1]
                points = test.metadata["nbgrader"]["points"]
                found[grading["grade_id"]] = Exercise(path, imports, cell.source, test.source, points)
            elif cell.cell_type == "code" and cell.source.startswith("#| export"):
                imports += "\n" + cell.source  # the method's definitions above the exercise
    return found


def run_exercise(exercise: Exercise, solution: str) -> None:
    """The import cell, ``solution`` and the test cell in one fresh namespace, as in a new kernel."""
    namespace: dict = {"__name__": "__exercise__"}
    for name, source in [("imports", exercise.imports), ("solution", solution), ("test", exercise.test)]:
        exec(compile(source, f"<{exercise.notebook.stem} {name}>", "exec"), namespace)


def replace_body(solution: str, body: str | tuple[str, ...]) -> str:
    """The solution cell with the code between its markers replaced by ``body`` (indented to match);
    a cell with several solution regions (one per function) takes a tuple of bodies, one per region."""
    bodies = iter([body] if isinstance(body, str) else body)

    def replaced(region: re.Match) -> str:
        return "\n".join(region.group(1) + line if line else line for line in next(bodies).splitlines())

    return SOLUTION.sub(replaced, solution)


def test_every_notebook_has_two_graded_exercises_after_a_task():
    ids = exercises()
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        mine = [grade for grade, exercise in ids.items() if exercise.notebook == path]
        assert len(mine) >= 2, f"{path.name}: {len(mine)} exercises"
        for index, cell in enumerate(cells):
            grading = cell.metadata.get("nbgrader", {})
            if grading.get("solution") and cell.cell_type == "code":
                assert cells[index - 1].cell_type == "markdown" and "Exercise" in cells[index - 1].source
                assert SOLUTION.search(cell.source), f"{path.name} {grading['grade_id']}: no solution markers"
                test = cells[index + 1]
                meta = test.metadata["nbgrader"]
                assert meta["grade"] and meta["locked"] and not meta["solution"] and meta["points"] > 0
                visible, hidden = test.source.split("### BEGIN HIDDEN TESTS\n")
                assert "from course_utils.exercises import check_" in visible
                assert hidden.rstrip().endswith("### END HIDDEN TESTS")
    all_ids = [cell.metadata["nbgrader"]["grade_id"] for path in NOTEBOOKS for cell in nbformat.read(path, 4).cells
               if "nbgrader" in cell.metadata]  # fmt: skip
    assert len(all_ids) == len(set(all_ids)) == 2 * len(ids) + len(written_questions())


def written_questions() -> dict[str, tuple[Path, str, str]]:
    """grade id -> (notebook, question text, answer cell source) of every manually graded written answer."""
    found = {}
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        for index, cell in enumerate(cells):
            if cell.cell_type == "markdown" and cell.metadata.get("nbgrader", {}).get("solution"):
                found[cell.metadata["nbgrader"]["grade_id"]] = (path, cells[index - 1].source, cell.source)
    return found


def test_every_notebook_has_a_written_question_with_points_and_a_mark_scheme():
    questions = written_questions()
    for path in NOTEBOOKS:
        mine = [grade for grade, (notebook, _, _) in questions.items() if notebook == path]
        assert len(mine) >= 1, f"{path.name}: no written question"
        cells = nbformat.read(path, as_version=4).cells
        for index, cell in enumerate(cells):
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type != "markdown" or not meta.get("solution"):
                continue
            grade_id = meta["grade_id"]
            assert re.fullmatch(rf"{path.name[:2]}-written-[a-z0-9-]+", grade_id), grade_id
            assert meta["grade"] and not meta["locked"] and meta["points"] > 0 and not meta.get("task")
            question = cells[index - 1]
            assert question.cell_type == "markdown" and "nbgrader" not in question.metadata
            assert f"({meta['points']} points)" in question.source.splitlines()[0]
            assert cell.source.startswith("### BEGIN SOLUTION\n**Mark scheme") and cell.source.endswith(
                "### END SOLUTION"
            ), f"{grade_id}: the whole answer cell must be the mark scheme, between the solution markers"
            parts = re.findall(r"^\d\. ", question.source, re.M)
            scored = re.findall(r"^- \*\*(\d) points? \(\d\):\*\*", cell.source, re.M)
            assert len(parts) == len(scored) and sum(map(int, scored)) == meta["points"], grade_id


@pytest.mark.parametrize("grade_id", sorted(exercises()))
def test_the_solution_passes_every_check(grade_id):
    run_exercise(exercises()[grade_id], exercises()[grade_id].solution)


@pytest.mark.parametrize("grade_id", sorted(exercises()))
def test_the_students_stub_fails_and_says_it_is_not_written(grade_id):
    exercise = exercises()[grade_id]
    stub = SOLUTION.sub(STUB, exercise.solution)
    assert "raise NotImplementedError()" in stub and "BEGIN SOLUTION" not in stub
    with pytest.raises(AssertionError, match="not written yet: replace `raise NotImplementedError"):
        run_exercise(exercise, stub)


# (grade id, what is wrong, the body of the wrong answer)
PLANTED = [
    ("01-balanced-subset", "the first k of every class (seed ignored)",
     "return torch.cat([torch.nonzero(labels == c).flatten()[:k] for c in labels.unique()]).sort().values"),
    ("01-balanced-subset", "the global random state instead of its own generator",
     "picks = [torch.nonzero(labels == c).flatten() for c in labels.unique()]\n"
     "return torch.cat([m[torch.randperm(len(m))[:k]] for m in picks]).sort().values"),
    ("01-balanced-subset", "k items in all instead of k per class",
     "return torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:k].sort().values"),
    ("01-balanced-subset", "no ValueError when a class has fewer than k items (sampled with replacement)",
     "g = torch.Generator().manual_seed(seed)\n"
     "picks = [torch.nonzero(labels == c).flatten() for c in labels.unique()]\n"
     "chosen = [m[torch.randint(len(m), (k,), generator=g)] for m in picks]\n"
     "return torch.cat(chosen).sort().values"),
    ("01-macro-f1", "micro F1 (the accuracy)", "return (y_true == y_pred).double().mean().item()"),
    ("01-macro-f1", "the mean of precision and recall instead of their harmonic mean",
     "c = torch.arange(num_classes)[:, None]\n"
     "t, p = y_true[None] == c, y_pred[None] == c\n"
     "tp = (t & p).sum(1).double()\n"
     "precision, recall = tp / p.sum(1).clamp(min=1), tp / t.sum(1).clamp(min=1)\n"
     "return ((precision + recall) / 2).mean().item()"),
    ("01-macro-f1", "absent classes left out of the mean instead of counted as 0",
     "c = torch.arange(num_classes)[:, None]\n"
     "t, p = y_true[None] == c, y_pred[None] == c\n"
     "tp, fp, fn = (t & p).sum(1), (~t & p).sum(1), (t & ~p).sum(1)\n"
     "present = (2 * tp + fp + fn) > 0\n"
     "return (2 * tp / (2 * tp + fp + fn))[present].double().mean().item()"),
    ("02-simsiam-loss", "missing stop-gradient (no detach)",
     "cos = torch.nn.functional.cosine_similarity\n"
     "return -0.5 * cos(p1, z2, dim=1).mean() - 0.5 * cos(p2, z1, dim=1).mean()"),
    ("02-simsiam-loss", "one direction only, not symmetric",
     "return -torch.nn.functional.cosine_similarity(p1, z2.detach(), dim=1).mean()"),
    ("02-simsiam-loss", "each prediction against its own view's projection",
     "cos = torch.nn.functional.cosine_similarity\n"
     "return -0.5 * cos(p1, z1.detach(), dim=1).mean() - 0.5 * cos(p2, z2.detach(), dim=1).mean()"),
    ("02-simsiam-loss", "dot products without normalising",
     "return -0.5 * (p1 * z2.detach()).sum(1).mean() - 0.5 * (p2 * z1.detach()).sum(1).mean()"),
    ("02-collapse-monitor", "features not normalised", "return z.std(dim=0).mean().item()"),
    ("02-collapse-monitor", "columns normalised instead of rows",
     "return (z / z.norm(dim=0, keepdim=True)).std(dim=0).mean().item()"),
    ("02-collapse-monitor", "std over the dimensions instead of over the batch",
     "return (z / z.norm(dim=1, keepdim=True)).std(dim=1).mean().item()"),
    ("03-nt-xent-logits", "unmasked diagonal",
     "n = len(z1)\nz = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)\n"
     "return z @ z.T / temperature, torch.cat([torch.arange(n, 2 * n), torch.arange(n)])"),
    ("03-nt-xent-logits", "wrong positive index (each view its own positive)",
     "n = len(z1)\nz = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)\n"
     "return (z @ z.T / temperature).fill_diagonal_(float('-inf')), torch.arange(2 * n)"),
    ("03-nt-xent-logits", "wrong positive index (i + N for every view, past the end)",
     "n = len(z1)\nz = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)\n"
     "return (z @ z.T / temperature).fill_diagonal_(float('-inf')), torch.arange(n, 3 * n)"),
    ("03-nt-xent-logits", "not normalised (dot products, not cosines)",
     "n = len(z1)\nz = torch.cat([z1, z2])\n"
     "logits = (z @ z.T / temperature).fill_diagonal_(float('-inf'))\n"
     "return logits, torch.cat([torch.arange(n, 2 * n), torch.arange(n)])"),
    ("03-nt-xent-logits", "temperature left out",
     "n = len(z1)\nz = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)\n"
     "return (z @ z.T).fill_diagonal_(float('-inf')), torch.cat([torch.arange(n, 2 * n), torch.arange(n)])"),
    ("03-positive-rank", "off-by-one rank (0 = best)",
     "n = len(z1)\nz = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)\n"
     "s = (z @ z.T).fill_diagonal_(float('-inf'))\n"
     "pos = s[torch.arange(2 * n), torch.cat([torch.arange(n, 2 * n), torch.arange(n)])]\n"
     "return (s > pos[:, None]).sum(1)"),
    ("03-positive-rank", "the view itself counted as a candidate",
     "n = len(z1)\nz = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)\n"
     "s = z @ z.T\n"
     "pos = s[torch.arange(2 * n), torch.cat([torch.arange(n, 2 * n), torch.arange(n)])]\n"
     "return 1 + (s > pos[:, None]).sum(1)"),
    ("03-positive-rank", "ties and the positive itself counted against it (>= instead of >)",
     "n = len(z1)\nz = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)\n"
     "s = (z @ z.T).fill_diagonal_(float('-inf'))\n"
     "pos = s[torch.arange(2 * n), torch.cat([torch.arange(n, 2 * n), torch.arange(n)])]\n"
     "return 1 + (s >= pos[:, None]).sum(1)"),
    ("04-pair-masks", "diagonal included (each item paired with itself)",
     "same = labels[:, None] == labels[None, :]\nupper = torch.ones_like(same).triu(0)\n"
     "return same & upper, ~same & upper"),
    ("04-pair-masks", "both triangles (every pair twice)",
     "same = labels[:, None] == labels[None, :]\noff = ~torch.eye(len(labels), dtype=torch.bool)\n"
     "return same & off, ~same"),
    ("04-pair-masks", "positive and negative swapped",
     "same = labels[:, None] == labels[None, :]\nupper = torch.ones_like(same).triu(1)\n"
     "return ~same & upper, same & upper"),
    ("04-batch-hard", "closest positive instead of the farthest",
     "same = labels[:, None] == labels[None, :]\npos = same & ~torch.eye(len(labels), dtype=torch.bool)\n"
     "return distances.masked_fill(~pos, float('inf')).amin(1), distances.masked_fill(same, float('inf')).amin(1)"),
    ("04-batch-hard", "the anchor counted as its own negative",
     "same = labels[:, None] == labels[None, :]\npos = same & ~torch.eye(len(labels), dtype=torch.bool)\n"
     "return distances.masked_fill(~pos, float('-inf')).amax(1), distances.masked_fill(pos, float('inf')).amin(1)"),
    ("04-batch-hard", "farthest negative instead of the closest",
     "same = labels[:, None] == labels[None, :]\npos = same & ~torch.eye(len(labels), dtype=torch.bool)\n"
     "return distances.masked_fill(~pos, float('-inf')).amax(1), distances.masked_fill(same, float('-inf')).amax(1)"),
    ("05-rows", "rows in planar layout",
     "n, c, h, w = images.shape\nreturn images.permute(0, 2, 1, 3).reshape(n, h, c * w)"),
    ("05-rows", "reshape without permute", "n, c, h, w = images.shape\nreturn images.reshape(n, h, c * w)"),
    ("05-rows", "columns instead of rows",
     "n, c, h, w = images.shape\nreturn images.permute(0, 3, 2, 1).reshape(n, w, h * c)"),
    ("05-rnn-step", "tanh missing", "return x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh"),
    ("05-rnn-step", "previous state ignored", "return torch.tanh(x @ weight_ih.T + bias_ih + bias_hh)"),
    ("05-rnn-step", "weights not transposed",
     "return torch.tanh(x @ weight_ih + bias_ih + h @ weight_hh + bias_hh)"),
    ("05-rnn-step", "sigmoid instead of tanh",
     "return torch.sigmoid(x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh)"),
    ("06-rankme", "squared singular values (the eigenvalues of z^T z)",
     "s = torch.linalg.svdvals(z.double()) ** 2\np = s / s.sum() + eps\nreturn torch.exp(-(p * p.log()).sum()).item()"),
    ("06-rankme", "the entropy, without exp",
     "s = torch.linalg.svdvals(z.double())\np = s / s.sum() + eps\nreturn (-(p * p.log()).sum()).item()"),
    ("06-rankme", "centred features (the PCA spectrum)",
     "s = torch.linalg.svdvals(z.double() - z.double().mean(0))\np = s / s.sum() + eps\n"
     "return torch.exp(-(p * p.log()).sum()).item()"),
    ("06-alignment-uniformity", "features not normalised",
     ("return (z1 - z2).norm(dim=1).pow(2).mean().item()",
      "e = -t * torch.pdist(z).pow(2)\nreturn (torch.logsumexp(e, 0) - math.log(len(e))).item()")),
    ("06-alignment-uniformity", "uniformity with the diagonal (i = j) included",
     ("return (F.normalize(z1, dim=1) - F.normalize(z2, dim=1)).norm(dim=1).pow(2).mean().item()",
      "f = F.normalize(z, dim=1)\nreturn torch.exp(-t * torch.cdist(f, f).pow(2)).mean().log().item()")),
    ("06-alignment-uniformity", "alignment with the distance not squared",
     ("return (F.normalize(z1, dim=1) - F.normalize(z2, dim=1)).norm(dim=1).mean().item()",
      "e = -t * torch.pdist(F.normalize(z, dim=1)).pow(2)\nreturn (torch.logsumexp(e, 0) - math.log(len(e))).item()")),
]  # fmt: skip


def test_every_exercise_has_a_planted_wrong_answer():
    assert set(exercises()) == {grade_id for grade_id, _, _ in PLANTED}


@pytest.mark.parametrize(("grade_id", "wrong", "body"), PLANTED, ids=[f"{g}: {w}" for g, w, _ in PLANTED])
def test_a_planted_wrong_answer_fails_with_what_was_expected(grade_id, wrong, body):
    exercise = exercises()[grade_id]
    # a wrong value says what was expected; a crash names the arguments it was called with
    with pytest.raises(AssertionError, match=r"expected|\(tensor of shape .*\) raised") as failure:
        run_exercise(exercise, replace_body(exercise.solution, body))
    assert "not written yet" not in str(failure.value), f"{wrong}: the planted answer did not run"


# ---------------------------------------------------------------- the messages themselves


def test_a_stub_is_reported_as_not_written_yet():
    def balanced_subset(labels, k, seed):
        raise NotImplementedError()

    with pytest.raises(AssertionError) as failure:
        check_balanced_subset(balanced_subset)
    assert str(failure.value) == (
        "balanced_subset is not written yet: replace `raise NotImplementedError()` with your code"
    )


def test_a_wrong_entry_is_named_with_its_expected_and_actual_value():
    with pytest.raises(AssertionError) as failure:
        expect_close(torch.tensor([[1.0, 2.0], [3.0, 5.0]]), torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "logits")
    assert str(failure.value) == "logits: entry (1, 1) expected 4, got 5 (1 of 4 entries differ)"
    with pytest.raises(AssertionError, match=r"logits: expected shape \(2, 2\), got \(4,\)"):
        expect_close(torch.zeros(4), torch.zeros(2, 2), "logits")


def test_a_crash_in_the_students_code_is_reported_with_its_error():
    def positive_rank(z1, z2):
        return z1 @ z2  # (2, 2) @ (2, 2) works; the shape check complains

    with pytest.raises(AssertionError, match=r"positive_rank on the hand-worked 2-image batch: expected shape \(4,\)"):
        check_positive_rank(positive_rank)

    def broken(z1, z2):
        return z1 @ torch.ones(3)

    with pytest.raises(AssertionError, match=r"broken\(tensor of shape \(2, 2\), float32, .*\) raised RuntimeError"):
        check_positive_rank(broken)
