#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine, as root: the Debian
# packages palisade builds and tests against, a Rust toolchain, and
# cargo-nextest. Quick when everything is already there.
#
#   tools/setup.sh run    what `./run.sh` needs
#   tools/setup.sh test   what `./test.sh` needs (a superset)
set -euo pipefail

purpose=${1:-run}

# Build and run: DPDK 22.11 (headers, libraries, PMDs, testpmd), bindgen's
# libclang, libpcap for net_pcap, iproute2 for the TAP demo's namespaces.
packages=(dpdk dpdk-dev libdpdk-dev pkg-config clang libclang-dev libpcap-dev
          libsqlite3-dev
          iproute2 ca-certificates curl
          # The demo: a web server in a namespace, and the commands it prints.
          python3 iputils-ping)
if [[ $purpose == test ]]; then
    # End-to-end tests: real Linux tools inside network namespaces, and
    # Prometheus (prometheus, promtool) scraping the real /metrics.
    packages+=(netcat-openbsd prometheus)
    # The EC2 API tests: the real AWS CLI and boto3, in a virtualenv.
    packages+=(python3-venv)
    # The VM test (tests/tests/vm.rs): vagrant/build-image.sh builds the
    # appliance image from Debian packages, QEMU/KVM boots it.
    packages+=(mmdebstrap qemu-system-x86 qemu-utils e2fsprogs fdisk binutils)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
        || missing+=("$p")
done
if ((${#missing[@]})); then
    if [[ $(id -u) != 0 ]]; then
        echo "setup: need root to install: ${missing[*]}" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Some Debian 12 images ship qemu-utils from bookworm-backports; the
    # QEMU packages must then come from there too (bookworm's 7.2 cannot
    # sit beside it). Only those: DPDK stays bookworm's 22.11.
    qemu_from=()
    if [[ $(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null) == *bpo12* ]]; then
        if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
            printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' \
                'Suites: bookworm-backports' 'Components: main' \
                'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' \
                >/etc/apt/sources.list.d/palisade-bookworm-backports.sources
        fi
        plain=()
        for p in "${missing[@]}"; do
            if [[ $p == qemu-* ]]; then qemu_from+=("$p"); else plain+=("$p"); fi
        done
        missing=("${plain[@]}")
    fi
    apt-get update -q
    if ((${#missing[@]})); then
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
    if ((${#qemu_from[@]})); then
        apt-get install -y -q --no-install-recommends -t bookworm-backports "${qemu_from[@]}"
    fi
fi

# Rust: the project needs a current stable toolchain (edition 2024); Debian
# 12's packaged rustc is too old, so use rustup when cargo is absent.
if ! command -v cargo >/dev/null 2>&1 && [[ -x $HOME/.cargo/bin/cargo ]]; then
    export PATH=$HOME/.cargo/bin:$PATH
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: installing the Rust toolchain with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
        | sh -s -- -y --profile minimal --component clippy,rustfmt
    export PATH=$HOME/.cargo/bin:$PATH
fi

if [[ $purpose == test ]] && ! command -v cargo-nextest >/dev/null 2>&1; then
    echo "setup: installing cargo-nextest"
    cargo install --locked cargo-nextest
fi

# The EC2 API tests (tests/api) run the real AWS CLI and boto3 from PyPI,
# in a virtualenv of their own so the system Python stays untouched.
if [[ $purpose == test ]]; then
    export PALISADE_TEST_VENV=${PALISADE_TEST_VENV:-/opt/palisade-test-venv}
    if [[ ! -x $PALISADE_TEST_VENV/bin/aws || ! -x $PALISADE_TEST_VENV/bin/pytest ]] \
        || ! "$PALISADE_TEST_VENV/bin/python" -c 'import boto3' 2>/dev/null; then
        echo "setup: creating $PALISADE_TEST_VENV (awscli, boto3, pytest from PyPI)"
        python3 -m venv "$PALISADE_TEST_VENV"
        "$PALISADE_TEST_VENV/bin/pip" install -q --disable-pip-version-check awscli boto3 pytest
    fi
fi

# The Grafana dashboard test (tests/tests/dashboard.rs) type-checks
# vagrant/grafana/dashboards/palisade.json against Grafana's published
# schema: @grafana/schema's types, with TypeScript's compiler, from npm,
# in a directory of their own (pinned: a new schema is a deliberate bump).
if [[ $purpose == test ]]; then
    export PALISADE_TEST_NODE=${PALISADE_TEST_NODE:-/opt/palisade-test-node}
    node_packages=(@grafana/schema@13.2.3 typescript@5.9.3)
    # Debian's node and npm, unless a node with its own npm is there
    # already (NodeSource's nodejs package conflicts with Debian's npm).
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        echo "setup: installing nodejs npm"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends nodejs npm
    fi
    installed=$(cd "$PALISADE_TEST_NODE" 2>/dev/null \
        && node -p 'const p = n => require("./node_modules/" + n + "/package.json").version;
                    "@grafana/schema@" + p("@grafana/schema") + " typescript@" + p("typescript")' \
        2>/dev/null || true)
    if [[ $installed != "${node_packages[*]}" ]]; then
        echo "setup: installing ${node_packages[*]} in $PALISADE_TEST_NODE (npm)"
        mkdir -p "$PALISADE_TEST_NODE"
        npm install --prefix "$PALISADE_TEST_NODE" --no-audit --no-fund --save-exact \
            "${node_packages[@]}"
    fi
fi
