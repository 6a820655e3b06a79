"""nbgrader configuration for this course directory (the repository root).

Run nbgrader from this folder, e.g. `nbgrader generate_assignment notebook10`.
"""

import os

from nbgrader.preprocessors import (
    CheckCellMetadata,
    ClearHiddenTests,
    ClearMarkScheme,
    ClearOutput,
    ComputeChecksums,
    Execute,
    IncludeHeaderFooter,
    InstantiateTests,
    LockCells,
    SaveCells,
)

from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import AssignLatePenalties, IgnorePattern, LimitOutput, SaveAutoGrades

from autograder.feedbackexporter import FeedbackExporter
from autograder.inlineblanks import InlineBlanks
from autograder.inlineselfchecks import InlineSelfChecks
from autograder.sandboxautograde import FlagForReview, SandboxAutograde, guard_nbgrader
from autograder.stripblankmarkers import StripBlankMarkers

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "ai-medical-imaging"

# Student version: nbgrader's own pipeline, with InlineBlanks in place of ClearSolutions, so
# that lines marked `# STUDENT SEES: ...` become the seed's scaffold with `___` blanks.
c.GenerateAssignment.preprocessors = [
    InlineSelfChecks,  # the self-checks' helpers: the graders' own wording, copied in (self-contained)
    IncludeHeaderFooter,
    InstantiateTests,
    LockCells,
    InlineBlanks,
    ClearOutput,
    CheckCellMetadata,
    ComputeChecksums,
    SaveCells,
    ClearHiddenTests,
    ClearMarkScheme,
    ComputeChecksums,
    CheckCellMetadata,
]

# Solutions handed out after the deadline: executed, without the blank markers.
c.GenerateSolution.preprocessors = [
    InlineSelfChecks,
    IncludeHeaderFooter,
    LockCells,
    ClearOutput,
    ClearMarkScheme,
    StripBlankMarkers,
    Execute,
]

# Executed solutions go to solutions/<assignment>/ (nbgrader's default folder is "solution").
c.CourseDirectory.solution_directory = "solutions"

# Autograde: the submission runs in our sandbox, not in a kernel next to the tests; the hidden
# graders judge what it computed (autograder/graders). Test cells a student deleted come back.
c.OverwriteCells.add_missing_cells = True
c.Autograde.autograde_preprocessors = [
    SandboxAutograde,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    FlagForReview,  # a submission the autograder marked for review: flagged in the gradebook, with the reasons
    AssignLatePenalties,
    CheckCellMetadata,
]

# Submission folders are written by students and nbgrader reads them as the grading user (root
# here): autograde and generate_feedback read only regular files inside a student's folder,
# never follow a link, never open a FIFO or a device, and refuse a folder whose name nbgrader
# would read as a glob (see guard_nbgrader in autograder/sandboxautograde.py).
guard_nbgrader()

# Feedback pages: no script from a submission. nbconvert's own sanitiser (for cell outputs), and
# an exporter that also cleans the HTML of markdown cells, which nbgrader's feedback template
# renders without nbconvert's sanitiser; its template makes the page fit a laptop or a phone,
# names each graded item in the summary and leaves out the score a test cell returns for nbgrader.
c.HTMLExporter.sanitize_html = True
c.GenerateFeedback.exporter_class = FeedbackExporter
