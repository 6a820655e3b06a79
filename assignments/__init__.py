"""Assignment plug-ins: one folder per assignment (autograder/plugins.py says what a folder holds)."""
