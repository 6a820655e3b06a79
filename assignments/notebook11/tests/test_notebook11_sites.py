"""Notebook 11's blank-site map (sites.py): it describes the source's blanks, and on the graded
catalogue each mistake is charged to its own site, a correct notebook to none."""

import pytest

from autograder import report
from autograder.course import COURSE
from autograder.results import gradescope

SITES = {site.label: site for site in report.sites_of("notebook11")}
CAT, PAD, OUTC, SETUP = ("torch.cat([skip, x], dim=1)", "F.pad centred: [diff_x // 2, ..., diff_y // 2, ...]",
                         "outc = Conv2d(base, num_classes, kernel_size=1)", "device = cuda if torch.cuda.is_available()")
SKIPS = ("up1 gets the skip x3", "up3 gets the skip x1")


def test_the_map_describes_the_source_s_blanks():
    assert report.sites_match_source(COURSE, "notebook11") is None


def _verdicts(result) -> dict[str, bool | None]:
    tests = report.StudentRecord("", {}, results=gradescope(result)).tests()
    return {label: site.verdict(tests) for label, site in SITES.items()}


# case -> the sites it must be charged to (False), and sites that must still be told right (True)
EXPECTED = {
    "bug_up_skip_second_score_up_only": {CAT: False, PAD: True},
    "bug_up_padding_on_the_left_score_centred_case_only": {PAD: False, CAT: True},
    "bug_up_no_padding_score_odd_up_cases_only": {PAD: False, CAT: None},
    "bug_outc_kernel_3_score_unet_values_lost": {OUTC: False, CAT: True, PAD: True},
    "bug_unet_wrong_skip_score_zero_for_unet": {SKIPS[0]: False, SKIPS[1]: False, OUTC: None},
    "bug_device_hard_coded_cpu_score_device_choice_lost": {SETUP: False, CAT: True, OUTC: True},
}


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_a_mistake_is_charged_to_its_own_site(graded, case):
    verdicts = _verdicts(graded[case])
    assert {label: verdicts[label] for label in EXPECTED[case]} == EXPECTED[case]
    wrong = {label for label, verdict in verdicts.items() if verdict is False}
    assert wrong == {label for label, want in EXPECTED[case].items() if want is False}, "charged elsewhere too"


def test_the_solution_is_right_at_every_site_a_check_can_tell(graded):
    verdicts = _verdicts(graded["correct_solution_score_full"])
    told = {label: verdict for label, verdict in verdicts.items() if SITES[label].checks}
    assert told and all(verdict is True for verdict in told.values()), told
