"""pytest wiring for the integration tests: one run directory under /tmp (traversable by the
postfix, postgres and nobody users, unlike pytest's 0700 tmp_path), one PostgreSQL server per
session (each module's cluster re-creates the database), and the logs of every running
process attached to a failing test's report."""

import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def privileged_helper():
    """R8.1: the daemons drop root, so the child's MTA helper must be what a package installs:
    setuid root, executable by the group portcullis only. The system users must exist
    (deploy/install-deps.sh makes them)."""
    import grp
    import pwd
    for user in ("portcullis", "portcullis-scan"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            pytest.exit(f"the system user {user} is missing: run deploy/install-deps.sh", 2)
    helper = harness.bin_path("portcullis-mta")
    if os.path.exists(helper):
        os.chown(helper, 0, grp.getgrnam("portcullis").gr_gid)
        os.chmod(helper, 0o4750)
    yield


@pytest.fixture(scope="session")
def run_dir(request):
    d = tempfile.mkdtemp(prefix="portcullis-it-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    if request.session.testsfailed == 0 and not os.environ.get("PORTCULLIS_KEEP"):
        shutil.rmtree(d, ignore_errors=True)
    else:
        sys.stderr.write(f"\nintegration run directory kept: {d}\n")


@pytest.fixture(scope="module")
def module_dir(run_dir, request):
    d = os.path.join(run_dir, request.module.__name__.rsplit(".", 1)[-1])
    return harness.make_dir(d, 0o755)


@pytest.fixture(scope="session")
def pg(run_dir):
    server = harness.PostgresServer(run_dir)
    server.start()
    yield server
    server.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for name, path in sorted(harness.ACTIVE_LOGS.items()):
            rep.sections.append((f"log: {name} ({path})", harness.tail(path)))


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


@pytest.fixture(scope="module", autouse=True)
def no_sanitizer_reports(module_dir):
    """Fails the module if any process it ran wrote an ASan/LSan/UBSan report: the suite runs
    against the sanitizer build too (tests/run.sh), and a report there is a bug even when every
    assertion held. Set up first, so it checks after every cluster of the module has stopped."""
    yield
    found = []
    for top, _dirs, files in os.walk(module_dir):
        for f in files:
            if not f.endswith(".log"):
                continue
            path = os.path.join(top, f)
            with open(path, "rb") as fh:
                text = fh.read().decode("utf-8", "replace")
            for marker in SANITIZER_MARKERS:
                at = text.find(marker)
                if at >= 0:
                    found.append(f"{path}:\n{text[max(0, at - 200):at + 3000]}")
                    break
    assert not found, "sanitizer reports:\n" + "\n\n".join(found)
