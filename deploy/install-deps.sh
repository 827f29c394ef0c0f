#!/usr/bin/env bash
# Installs every Debian 12 package that building, the demo and the tests need.
# Idempotent: safe to run again; apt-get only installs what is missing.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps.sh: run as root (it installs Debian packages)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# Keep the distribution's own Postfix and PostgreSQL instances out of the way: Portcullis' demo
# and tests start their own instances in private directories on loopback ports.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/portcullis.conf

packages=(
    # build
    build-essential cmake pkg-config
    protobuf-c-compiler libprotobuf-c-dev
    libzmq3-dev libsodium-dev libevent-dev libpq-dev libjansson-dev libssl-dev
    libcmocka-dev
    libgmime-3.0-dev libclamav-dev libpcre2-dev libcurl4-openssl-dev
    libarchive-dev  # component update packages (R3.7); libevent-dev brings libevent_openssl
    clang libclang-rt-14-dev  # the libFuzzer targets of tests/fuzz (R8.6)
    libseccomp-dev  # the scan service's system-call filter (R8.1)
    # run: database and MTA
    postgresql postgresql-client postfix
    # tests
    python3 python3-pytest python3-psycopg2 python3-zmq python3-yaml python3-cryptography swaks procps iproute2
    clamav clamav-testfiles zip bc
    unbound  # email reputation tests: a block-list zone on a loopback port
    chromium  # web console browser tests (playwright-core drives /usr/bin/chromium headless)
)
# The web console's chart library and the browser tests' driver come from npm
# (deploy/build-web.sh); Debian's nodejs/npm only when no npm is installed already (a machine
# may have NodeSource's Node with its own npm, which Debian's npm package would conflict with).
if ! command -v npm >/dev/null 2>&1; then
    packages+=(nodejs npm)
fi

apt-get update
apt-get install -y --no-install-recommends "${packages[@]}"

# R8.1: the system users the daemons run as once started (never root): the parent and the
# child manager as portcullis, the scan service (hostile mail) as portcullis-scan, in the group
# portcullis so that its manager can read and remove what it stores.
if ! getent group portcullis >/dev/null; then
    groupadd --system portcullis
fi
if ! getent passwd portcullis >/dev/null; then
    useradd --system --gid portcullis --home-dir /var/lib/portcullis --no-create-home \
        --shell /usr/sbin/nologin --comment "Portcullis daemons" portcullis
fi
if ! getent passwd portcullis-scan >/dev/null; then
    useradd --system --gid portcullis --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin --comment "Portcullis scan service" portcullis-scan
fi
