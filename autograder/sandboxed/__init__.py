"""The sandbox side: the code that runs inside the sandbox, next to a submission's notebook.

Every module of this folder (and nothing else of the package) is copied into the sandbox as the
package ``nb10_sandbox`` (autograder/sandbox.py, ``bundle_dir``), with each assignment plug-in's
``SANDBOX`` files as ``nb10_sandbox.plugins.ID``. These modules import only one another
(relatively), the standard library and the notebook's libraries: in the sandbox nothing else of
this package exists. The trusted side imports from here only the wire protocol (the zygote's
request and answers, the file-system layout) and the modules both sides share on purpose (the
data stand-in); tests/test_boundaries.py holds both rules.
"""
