#!/usr/bin/env bash
# The project's one test command: formatting, lints, then every test of the workspace, once on
# SQLite and once on PostgreSQL. It installs what the tests need: SQLite is compiled in, and
# PostgreSQL comes from Debian's packages when its binaries are missing; a throwaway cluster is
# started in a temporary directory on a free loopback port, with TLS from a throwaway CA, and
# removed at the end. The browser tests drive Chromium, also from Debian's packages when missing.
# The OpenAPI tests run Python's openapi-spec-validator and jsonschema, installed with pip in a
# virtual environment under target/, and the AsyncAPI initiative's parser (@asyncapi/parser),
# installed with npm under target/.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo clippy -D warnings (SQLite-only build, without the postgres feature)"
cargo clippy -p jxp --all-targets --locked --no-default-features -- -D warnings

log="$(mktemp)"
pgdir=""
pgbin=""
as_pg=()
cleanup() {
    if [[ -n "$pgdir" && -f "$pgdir/data/postmaster.pid" ]]; then
        "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    [[ -n "$pgdir" ]] && rm -rf "$pgdir"
    rm -f "$log"
}
trap cleanup EXIT

# PostgreSQL's server binaries: on PATH, or where Debian puts them (newest version first).
find_pgbin() {
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return
    fi
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
            echo "$d"
            return
        fi
    done
}

# A throwaway CA and a server certificate for 127.0.0.1 in $1, for the cluster's TLS: the
# PostgreSQL run is then encrypted (sslmode=prefer) and the TLS tests check verification.
make_test_certs() {
    local dir="$1"
    if ! command -v openssl >/dev/null; then
        [[ "$(id -u)" -eq 0 ]] || { echo "openssl is missing and installing it needs root" >&2; return 1; }
        echo "== installing openssl from Debian's packages"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
    fi
    mkdir -p "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=jxp test CA" \
        -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
        >"$dir/ext.cnf"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
        -CAcreateserial -days 2 -extfile "$dir/ext.cnf" -out "$dir/server.crt" 2>/dev/null
    chmod 600 "$dir/server.key"
    if [[ "$(id -u)" -eq 0 ]]; then
        chown -R postgres "$dir"
    fi
}

start_postgres() {
    pgbin="$(find_pgbin)"
    if [[ -z "$pgbin" ]]; then
        if [[ "$(id -u)" -ne 0 ]]; then
            echo "PostgreSQL is not installed and installing it needs root" >&2
            return 1
        fi
        echo "== installing PostgreSQL from Debian's packages"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq postgresql >/dev/null
        pgbin="$(find_pgbin)"
        [[ -n "$pgbin" ]] || { echo "no initdb/pg_ctl after installing postgresql" >&2; return 1; }
    fi
    pgdir="$(mktemp -d /tmp/jxp-pg.XXXXXX)"
    # initdb refuses to run as root: the cluster belongs to an ordinary user then.
    if [[ "$(id -u)" -eq 0 ]]; then
        id -u postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        chown postgres "$pgdir"
        as_pg=(runuser -u postgres --)
    fi
    "${as_pg[@]}" "$pgbin/initdb" -D "$pgdir/data" -U jxp --auth=trust --encoding=UTF8 \
        --locale=C.UTF-8 >"$pgdir/initdb.log" 2>&1 || { cat "$pgdir/initdb.log" >&2; return 1; }
    make_test_certs "$pgdir/tls" || { echo "cannot make the test certificates" >&2; return 1; }
    local tls="-c ssl=on -c ssl_cert_file=$pgdir/tls/server.crt -c ssl_key_file=$pgdir/tls/server.key"
    local try port
    for try in 1 2 3 4 5 6 7 8; do
        port=$((20000 + RANDOM % 40000))
        # Taken if something answers there.
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            continue
        fi
        if "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -t 60 \
            -o "-p $port -k $pgdir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 $tls" \
            start >/dev/null; then
            export JXP_TEST_DATABASE_URL="postgres://jxp@127.0.0.1:$port/postgres"
            export JXP_TEST_PG_CA="$pgdir/tls/ca.crt"
            echo "== PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
            return 0
        fi
    done
    cat "$pgdir/server.log" >&2 || true
    return 1
}

# The browser tests' Chromium: the one JXP_TEST_CHROMIUM names, or Debian's, installed when
# missing (the package lists are refreshed only if the install fails without).
install_chromium() {
    if [[ -n "${JXP_TEST_CHROMIUM:-}" || -x /usr/bin/chromium ]]; then
        return 0
    fi
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "Chromium is missing and installing it needs root: the browser tests will skip" >&2
        return 0
    fi
    echo "== installing Chromium from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq chromium >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
}

# The OpenAPI tests' validators, in a virtual environment the tests find by JXP_TEST_PYTHON;
# those tests skip, saying so, where it cannot be made (no python3, no network for pip).
install_python_validators() {
    local venv="${CARGO_TARGET_DIR:-target}/test-python"
    if [[ ! -x "$venv/bin/python" ]]; then
        command -v python3 >/dev/null || { echo "python3 is missing" >&2; return 1; }
        python3 -m venv "$venv" >/dev/null 2>&1 ||
            { echo "python3 cannot make a virtual environment (python3-venv)" >&2; return 1; }
    fi
    if ! "$venv/bin/python" -c "import openapi_spec_validator, jsonschema" 2>/dev/null; then
        echo "== installing openapi-spec-validator and jsonschema with pip"
        "$venv/bin/pip" install -q openapi-spec-validator jsonschema >/dev/null || return 1
    fi
    JXP_TEST_PYTHON="$(cd "$(dirname "$venv")" && pwd)/$(basename "$venv")/bin/python"
    export JXP_TEST_PYTHON
}

# The AsyncAPI test's parser, a pinned version under target/test-node that the test finds by
# JXP_TEST_NODE_PATH; that test skips, saying so, where it cannot be installed (no node or npm,
# no network for npm).
ASYNCAPI_PARSER_VERSION=3.6.6
install_node_validators() {
    local prefix="${CARGO_TARGET_DIR:-target}/test-node"
    command -v node >/dev/null || { echo "node is missing" >&2; return 1; }
    if [[ "$(cd "$prefix" 2>/dev/null && node -p "require('@asyncapi/parser/package.json').version" 2>/dev/null)" != "$ASYNCAPI_PARSER_VERSION" ]]; then
        command -v npm >/dev/null || { echo "npm is missing" >&2; return 1; }
        echo "== installing @asyncapi/parser@$ASYNCAPI_PARSER_VERSION with npm"
        mkdir -p "$prefix"
        npm install --prefix "$prefix" --ignore-scripts --no-audit --no-fund --silent \
            "@asyncapi/parser@$ASYNCAPI_PARSER_VERSION" >/dev/null || return 1
    fi
    JXP_TEST_NODE_PATH="$(cd "$prefix" && pwd)/node_modules"
    export JXP_TEST_NODE_PATH
}

status=0
install_node_validators ||
    echo "cannot install the AsyncAPI parser: the test that uses it will skip" >&2
install_python_validators ||
    echo "cannot install the OpenAPI validators: the tests that use them will skip" >&2
install_chromium || { echo "cannot install Chromium: the browser tests will skip" >&2; status=1; }
echo "== cargo test (SQLite)"
env -u JXP_TEST_DATABASE_URL -u JXP_TEST_PG_CA cargo test --workspace --locked 2>&1 | tee -a "$log" || status=1
echo "== cargo test (SQLite-only build: a postgres:// URL is refused)"
cargo test -p jxp --locked --no-default-features --test without_postgres 2>&1 | tee -a "$log" || status=1
if start_postgres; then
    echo "== cargo test (PostgreSQL)"
    cargo test --workspace --locked 2>&1 | tee -a "$log" || status=1
else
    echo "cannot start PostgreSQL: the PostgreSQL run failed" >&2
    echo "test result: FAILED. 0 passed; 1 failed;" >>"$log"
    status=1
fi
# One closing line for the whole run, summed over every test binary of both runs.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
