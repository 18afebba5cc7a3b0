#!/usr/bin/env bash
# Two jxp servers measured at the same time, each with its own load generator on its own CPU,
# so that whatever slows the machine down slows both alike (README: "Two servers at once").
#
#   crates/jxp-bench/side-by-side.sh ROUNDS SECONDS OP 'a=BIN[|K=V,K=V…]' 'b=BIN[|K=V…]'
#
# OP is a `jxp-bench rest --op` (get, post). BIN is a jxp binary; K=V are settings for that
# server, e.g. 'on=target/release/jxp|METRICS_ENABLED=true,RUST_LOG=info'; TEST_JS=FILE puts
# FILE beside the model as its script hooks (`models/test.js`). Both servers get the bench model
# `test` and the users admin@example.com / user@example.com. Every round runs
# A and its generator on CPU r%2 and B and its generator on the other, swapping each round;
# it prints per round and at the end the medians of B÷A throughput and of A÷B server CPU time
# a request (`utime + stime` of the whole process over the requests it answered).
# Env: BENCH (the jxp-bench binary, default target/release/jxp-bench), CONC (32), LOGTO (where
# the servers' logs go, default a file beside each), KEEP=1 keeps the work directory, PIN=0
# pins nothing: both servers and both generators share every CPU, as a server with more than
# one CPU runs (its threads then see them all).
set -euo pipefail
if [ $# -ne 5 ]; then
  sed -n '2,17p' "$0" >&2
  exit 2
fi
ROUNDS=$1 SECONDS_=$2 OP=$3
BENCH=${BENCH:-target/release/jxp-bench}
CONC=${CONC:-32}
WORK=$(mktemp -d /tmp/jxp-side-by-side.XXXXXX)
[ "${KEEP:-}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
names=() pids=() ports=()
port=$((4700 + RANDOM % 1000))
source "$(dirname "$0")/bench-server.sh"
pin=(taskset -c 0)
[ "${PIN:-1}" = 0 ] && pin=()
for spec in "$4" "$5"; do
  port=$((port + 1))
  start_server "$WORK" "$spec" $port "${pin[@]}"
  pids+=($SERVER_PID) names+=("$SERVER_NAME") ports+=($port)
done
trap 'kill "${pids[@]}" 2>/dev/null || true; [ "${KEEP:-}" = 1 ] || rm -rf "$WORK"' EXIT
for port in "${ports[@]}"; do
  ready_server $port
done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
to_cpu() { for task in /proc/"$1"/task/*; do taskset -pc "$2" "${task##*/}" >/dev/null; done; }
for round in $(seq "$ROUNDS"); do
  cpu_a=$((round % 2)) cpu_b=$((1 - round % 2))
  if [ "${PIN:-1}" != 0 ]; then
    to_cpu "${pids[0]}" $cpu_a
    to_cpu "${pids[1]}" $cpu_b
  fi
  before_a=$(cpu_ticks "${pids[0]}") before_b=$(cpu_ticks "${pids[1]}")
  generators=()
  for i in 0 1; do
    cpu=$([ $i = 0 ] && echo $cpu_a || echo $cpu_b)
    pin=(taskset -c "$cpu")
    [ "${PIN:-1}" = 0 ] && pin=()
    "${pin[@]}" "$BENCH" rest --base "http://127.0.0.1:${ports[$i]}" \
      --email user@example.com --password userpass123 --op "$OP" --concurrency "$CONC" \
      --duration-s "$SECONDS_" --warmup-s 0 >"$WORK/$i.json" 2>/dev/null &
    generators+=($!)
  done
  wait "${generators[@]}"
  ticks_a=$(($(cpu_ticks "${pids[0]}") - before_a)) ticks_b=$(($(cpu_ticks "${pids[1]}") - before_b))
  echo "$round $(python3 -c 'import json, sys; print(" ".join(str(json.load(open(f))["requests"]) for f in sys.argv[1:]))' "$WORK/0.json" "$WORK/1.json") $ticks_a $ticks_b" >>"$WORK/rounds"
  tail -1 "$WORK/rounds"
done
python3 - "$WORK/rounds" "${names[0]}" "${names[1]}" "$SECONDS_" <<'PY'
import statistics, sys
rounds = [list(map(int, line.split())) for line in open(sys.argv[1])]
a, b, seconds = sys.argv[2], sys.argv[3], int(sys.argv[4])
rps = [rb / ra for _, ra, rb, _, _ in rounds]
cpu = [(ta / ra) / (tb / rb) for _, ra, rb, ta, tb in rounds]
us = lambda t, r: t * 1e4 / r
print(f"{b} / {a} throughput: median {statistics.median(rps):.3f}, rounds {' '.join(f'{x:.3f}' for x in rps)}")
print(f"{a} / {b} server CPU a request: median {statistics.median(cpu):.3f}, rounds {' '.join(f'{x:.3f}' for x in cpu)}")
print(f"{a}: {statistics.median([r / seconds for _, r, _, _, _ in rounds]):.0f} req/s, "
      f"{statistics.median([us(t, r) for _, r, _, t, _ in rounds]):.2f} us CPU a request; "
      f"{b}: {statistics.median([r / seconds for _, _, r, _, _ in rounds]):.0f} req/s, "
      f"{statistics.median([us(t, r) for _, _, r, _, t in rounds]):.2f} us")
PY
