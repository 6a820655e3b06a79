"""Scale-out for real: a Dask scheduler and two workers on loopback, and a PostgreSQL gradebook."""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from autograder import assignment, autograde
from tests.conftest import ITEM_CELLS
from tests.conftest import EXPECTED, make_class

CLASS = {
    "ann": "correct/correct_solution_as_released_success_score_full.ipynb",
    "bo": "bugs/bug_no_padding_score_partial.ipynb",
    "cai": "hostile/hostile_zeros_of_the_right_shape_score_zero_for_blocks.ipynb",
    "dan": "correct/correct_identity_module_shortcut_success_score_full.ipynb",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def by_item(scores):
    return {s: {item: cells[cell] for item, cell in ITEM_CELLS.items()} for s, cells in scores.items()}


@pytest.fixture(scope="module")
def dask_cluster():
    port = free_port()
    bindir = Path(sys.executable).parent
    env = assignment.tool_env()
    procs = [subprocess.Popen([bindir / "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    address = f"tcp://127.0.0.1:{port}"
    for _ in range(2):
        procs.append(subprocess.Popen([bindir / "dask", "worker", address, "--nworkers", "1", "--nthreads", "1",
                                       "--no-dashboard", "--host", "127.0.0.1"],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    from distributed import Client

    try:
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.mark.slow
def test_a_class_graded_on_a_dask_cluster_scores_as_expected(tmp_path, dask_cluster):
    course = make_class(tmp_path, CLASS)
    summary = autograde.main(assignment="notebook10", course=course, scheduler=dask_cluster)
    assert sorted(summary.graded) == sorted(CLASS)
    assert all("ran on a Dask worker" in r.notes for r in summary.results.values())
    scores = by_item(assignment.gradebook_scores(course))
    for student, case in CLASS.items():
        assert scores[student] == pytest.approx(EXPECTED[case]["expect"], abs=1e-6), student


def test_an_unreachable_scheduler_is_an_error_that_says_what_to_do(tmp_path):
    course = make_class(tmp_path, CLASS)
    with pytest.raises(autograde.AutogradeError, match="dask scheduler"):
        autograde.main(assignment="notebook10", course=course, scheduler=f"tcp://127.0.0.1:{free_port()}")


def test_an_address_where_something_else_answers_is_an_error_that_says_so(tmp_path):
    """The dashboard's port (an HTTP server) given instead of the scheduler's: a message, not a crash
    or a wait."""
    import threading
    import time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def answer():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" * 4)

    threading.Thread(target=answer, daemon=True).start()
    course = make_class(tmp_path, {"ann": CLASS["ann"]})
    started = time.monotonic()
    try:
        with pytest.raises(autograde.AutogradeError, match="does not speak Dask.s protocol"):
            autograde.main(assignment="notebook10", course=course, scheduler=f"tcp://127.0.0.1:{server.getsockname()[1]}")
    finally:
        server.close()
    assert time.monotonic() - started < 30


@pytest.fixture(scope="module")
def postgres():
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not initdb:
        pytest.fail("PostgreSQL is not installed: `make setup` (as root) installs the Debian package postgresql")
    if os.geteuid() != 0:
        pytest.skip("starting a PostgreSQL server here needs root (it runs as the postgres user)")
    bindir = Path(initdb[-1]).parent
    data = Path(tempfile.mkdtemp(prefix="nb10-pg-"))  # pytest's folders are private to root
    os.chmod(data, 0o755)
    user = pwd.getpwnam("postgres")
    os.chown(data, user.pw_uid, user.pw_gid)
    port = free_port()

    def as_postgres(*cmd):
        return subprocess.run(["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", *cmd],
                              check=True, capture_output=True, text=True, timeout=120)

    as_postgres(str(bindir / "initdb"), "-D", str(data / "db"), "--auth=trust", "-U", "postgres")
    as_postgres(str(bindir / "pg_ctl"), "-D", str(data / "db"), "-l", str(data / "log"), "-w", "start",
                "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1")
    try:
        as_postgres(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "gradebook")
        yield f"postgresql://postgres@127.0.0.1:{port}/gradebook"
    finally:
        as_postgres(str(bindir / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop")
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.slow
def test_a_postgresql_gradebook_gets_the_same_grades_as_sqlite(tmp_path, postgres):
    course = make_class(tmp_path, CLASS)
    autograde.main(assignment="notebook10", course=course, workers=2, db_url=postgres)
    autograde.main(assignment="notebook10", course=course, workers=2, force=True)  # default: SQLite
    in_postgres = assignment.gradebook_scores(course, db_url=postgres)
    in_sqlite = assignment.gradebook_scores(course)
    assert sorted(in_postgres) == sorted(CLASS)
    assert in_postgres == in_sqlite
    for student, case in CLASS.items():
        assert by_item(in_postgres)[student] == pytest.approx(EXPECTED[case]["expect"], abs=1e-6)
