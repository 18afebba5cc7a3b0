#!/usr/bin/env bash
# What a request costs each server in instructions, counted by valgrind's callgrind: a
# figure that, unlike throughput on a shared machine, reads the same from run to run, for
# weighing a change or a setting (README: "Instructions a request").
#
#   crates/jxp-bench/instructions.sh SECONDS OP 'a=BIN[|K=V,K=V…]' ['b=BIN[|K=V…]' …]
#
# OP and the specs are side-by-side.sh's. Each server runs alone under callgrind; once the
# load generator's user exists, WARMUP (4) seconds of the same load run first, so that what
# the server makes once (a request worker's script runtime) is left out. Then its counts are
# zeroed, `jxp-bench rest --op OP` runs for SECONDS at CONC (4) connections, and every
# instruction the process ran meanwhile (all its threads), less bcrypt's (the generator's
# log-in), is divided by the requests it answered (and the documents it preloaded for `get`:
# PRELOAD, 20, so few that their POSTs weigh less than 1% on a GET's figure). What the kernel
# does for the process (its system calls, its writes to the log) is not counted. Prints each
# server's figure and its ratio to the first one's. Needs valgrind (Debian's `valgrind`
# package). KEEP=1 keeps the work directory, with each server's dump (NAME.cg.1) for
# callgrind_annotate.
set -euo pipefail
if [ $# -lt 3 ]; then
  sed -n '2,19p' "$0" >&2
  exit 2
fi
SECONDS_=$1 OP=$2
shift 2
BENCH=${BENCH:-target/release/jxp-bench}
CONC=${CONC:-4} PRELOAD=${PRELOAD:-20} WARMUP=${WARMUP:-4}
WORK=$(mktemp -d /tmp/jxp-instructions.XXXXXX)
[ "${KEEP:-}" = 1 ] && echo "work directory: $WORK" || trap 'rm -rf "$WORK"' EXIT
source "$(dirname "$0")/bench-server.sh"
port=$((5700 + RANDOM % 1000))
# callgrind_control finds the server by a file name that holds $HOST, which the server's
# settings set.
export HOST=127.0.0.1
first=""
for spec in "$@"; do
  port=$((port + 1))
  start_server "$WORK" "$spec" $port valgrind --tool=callgrind --callgrind-out-file="$WORK/${spec%%=*}.cg"
  pid=$SERVER_PID name=$SERVER_NAME
  ready_server $port
  # Warmed first, so that what a server makes once (a request worker's script runtime, its
  # statement caches) is not counted against the few thousand requests of the run.
  if [ "$WARMUP" != 0 ]; then
    "$BENCH" rest --base "http://127.0.0.1:$port" --email user@example.com --password userpass123 \
      --op "$OP" --concurrency "$CONC" --duration-s "$WARMUP" --warmup-s 0 --preload "$PRELOAD" \
      >/dev/null 2>&1
  fi
  callgrind_control -z "$pid" >/dev/null 2>&1
  "$BENCH" rest --base "http://127.0.0.1:$port" --email user@example.com --password userpass123 \
    --op "$OP" --concurrency "$CONC" --duration-s "$SECONDS_" --warmup-s 0 --preload "$PRELOAD" \
    >"$WORK/$name.json" 2>/dev/null
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  # The dump holds the counts since the zeroing; the file written at exit, the rest.
  dump=$(ls "$WORK/$name.cg".* | head -1)
  per=$(python3 - "$dump" "$WORK/$name.json" "$OP" "$PRELOAD" <<'PY'
import json, re, subprocess, sys
dump, report, op, preload = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", dump],
                     capture_output=True, text=True, check=True).stdout
num = lambda line: int(line.split()[0].replace(",", ""))
total = next(num(l) for l in out.splitlines() if "PROGRAM TOTALS" in l)
bcrypt = max([num(l) for l in out.splitlines() if re.search(r"bcrypt::_hash_password\b", l)] or [0])
requests = json.load(open(report))["requests"] + (preload if op == "get" else 0)
print(f"{(total - bcrypt) / requests:.0f}")
PY
)
  [ -z "$first" ] && first=$per
  python3 -c "import sys; print(f'{sys.argv[1]}: {int(sys.argv[2]):,} instructions a request, {int(sys.argv[2]) / int(sys.argv[3]):.3f} of the first')" "$name" "$per" "$first"
done
