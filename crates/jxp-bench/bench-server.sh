# Sourced by side-by-side.sh and instructions.sh: one jxp server set up for `jxp-bench rest`.
#
#   start_server WORK NAME=BIN[|K=V,K=V…] PORT [WRAPPER…]
#
# Makes WORK/NAME with the bench model `test` (and, for TEST_JS=FILE among the settings, FILE
# as its script hooks `models/test.js`), adds admin@example.com, starts `BIN serve` on PORT
# (under WRAPPER, e.g. `taskset -c 0` or valgrind, when given) with its log in LOGTO or
# WORK/NAME/log, and sets SERVER_PID, SERVER_NAME and SERVER_DIR.
#
#   ready_server PORT
#
# Waits for the server on PORT and adds user@example.com, whom the load generator logs in as.
start_server() {
  local work=$1 spec=$2 port=$3
  shift 3
  local name=${spec%%=*} rest=${spec#*=} settings="" bin dir e extra
  bin=$(realpath "${rest%%|*}")
  [[ "$rest" == *"|"* ]] && settings=${rest#*|}
  dir=$work/$name
  mkdir -p "$dir/models"
  printf 'name = "Test"\n[fields]\nfoo = "String"\nbar = "String"\nn = "Number"\n[perms]\nadmin = "crud"\nuser = "crud"\n' >"$dir/models/test.toml"
  local env_=(PORT=$port HOST=127.0.0.1 MODEL_DIR="$dir/models" SHARED_SECRET=side-by-side-secret-0123456789abcdef
    LOGIN_RATE_LIMIT_ENABLED=false METRICS_ENABLED=false RUST_LOG=info,jxp::access=off)
  IFS=',' read -ra extra <<<"$settings"
  for e in "${extra[@]}"; do
    case "$e" in
      TEST_JS=*) cp "${e#TEST_JS=}" "$dir/models/test.js" ;;
      ?*) env_+=("$e") ;;
    esac
  done
  (cd "$dir" && env "${env_[@]}" "$bin" add-admin --email admin@example.com --password adminpass123 --name Admin >/dev/null)
  (cd "$dir" && exec env "${env_[@]}" "$@" "$bin" serve >"${LOGTO:-$dir/log}" 2>&1 </dev/null) &
  SERVER_PID=$! SERVER_NAME=$name SERVER_DIR=$dir
}

ready_server() {
  local base=http://127.0.0.1:$1 token
  for _ in $(seq 600); do curl -fsS "$base/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  token=$(curl -fsS -X POST "$base/login" -H 'Content-Type: application/json' \
    -d '{"email":"admin@example.com","password":"adminpass123"}' |
    python3 -c 'import sys, json; print(json.load(sys.stdin)["token"])')
  curl -fsS -o /dev/null -X POST "$base/api/user" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' \
    -d '{"name":"Bench User","email":"user@example.com","password":"userpass123"}'
}
