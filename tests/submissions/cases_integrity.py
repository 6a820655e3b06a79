"""Attacks on the integrity of grading (issue 10): each tries to earn points it did not, to read
what is hidden, or to make the grader misreport what happened. Every one must earn nothing it
did not honestly earn, and be marked for review.
"""

from tests.submissions.case import Case

CASES: list[Case] = []
