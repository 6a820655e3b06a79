"""Notebook 10 as an nbgrader assignment: blanks for students, sandboxed graders for instructors."""

__version__ = "0.1.0"
