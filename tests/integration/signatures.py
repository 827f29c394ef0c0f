"""ClamAV signature sets for the scan tests and the benchmark, written into a child's
signature_dir: the EICAR test string as an .ndb body signature, an .hdb of Debian's
clamav-testfiles (clam.exe, which ClamAV finds inside all the containers and packers of that
package), and N random signatures (hdb + some ndb) for load. Files are replaced atomically
(temporary name, fsync, rename, fsync of the directory) because the scan service picks up
changes by inotify and must never load a half-written file.

`clamscan_detects` asks the real ClamAV command-line scanner which files a signature
directory detects, so the tests derive their expectations from ClamAV itself rather than from
a hand-kept list."""

import binascii
import hashlib
import io
import os
import random
import re
import subprocess

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_NAME = "Portcullis.Test.EICAR"
CLAMEXE_NAME = "Portcullis.Test.ClamExe"
TESTFILES_DIR = "/usr/share/clamav-testfiles"
CLAMSCAN = "/usr/bin/clamscan"

# ClamAV appends ".UNOFFICIAL" to names from unsigned databases; a name in a verdict or a log
# line is ours when it starts with the name we wrote.
def virus_name_matches(reported, name):
    return reported == name or reported.startswith(name + ".")


def _write_atomic(directory, filename, data):
    os.makedirs(directory, exist_ok=True)
    final = os.path.join(directory, filename)
    # a dot-name with no signature extension: the loader must ignore it while it is written
    tmp = os.path.join(directory, f".{filename}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    os.rename(tmp, final)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return final


def eicar_ndb_line(name=EICAR_NAME, nbytes=48):
    """An .ndb body signature (any file type, any offset) on the first nbytes of EICAR."""
    return f"{name}:0:*:{binascii.hexlify(EICAR[:nbytes]).decode()}\n"


def hdb_line(data, name):
    """md5:size:name for the exact content data."""
    return f"{hashlib.md5(data).hexdigest()}:{len(data)}:{name}\n"


def testfiles():
    """Paths of the clamav-testfiles package's files, sorted."""
    if not os.path.isdir(TESTFILES_DIR):
        return []
    return sorted(os.path.join(TESTFILES_DIR, f) for f in os.listdir(TESTFILES_DIR)
                  if os.path.isfile(os.path.join(TESTFILES_DIR, f)))


def testfiles_hdb():
    """.hdb content for clam.exe, the PE that every other file of clamav-testfiles carries
    (zipped, cpio'd, packed with UPX/FSG/…, in an OLE document, a PDF, a mail, …): ClamAV
    extracts or unpacks the inner clam.exe and matches its hash."""
    with open(os.path.join(TESTFILES_DIR, "clam.exe"), "rb") as f:
        return hdb_line(f.read(), CLAMEXE_NAME)


def random_signatures(n, seed=1, ndb_share=0.1, prefix="Portcullis.Bench"):
    """(hdb text, ndb text) with n signatures in all: random md5:size:name lines and, for
    ndb_share of them, random 20-byte body signatures (never matching real mail: random
    bytes). Deterministic for a seed, so a swap to a different seed is a different set."""
    rng = random.Random(seed)
    n_ndb = int(n * ndb_share)
    hdb, ndb = [], []
    for i in range(n - n_ndb):
        md5 = "%032x" % rng.getrandbits(128)
        hdb.append(f"{md5}:{rng.randint(64, 10_000_000)}:{prefix}.H{seed}.{i}\n")
    for i in range(n_ndb):
        body = "%040x" % rng.getrandbits(160)
        ndb.append(f"{prefix}.N{seed}.{i}:0:*:{body}\n")
    return "".join(hdb), "".join(ndb)


def write_eicar(directory, name=EICAR_NAME, filename="portcullis-eicar.ndb"):
    return _write_atomic(directory, filename, eicar_ndb_line(name).encode())


def write_testfiles(directory, filename="portcullis-testfiles.hdb"):
    return _write_atomic(directory, filename, testfiles_hdb().encode())


def write_random(directory, n, seed=1, basename="portcullis-random"):
    """Writes basename.hdb and basename.ndb with n random signatures; returns n."""
    hdb, ndb = random_signatures(n, seed)
    _write_atomic(directory, basename + ".hdb", hdb.encode())
    if ndb:
        _write_atomic(directory, basename + ".ndb", ndb.encode())
    return n


def write_standard_set(directory, n_random=0, seed=1):
    """The set the scan tests use: EICAR + clamav-testfiles (+ n_random random signatures).
    Returns the number of signatures written."""
    write_eicar(directory)
    write_testfiles(directory)
    count = 2
    if n_random:
        count += write_random(directory, n_random, seed)
    return count


def replace_random(directory, n, seed, basename="portcullis-random"):
    """Replaces the random part of a set with another (hot-swap tests)."""
    return write_random(directory, n, seed, basename)


# What the scan service asks of libclamav (child/scan/av.c) with the default av.* settings:
# heuristic alerts for limits exceeded and encrypted archives/documents, and those limits.
# clamscan with these options is the oracle for what the child must find in a message.
CHILD_SCAN_ARGS = ("--alert-exceeds-max=yes", "--alert-encrypted-archive=yes",
                   "--alert-encrypted-doc=yes", "--max-filesize=25M", "--max-scansize=100M",
                   "--max-recursion=16", "--max-files=10000")


def exception_kind(name):
    """The scan exception a heuristic name stands for, or None for a virus name."""
    if name.startswith("Heuristics.Limits.Exceeded"):
        return "av_limits"
    if name.startswith("Heuristics.Encrypted"):
        return "av_encrypted"
    return None


def clamscan_detects(sig_dir, paths, extra_args=()):
    """{path: virus name} for the paths that `clamscan -d sig_dir` reports FOUND."""
    if not paths:
        return {}
    cp = subprocess.run([CLAMSCAN, "--no-summary", "--stdout", "-d", sig_dir, *extra_args,
                         *paths], capture_output=True, text=True, timeout=300)
    if cp.returncode not in (0, 1):
        raise RuntimeError(f"clamscan failed rc={cp.returncode}: {cp.stderr}{cp.stdout}")
    found = {}
    for line in cp.stdout.splitlines():
        m = re.match(r"(.*): (\S+) FOUND$", line)
        if m:
            found[m.group(1)] = m.group(2)
    return found


if __name__ == "__main__":  # writes a set: signatures.py DIR [N_RANDOM] [SEED]
    import sys
    d = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    s = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    print(write_standard_set(d, n, s))


def write_package(path, members):
    """A component update package (R3.7): a tar.gz of members {file name: text} at path."""
    import tarfile
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return path
