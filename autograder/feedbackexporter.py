"""The exporter of `nbgrader generate_feedback`: nbgrader's feedback page, cleaned, made to fit
a laptop or a phone, and saying which graded item each score belongs to.

Configured as c.GenerateFeedback.exporter_class in nbgrader_config.py. On top of
SanitizingHTMLExporter (markdown cells cleaned, see autograder/sandboxautograde.py), its
template (below) extends nbgrader 0.9.6's own feedback template (feedback/index.html.j2) and
changes three things:

* the page fits its window, 390 px wide and up: long lines of outputs and code wrap instead of
  being cut off at the edge of their box, images shrink, and on a phone the In/Out prompts go;
* the summary at the top names each graded item ("residual_block_shapes: ResidualBlock output
  shapes") where nbgrader writes "Test cell" for every one;
* a graded test cell's numeric result is not shown. The cell lists its checks and ends with the
  item's score as a number, which nbgrader's partial credit reads from the autograded notebook
  (so it stays there); on the page it was a bare `Out[ ]: 1.5` under the check list.
"""

from __future__ import annotations

import os
import re

import nbgrader
from jinja2 import DictLoader, FileSystemLoader
from traitlets import default

from autograder import plugins
from autograder.sandboxautograde import SanitizingHTMLExporter

# nbgrader's templates folder, so that ours can extend 'feedback/index.html.j2'
NBGRADER_TEMPLATES = os.path.join(os.path.dirname(nbgrader.__file__), "server_extensions", "formgrader", "templates")
TEMPLATE_NAME = "nb10_feedback.html.j2"

TEMPLATE = r"""
{%- extends 'feedback/index.html.j2' -%}

{%- block header -%}
{%- set head_end -%}
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
/* autograder/feedbackexporter.py: the page fits its window (390 px and up); nothing is cut off */
pre { white-space: pre-wrap; word-break: normal; overflow-wrap: anywhere; }
div.output_subarea, div.input_area, div.output_area { min-width: 0; max-width: 100%; overflow-x: visible; }
div.inner_cell, div.output { min-width: 0; }
img { max-width: 100%; height: auto; }
div.nbgrader_cell .panel-heading { height: auto; display: flow-root; }  /* holds its floated score */
@media (max-width: 600px) {
  body { padding-top: 0; }
  .container { padding-left: 4px; padding-right: 4px; }
  .panel-body { padding: 4px; }
  div.prompt { display: none; }
  div.input, div.output_area { flex-direction: column; }
  div.output_subarea { padding: 0.2em; }
}
</style>
</head>
{%- endset -%}
{{ super() | replace('</head>', head_end) }}
{%- endblock header -%}

{#- nbgrader 0.9.6's body, with each item's name where it writes "Test cell" -#}
{% block body %}
<body>
  <a name="top"></a>
  <div class="container">
    <div class="panel panel-default">
      <div class="panel-heading">
        <h4>{{ resources.nbgrader.notebook }} (Score: {{ resources.nbgrader.score | float | round(2) }} / {{ resources.nbgrader.max_score | float | round(2) }})</h4>
        <div id="toc">
          <ol>
          {% for cell in nb.cells %}
            {% if cell.metadata.nbgrader and cell.metadata.nbgrader.grade and not cell.metadata.nbgrader.solution %}
            <li><a href="#{{ cell.metadata.nbgrader.grade_id }}">{{ cell | item_title }}</a> (Score: {{ cell.metadata.nbgrader.score | float | round(2) }} / {{ cell.metadata.nbgrader.points | float | round(2) }})</li>
            {% elif cell.cell_type == "code" and cell.metadata.nbgrader and cell.metadata.nbgrader.grade %}
            <li><a href="#{{ cell.metadata.nbgrader.grade_id }}">Coding free-response</a> (Score: {{ cell.metadata.nbgrader.score | float | round(2) }} / {{ cell.metadata.nbgrader.points | float | round(2) }})</li>
            {% elif cell.cell_type == "markdown" and cell.metadata.nbgrader and cell.metadata.nbgrader.grade %}
            <li><a href="#{{ cell.metadata.nbgrader.grade_id }}">Written response</a> (Score: {{ cell.metadata.nbgrader.score | float | round(2) }} / {{ cell.metadata.nbgrader.points | float | round(2) }})</li>
            {% elif cell.cell_type == "markdown" and cell.metadata.nbgrader and cell.metadata.nbgrader.task %}
            <li><a href="#{{ cell.metadata.nbgrader.grade_id }}">Task</a> (Score: {{ cell.metadata.nbgrader.score | float | round(2) }} / {{ cell.metadata.nbgrader.points | float | round(2) }})</li>
            {% endif %}
            {% if cell.metadata.nbgrader and cell.metadata.nbgrader.comment and cell.metadata.nbgrader.comment %}
            <li><a href="#comment-{{ cell.metadata.nbgrader.grade_id }}">Comment</a></li>
            {% endif %}
          {% endfor %}
          {% if resources.nbgrader.late_penalty > 0 %}
            <li class="late-penalty">Late submission penalty (Score: -{{ resources.nbgrader.late_penalty | float | round(2) }})</li>
          {% endif %}
          </ol>
        </div>
      </div>
      <div class="panel-body">
        <div id="notebook" class="border-box-sizing">
          <div class="container" id="notebook-container">
            {{ super.super() }}
          </div>
        </div>
      </div>
    </div>
  </div>
</body>
{%- endblock body %}

{#- a test cell's score, for nbgrader only -#}
{% block output scoped %}
{%- if not (output.output_type == 'execute_result' and cell | is_test_cell) -%}
{{ super() }}
{%- endif -%}
{% endblock output %}
"""

_SELF_CHECK_TITLE = re.compile(r"#\s*Self-check:\s*(.*?)\s*(?:\(\d+(?:\.\d+)? points?\))?\s*$")


def _item_of(grade_id: str) -> str:
    """The item a test cell holds the points of, in the assignment plug-in that has that cell."""
    for plugin in plugins.loadable():
        item = plugin.item_of_cell(grade_id)
        if item is not None:
            return item
    return grade_id


def is_test_cell(cell) -> bool:
    """A graded test cell (nbgrader: grade and not solution)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")


def item_title(cell) -> str:
    """How the summary names a graded test cell: the item, and the title of its self-check
    ("# Self-check: ResidualBlock output shapes (3 points)" on its first line) where it has one."""
    grade_id = cell["metadata"]["nbgrader"]["grade_id"]
    item = _item_of(grade_id)
    first = (cell.get("source") or "").lstrip().split("\n", 1)[0]
    title = _SELF_CHECK_TITLE.fullmatch(first)
    return f"{item}: {title.group(1)}" if title and title.group(1) else item


class FeedbackExporter(SanitizingHTMLExporter):
    """SanitizingHTMLExporter with the template above."""

    @default("extra_loaders")
    def _extra_loaders_default(self):
        return [DictLoader({TEMPLATE_NAME: TEMPLATE}), FileSystemLoader(NBGRADER_TEMPLATES)]

    @default("template_file")
    def _template_file_default(self):
        return TEMPLATE_NAME

    def default_filters(self):
        yield from super().default_filters()
        yield ("item_title", item_title)
        yield ("is_test_cell", is_test_cell)
