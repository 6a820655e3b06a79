"""`autograder report` and `autograder export` on a really graded class."""

import base64
import csv
import json
import re
import shutil

import pytest

from autograder import assignment, autograde, cli, export, report
from autograder.course import COURSE
from assignments.notebook10 import NOTEBOOK
from tests.conftest import ITEM_CELLS
from tests.conftest import EXPECTED, copy_course, make_class
from tests.test_notebook import SEED_SITES

ITEMS = list(ITEM_CELLS)
POINTS = {"residual_block_shapes": 3, "shortcut_projection": 3, "resnet18_adaptation": 2, "device_placement": 2}
RELEASE = "release"  # the blank student version, as handed out
CLASS = {
    "ada": "correct/correct_solution_as_released_success_score_full.ipynb",
    "ben": "bugs/bug_no_padding_score_partial.ipynb",
    "cy": "bugs/bug_bn1_on_in_channels_score_partial.ipynb",
    "dee": "bugs/bug_no_final_relu_score_partial.ipynb",
    "eve": RELEASE,
    "fay": "bugs/bug_fc_one_output_score_partial.ipynb",
    "gus": "bugs/bug_batch_not_moved_to_device_score_partial.ipynb",
    "hal": "hostile/hostile_json_not_a_notebook_score_zero.ipynb",
    "ivy": "bugs/bug_shortcut_conv_3x3_score_partial.ipynb",
    "jo": "correct/correct_torch_relu_success_score_full.ipynb",
}
# What each blank site counts in this class, (right, wrong), worked out from the submissions:
# ben's conv1 has no padding, cy's bn1 takes in_channels, dee has no final ReLU, fay's fc has one
# output, gus never moves the batch, ivy's projection is 3x3. eve (the blank release, every check
# raises) and hal (not a notebook) tell nothing. A main-path message names only the first wrong
# layer, so ben tells nothing about bn1/conv2 and cy nothing about conv1/conv2. A block that raises
# hides its wiring (ben, cy, ivy: the wiring checks do not charge a main-path mistake, so their pass
# says nothing) and their output_tensor_2 (never made, so neither its stride nor its print can be
# told); dee's "must end with a ReLU" shows the shortcut was added; fay's wrong output shape shows
# the images shape was right.
SITE_COUNTS = {
    "import torch.nn.functional as F": (0, 0),
    "conv1: kernel_size, stride, padding": (6, 1),
    "bn1 = BatchNorm2d(out_channels)": (6, 1),
    "conv2: in and out channels": (6, 0),
    "projection kernel_size=1": (7, 1),
    "out += self.shortcut(x)": (5, 0),
    "the final F.relu(out)": (4, 1),
    "block_change_dim stride=2": (5, 0),
    "print(output_tensor_2.shape)": (5, 0),
    "ResNet conv1: 1 input channel": (8, 0),
    "fc: 2 outputs": (7, 1),
    "DataLoader batch_size=4": (8, 0),
    "images = images.to(device)": (7, 1),
}


def expected_items(student):
    case = CLASS[student]
    if case == RELEASE:
        return dict.fromkeys(ITEMS, 0.0)
    return EXPECTED[case]["expect"]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = make_class(tmp_path_factory.mktemp("course"),
                        {s: COURSE.release() / NOTEBOOK if c == RELEASE else c for s, c in CLASS.items()})
    autograde.main(assignment="notebook10", course=course, workers=2)
    return course


@pytest.fixture(scope="module")
def written(graded, tmp_path_factory):
    return report.main(assignment="notebook10", course=graded, out=tmp_path_factory.mktemp("report") / "nb10")


def read_csv(path):
    with path.open(newline="") as f:
        return list(csv.reader(f))


# --- fast: the pieces, without grading -----------------------------------------------------


def test_the_blank_site_map_covers_exactly_the_release_s_thirteen_sites():
    assert [(s.cell, s.answers) for s in report.sites_of("notebook10")] == SEED_SITES
    assert report.sites_match_source(COURSE, "notebook10") is None


def test_normalising_drops_the_student_s_line_and_exception_text_but_keeps_the_mistake():
    shapes = ("ResidualBlock(64, 64, stride=1) on a (4, 64, 32, 32) batch raised RuntimeError: The size of tensor a "
              "(30) must match the size of tensor b (32) at non-singleton dimension 3 (line 34 of your cell: "
              "`out += self.shortcut(x)`).")
    assert report.normalise(shapes) == "ResidualBlock(64, 64, stride=1) on a (4, 64, 32, 32) batch raised RuntimeError."
    hidden = "In a hidden case (a non-square input) the block raised NameError (line 8 of your cell: `k=___)`)."
    assert report.normalise(hidden) == "In a hidden case (a non-square input) the block raised NameError."
    projection = ("When only the channels change (stride 1), the shortcut raised RuntimeError: bad (shape) here "
                  "(line 3 of your cell: `x`) (train mode).")
    assert report.normalise(projection) == "When only the channels change (stride 1), the shortcut raised RuntimeError (train mode)."
    stopped = ("device is not defined on this machine: cell `setup` stopped with ModuleNotFoundError at line 14: "
               "`import torch.nn.___ as F` (No module named 'torch.nn.___').")
    assert report.normalise(stopped) == "device is not defined on this machine: cell `setup` stopped with ModuleNotFoundError."
    note = ("In the run with CUDA available (GPU simulated), the batch of images is on the CPU, not on device (the GPU): "
            "images = images.to(device). Note: cell `resnet18_adaptation` stopped with RuntimeError at line 24: "
            "`output = resnet_model(images)` (Tensor on device meta is not on the expected device cpu!).")
    assert report.normalise(note).endswith("Note: cell `resnet18_adaptation` stopped with RuntimeError.")
    broken = ("This submission could not be graded: the file is not a readable Jupyter notebook (NotJSONError: "
              "Notebook does not appear to be JSON: 'All tests passed...). Re-download it.")
    assert report.normalise(broken) == ("This submission could not be graded: the file is not a readable Jupyter "
                                        "notebook (NotJSONError). Re-download it.")
    plain = "resnet_model.fc gives 1 output; PneumoniaMNIST has 2 classes."
    assert report.normalise(plain) == plain


def test_one_mistake_met_in_several_cases_is_one_message():
    a = "In a hidden case (a non-square input) the block raised RuntimeError (line 34 of your cell: `out += s(x)`)."
    b = "In a hidden case (few input channels) the block raised RuntimeError (line 31 of your cell: `out = c(x)`)."
    assert report.message_key(a) == report.message_key(b) == "In a hidden case (…) the block raised RuntimeError."
    c = "When the stride changes (same channels) (ResidualBlock(8, 8, stride=2)): the projection must be a 1x1 " \
        "convolution (kernel_size=1); yours is Conv2d(8 -> 8, kernel (3, 3), stride (2, 2), padding (1, 1)) (train mode)."
    d = "When both the stride and the channels change (ResidualBlock(8, 16, stride=2)): the projection must be a 1x1 " \
        "convolution (kernel_size=1); yours is Conv2d(8 -> 16, kernel (3, 3), stride (2, 2), padding (0, 0)) (eval mode)."
    assert report.message_key(c) == report.message_key(d) == \
        "When … (ResidualBlock(…)): the projection must be a 1x1 convolution (kernel_size=1)."
    # different mistakes stay apart
    assert report.message_key("resnet_model.fc gives 1 output; PneumoniaMNIST has 2 classes.") != \
        report.message_key("resnet_model.fc still has ImageNet's 1000 outputs: replace it with a layer for 2 classes.")


def student_with(name, failed):
    """A student whose results hold these failed checks (item, check, message), in the grader's order."""
    tests = [{"name": f"{item}: {check}", "score": 0.0, "max_score": 1.0, "output": message}
             for item, check, message in failed]
    return report.StudentRecord(name, {}, results={"tests": tests})


# Messages as the graders wrote them for the class below (bug_no_padding, bug_shortcut_conv_3x3, the release).
PADDING = "Main path of ResidualBlock(8, 8, stride=1) in train mode: conv1 needs padding=1, so that a 3x3 kernel keeps the size at stride 1."
SEED_CRASH = ("ResidualBlock(64, 64, stride=1) on a (4, 64, 32, 32) batch raised RuntimeError: The size of tensor a (30) must "
              "match the size of tensor b (32) at non-singleton dimension 3 (line 34 of your cell: `out += self.shortcut(x)`).")
HIDDEN_CRASH = "In a hidden case (stride 3) the block raised RuntimeError."
NOT_DEFINED = ("output_tensor_1 is not defined when the checks run: cell `residual_block_demo` stopped with RuntimeError "
               "at line 34: `out += self.shortcut(x)` (The size of tensor a (30) must match the size of tensor b (32)).")
PROJECTION = ("When the channels change (stride 1) (ResidualBlock(8, 16, stride=1)): the projection must be a 1x1 convolution "
              "(kernel_size=1); yours is Conv2d(8 -> 16, kernel (3, 3), stride (1, 1), padding (0, 0)) (train mode).")
CALL_CRASH = ("ResidualBlock(8, 16, stride=2): calling the block raised RuntimeError: The size of tensor a (5) must match "
              "the size of tensor b (4) at non-singleton dimension 3 (line 34 of your cell: `out += self.shortcut(x)`).")
BATCH = ("In the run with CUDA available (GPU simulated), the batch of images is on the CPU, not on device (the GPU): "
         "images = images.to(device). Note: cell `resnet18_adaptation` stopped with RuntimeError at line 24: "
         "`output = resnet_model(images)` (Tensor on device meta is not on the expected device cpu!).")
NO_OUTPUT = ("The output is not defined in the run with CUDA available (GPU simulated): cell `resnet18_adaptation` stopped "
             "with RuntimeError at line 24: `output = resnet_model(images)` (Tensor on device meta is not on the expected device cpu!).")


@pytest.mark.parametrize("message, crash", [
    pytest.param(SEED_CRASH, True, id="a-seed-case-raised"),
    pytest.param(HIDDEN_CRASH, True, id="a-hidden-case-raised"),
    pytest.param(NOT_DEFINED, True, id="a-variable-never-made"),
    pytest.param(CALL_CRASH, True, id="calling-the-block-raised"),
    pytest.param(NO_OUTPUT, True, id="the-output-never-made"),
    pytest.param("In a hidden case (stride 3) the block raised an exception.", True, id="a-hidden-exception"),
    pytest.param(PADDING, False, id="a-diagnosis"),
    pytest.param(PROJECTION, False, id="a-diagnosis-with-the-student-s-layer"),
    pytest.param(BATCH, False, id="a-diagnosis-with-a-note-that-a-cell-stopped"),
    pytest.param("This submission could not be graded: the file is not a readable Jupyter notebook (NotJSONError: x). "
                 "Re-download it.", False, id="not-a-notebook"),
])
def test_a_message_that_only_says_the_code_stopped_is_a_crash_report(message, crash):
    assert report.is_crash_report(message) is crash


def test_crash_reports_count_under_the_diagnosis_of_the_same_student_and_item():
    ben = student_with("ben", [("residual_block_shapes", "seed_cases[same]", SEED_CRASH),
                               ("residual_block_shapes", "seed_outputs[output_tensor_1]", NOT_DEFINED),
                               *[("residual_block_shapes", f"hidden_cases[hidden-{k}]", HIDDEN_CRASH) for k in range(9)],
                               ("residual_block_shapes", "main_path[identity-block]", PADDING)])
    gus = student_with("gus", [("device_placement", "batches[counterfactual]", BATCH),
                               ("device_placement", "output[counterfactual]", NO_OUTPUT)])
    # ivy's block raises in the shapes item, where no check names why: the item's first crash report
    # is its root cause there; in the shortcut item the 1x1 message is, and the crash counts under it
    ivy = student_with("ivy", [("residual_block_shapes", "seed_cases[changed]", SEED_CRASH),
                               ("residual_block_shapes", "hidden_cases[hidden-8]", HIDDEN_CRASH),
                               ("shortcut_projection", "conv_bn[channels-change]", PROJECTION),
                               ("shortcut_projection", "added_before_relu[projection-block]", CALL_CRASH)])
    record = report.ClassRecord("notebook10", [], {}, [ben, gus, ivy])
    rows, distinct = report.top_messages(record)
    got = {r.message: (r.students, r.checks) for r in rows}
    assert got == {
        report.message_key(PADDING): (1, 12),
        report.message_key(BATCH): (1, 2),
        report.message_key(SEED_CRASH): (1, 2),
        report.message_key(PROJECTION): (1, 2),
    }
    assert distinct == 4
    assert report.message_key(HIDDEN_CRASH) not in got


def site(label):
    return next(s for s in report.sites_of("notebook10") if s.label == label)


def test_a_site_is_told_only_by_a_pass_or_a_message_that_names_it():
    conv1 = site("conv1: kernel_size, stride, padding")
    passed = {"test_residual_block_shapes_main_path[projection-block]": (True, "passed"),
              "test_residual_block_shapes_main_path[identity-block]": (True, "passed")}
    assert conv1.verdict(passed) is True
    padding = dict(passed, **{"test_residual_block_shapes_main_path[identity-block]":
                              (False, "Main path of ResidualBlock(8, 8, stride=1) in train mode: conv1 needs padding=1, so "
                                      "that a 3x3 kernel keeps the size at stride 1.")})
    assert conv1.verdict(padding) is False
    raised = dict(passed, **{"test_residual_block_shapes_main_path[identity-block]":
                             (False, "Building ResidualBlock(8, 8, stride=1) raised NameError: name '___' is not defined.")})
    assert conv1.verdict(raised) is None
    assert conv1.verdict({"test_resnet18_adaptation_fc": (True, "passed")}) is None  # no relevant check at all
    assert site("print(output_tensor_2.shape)").verdict(passed) is None


def test_the_demo_stride_is_blamed_only_when_the_block_itself_gets_stride_2_right():
    stride = site("block_change_dim stride=2")
    wrong_shape = (False, "output_tensor_2 has the shape (4, 128, 32, 32), not (4, 128, 16, 16). block_change_dim needs "
                          "the stride that halves height and width.")
    block_ok = {"test_residual_block_shapes_seed_cases[changed]": (True, "passed"),
                "test_residual_block_shapes_seed_outputs[output_tensor_2]": wrong_shape}
    assert stride.verdict(block_ok) is False
    block_bad = dict(block_ok, **{"test_residual_block_shapes_seed_cases[changed]": (False, "the block is wrong")})
    assert stride.verdict(block_bad) is None


def test_batch_size_is_blamed_only_for_a_batch_dimension_that_is_not_four():
    batch = site("DataLoader batch_size=4")
    check = "test_resnet18_adaptation_output_shape"
    assert batch.verdict({check: (False, "images has the shape (8, 1, 28, 28); it should be (4, 1, 28, 28), a batch "
                                         "of 4 one-channel 28x28 images: check batch_size.")}) is False
    assert batch.verdict({check: (False, "images has the shape (4, 3, 28, 28); it should be (4, 1, 28, 28), a batch "
                                         "of 4 one-channel 28x28 images: check batch_size.")}) is None
    assert batch.verdict({check: (False, "output has the shape (4, 1); it should be (4, 2), two scores for each of "
                                         "the 4 images.")}) is True


def test_report_and_export_refuse_an_unknown_assignment_by_name(tmp_path, capsys):
    course = copy_course(tmp_path)
    assert cli.main(["report", "notebok10", "--out", str(tmp_path / "r"), "--course", str(course.root)]) == 2
    err = capsys.readouterr().err
    assert "no assignment 'notebok10'" in err and "Did you mean notebook10?" in err
    assert cli.main(["export", "nb99", "--format", "canvas", "--out", str(tmp_path / "g.csv"),
                     "--course", str(course.root)]) == 2
    assert "no assignment 'nb99'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists() and not (tmp_path / "g.csv").exists()


def test_a_course_without_a_gradebook_says_to_grade_first(tmp_path, capsys):
    course = copy_course(tmp_path)
    assert cli.main(["report", "notebook10", "--out", str(tmp_path / "r"), "--course", str(course.root)]) == 2
    err = capsys.readouterr().err
    assert f"no gradebook at {course.gradebook}" in err and "autograder autograde notebook10" in err
    assert not course.gradebook.exists(), "reading must not create an empty gradebook"
    assert cli.main(["export", "notebook10", "--format", "moodle", "--out", str(tmp_path / "g.csv"),
                     "--course", str(course.root)]) == 2
    assert "no gradebook" in capsys.readouterr().err


def test_a_missing_out_is_named_with_what_it_should_be(tmp_path, capsys):
    course = copy_course(tmp_path)
    assert cli.main(["report", "notebook10", "--course", str(course.root)]) == 2
    assert "--out DIR is required" in capsys.readouterr().err
    assert cli.main(["export", "notebook10", "--format", "canvas", "--course", str(course.root)]) == 2
    assert "--out PATH is required: the CSV file to write" in capsys.readouterr().err
    assert cli.main(["export", "notebook10", "--format", "gradescope", "--course", str(course.root)]) == 2
    assert "the folder to write STUDENT/results.json into" in capsys.readouterr().err


# --- slow: a real class, graded by autograde ----------------------------------------------


@pytest.mark.slow
def test_the_class_is_graded_as_its_submissions_expect(graded):
    scores = assignment.gradebook_scores(graded)
    assert sorted(scores) == sorted(CLASS)
    for student in CLASS:
        got = {item: scores[student][cell] for item, cell in ITEM_CELLS.items()}
        assert got == pytest.approx(expected_items(student), abs=1e-6), student


@pytest.mark.slow
def test_every_file_of_the_report_is_written(written):
    assert set(written) == {"total_histogram", "item_pass_rates", "blank_sites", "failure_messages", "csv", "html"}
    for name, path in written.items():
        assert path.is_file() and path.stat().st_size > 0, name
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert {p.name for p in written.values()} == {"total_scores.png", "item_pass_rates.png", "blank_sites.png",
                                                  "failure_messages.png", "scores.csv", "report.html"}


@pytest.mark.slow
def test_the_csv_holds_the_gradebook_s_scores_and_totals(graded, written):
    rows = read_csv(written["csv"])
    assert rows[0] == ["student", *ITEMS, "total"]
    gradebook = assignment.gradebook_scores(graded)
    assert [r[0] for r in rows[1:]] == sorted(CLASS)
    for row in rows[1:]:
        student = row[0]
        values = dict(zip(ITEMS, map(float, row[1:-1])))
        assert values == pytest.approx({i: gradebook[student][ITEM_CELLS[i]] for i in ITEMS}, abs=1e-4)
        assert values == pytest.approx(expected_items(student), abs=1e-4)
        assert float(row[-1]) == pytest.approx(sum(gradebook[student].values()), abs=1e-4)


def html_text(written):
    return written["html"].read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_html_page_loads_nothing_from_outside(written):
    page = html_text(written)
    assert "http://" not in page and "https://" not in page
    sources = re.findall(r"\bsrc\s*=\s*['\"]([^'\"]*)", page)
    assert len(sources) == 4 and all(s.startswith("data:image/png;base64,") for s in sources)
    for marker in ("href=", "<link", "<script", "url(", "@import"):
        assert marker not in page, marker
    # the embedded images are the PNGs written beside it
    embedded = {base64.b64decode(s.split(",", 1)[1]) for s in sources}
    assert embedded == {written[k].read_bytes() for k in ("total_histogram", "item_pass_rates", "blank_sites",
                                                          "failure_messages")}


def section_table(page, heading):
    """The rows (lists of cell texts, header row left out) of the first table after <h2>heading
    (the <wbr> line-break opportunities after _ and . taken out)."""
    import html as htmlmod

    start = page.index(f"<h2>{heading}")
    table = page[page.index("<table>", start):page.index("</table>", start)]
    return [[htmlmod.unescape(c.replace("<wbr>", "")) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", table)[1:]]


@pytest.mark.slow
def test_the_html_page_shows_each_plot_s_numbers_and_every_student(graded, written):
    page = html_text(written)
    totals = {s: sum(expected_items(s).values()) for s in CLASS}
    bins = {row[0]: int(row[1]) for row in section_table(page, "Total scores")}
    assert sum(bins.values()) == len(CLASS)
    assert bins["[9, 10]"] == sum(t >= 9 for t in totals.values())
    assert bins["[0, 1)"] == sum(t < 1 for t in totals.values())
    items = {row[0]: float(row[3].rstrip("%")) for row in section_table(page, "Pass rate per graded item")}
    for item in ITEMS:
        share = sum(expected_items(s)[item] for s in CLASS) / len(CLASS) / POINTS[item]
        assert items[item] == pytest.approx(100 * share, abs=0.05), item
    students = {row[0]: row for row in section_table(page, "Students")}
    assert set(students) == set(CLASS)
    for student, row in students.items():
        assert float(row[1]) == pytest.approx(totals[student], abs=0.005)
        assert [float(v) for v in row[2:2 + len(ITEMS)]] == pytest.approx([expected_items(student)[i] for i in ITEMS],
                                                                          abs=0.005)
    assert "Grading seed: 20261126" in page


@pytest.mark.slow
def test_the_submission_that_is_not_a_notebook_is_listed_for_review_with_its_reason(written):
    page = html_text(written)
    assert "Flagged for review (1)" in page
    reasons = dict(section_table(page, "Flagged for review"))
    assert list(reasons) == ["hal"]
    assert "could not be graded" in reasons["hal"] and "not a readable Jupyter notebook" in reasons["hal"]
    assert {row[0]: row[-1] for row in section_table(page, "Students")} == {s: "yes" if s == "hal" else "" for s in CLASS}


@pytest.mark.slow
def test_the_blank_site_table_counts_what_it_claims(graded, written):
    rows = {r.site.label: r for r in report.site_rows(report.load(graded, "notebook10"))}
    assert {label: (r.right, r.wrong) for label, r in rows.items()} == SITE_COUNTS
    for r in rows.values():
        assert r.told + r.untold_students == len(CLASS)
    page = html_text(written)
    shown = {row[0]: row for row in section_table(page, "Blank sites")}
    assert list(shown) == list(SITE_COUNTS)
    for label, (right, wrong) in SITE_COUNTS.items():
        assert shown[label][2:5] == [str(right + wrong), str(right), str(wrong)], label
        assert shown[label][5] == str(len(CLASS) - right - wrong), label
        if right + wrong:
            assert shown[label][6] == f"{100 * right / (right + wrong):.0f}%"
    # the site no result can tell apart says so, with the reason
    label = "import torch.nn.functional as F"
    assert shown[label][6] == "cannot be told apart", label
    assert re.search(rf"<li><b>{re.escape(label)}</b>: cannot be told apart: \w", page), label
    assert "Never told apart: import torch.nn.functional as F." in page


@pytest.mark.slow
def test_the_failure_messages_are_root_causes_counted_per_student(graded, written):
    rows, distinct = report.top_messages(report.load(graded, "notebook10"))
    assert 0 < len(rows) <= 10 and distinct >= len(rows)
    for row in rows:
        assert "of your cell" not in row.message and "The size of tensor" not in row.message
        assert "name '___' is not defined" not in row.message
        assert 1 <= row.students <= len(CLASS) and row.checks >= row.students
    counts = [(r.students, r.checks) for r in rows]
    assert counts == sorted(counts, reverse=True)
    everything = report.top_messages(report.load(graded, "notebook10"), 1000)[0]
    by_message = {r.message: (r.students, r.checks) for r in everything}
    # ben's and cy's blocks raise in the hidden cases because of the mistake their main-path check
    # names: those crashes count under it (ben: 2 main-path checks and 13 crashes, cy: 1 and 6)
    assert "In a hidden case (…) the block raised RuntimeError." not in by_message
    assert by_message["Main path of ResidualBlock(…): conv1 needs padding=1, so that a 3x3 kernel keeps the size "
                      "at stride 1."] == (1, 15)
    assert by_message["Main path of ResidualBlock(…): bn1 must normalise its conv's output, which has out_channels "
                      "channels."] == (1, 7)
    # ivy's shapes item names nothing but crashes: its first one stands for the other eight
    assert by_message["ResidualBlock(…) on a (…) batch raised RuntimeError."] == (1, 9)
    assert by_message["When … (ResidualBlock(…)): the projection must be a 1x1 convolution (kernel_size=1)."] == (1, 4)
    assert by_message["resnet_model.fc gives 1 output; PneumoniaMNIST has 2 classes."] == (1, 1)  # fay
    failed = sum(not passed for s in report.load(graded, "notebook10").students for passed, _ in s.tests().values())
    assert sum(c for _, c in by_message.values()) == failed  # every failed check counted once
    shown = section_table(html_text(written), "Most common failure messages")
    assert [(m, int(s), int(c)) for m, s, c in shown] == [(r.message, r.students, r.checks) for r in rows]


@pytest.mark.slow
def test_the_canvas_export_has_canvas_s_identity_columns_and_the_gradebook_s_scores(graded, tmp_path):
    out = tmp_path / "canvas.csv"
    assert cli.main(["export", "notebook10", "--format", "canvas", "--out", str(out), "--course", str(graded.root),
                     "--columns", "both"]) == 0
    rows = read_csv(out)
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "notebook10",
                       *(f"notebook10: {i}" for i in ITEMS)]
    assert rows[1] == ["Points Possible", "", "", "", "", "10", *(str(POINTS[i]) for i in ITEMS)]
    gradebook = assignment.gradebook_scores(graded)
    assert [r[3] for r in rows[2:]] == sorted(CLASS)
    for row in rows[2:]:
        cells = gradebook[row[3]]
        assert float(row[5]) == pytest.approx(sum(cells.values()), abs=1e-4)
        assert [float(v) for v in row[6:]] == pytest.approx([cells[ITEM_CELLS[i]] for i in ITEMS], abs=1e-4)


@pytest.mark.slow
def test_the_moodle_export_has_a_username_column_and_the_gradebook_s_scores(graded, tmp_path):
    out = tmp_path / "sub" / "moodle.csv"
    assert cli.main(["export", "notebook10", "--format", "moodle", "--out", str(out), "--course", str(graded.root),
                     "--columns", "both"]) == 0
    rows = read_csv(out)
    assert rows[0] == ["Username", "Email address", "notebook10", *(f"notebook10: {i}" for i in ITEMS)]
    expected = {s: [sum(expected_items(s).values()), *(expected_items(s)[i] for i in ITEMS)] for s in CLASS}
    assert {r[0]: pytest.approx([float(v) for v in r[2:]], abs=1e-4) for r in rows[1:]} == expected


@pytest.mark.slow
def test_the_gradescope_export_copies_each_student_s_results_json(graded, tmp_path):
    out = tmp_path / "gs"
    assert cli.main(["export", "notebook10", "--format", "gradescope", "--out", str(out),
                     "--course", str(graded.root)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(CLASS)
    for student in CLASS:
        copied = out / student / "results.json"
        assert copied.read_bytes() == report.results_path(graded, student, "notebook10").read_bytes()
        assert json.loads(copied.read_text())["score"] == pytest.approx(sum(expected_items(student).values()), abs=1e-4)


@pytest.mark.slow
def test_a_student_without_results_json_is_named_and_the_rest_still_exported(graded, tmp_path, capsys):
    course = type(graded)(tmp_path / "course")
    shutil.copytree(graded.root, course.root)
    report.results_path(course, "dee", "notebook10").unlink()
    assert cli.main(["export", "notebook10", "--format", "gradescope", "--out", str(tmp_path / "gs"),
                     "--course", str(course.root)]) == 3
    assert "no results.json for dee" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "gs").iterdir()) == sorted(set(CLASS) - {"dee"})
    written = report.main(assignment="notebook10", course=course, out=tmp_path / "r")
    page = written["html"].read_text()
    assert "No results.json for 1 student(s) (dee)" in page
    rows = {r.site.label: r for r in report.site_rows(report.load(course, "notebook10"))}
    assert rows["the final F.relu(out)"].wrong == 0  # dee was the one who left it out
    assert float({r[0]: r for r in read_csv(written["csv"])}["dee"][-1]) == pytest.approx(
        sum(expected_items("dee").values()))


@pytest.mark.slow
def test_nbgrader_s_own_export_still_works(graded):
    run = assignment.nbgrader("export", course=graded)
    assert run.ok, run.output
    rows = list(csv.DictReader((graded.root / "grades.csv").open()))
    assert sorted(r["student_id"] for r in rows) == sorted(CLASS)


def test_export_refuses_an_unknown_format_before_reading_anything(tmp_path):
    with pytest.raises(export.ExportError, match="unknown format 'xls'"):
        export.main(assignment="notebook10", fmt="xls", out=tmp_path / "x.csv", course=copy_course(tmp_path))


@pytest.mark.slow
def test_a_manual_grade_in_the_gradebook_wins_over_the_autograder_s_results(graded, tmp_path, capsys):
    from nbgrader.api import Gradebook

    course = type(graded)(tmp_path / "course")
    shutil.copytree(graded.root, course.root)
    with Gradebook(f"sqlite:///{course.gradebook}") as gb:
        grade = gb.find_grade(ITEM_CELLS["device_placement"], NOTEBOOK.split(".")[0], "notebook10", "ada")
        grade.manual_score = 0.5
        gb.db.commit()
    assert cli.main(["report", "notebook10", "--out", str(tmp_path / "r"), "--course", str(course.root)]) == 0
    assert f"wrote {tmp_path / 'r' / 'report.html'}" in capsys.readouterr().out
    ada = {r[0]: r for r in read_csv(tmp_path / "r" / "scores.csv")}["ada"]
    assert ada == ["ada", "3", "3", "2", "0.5", "8.5"]
    assert "The gradebook differs from the autograder's results for ada" in (tmp_path / "r" / "report.html").read_text()
    assert cli.main(["export", "notebook10", "--format", "canvas", "--out", str(tmp_path / "c.csv"),
                     "--course", str(course.root)]) == 0
    assert {r[3]: r[5] for r in read_csv(tmp_path / "c.csv")[1:]}["ada"] == "8.5"
    assert cli.main(["export", "notebook10", "--format", "gradescope", "--out", str(tmp_path / "gs"),
                     "--course", str(course.root)]) == 0
    assert "differs from the autograder's results for ada" in capsys.readouterr().err
