#!/usr/bin/env bash
# LocalStack in host mode (no Docker) for SQS, S3 and Logs, in its own Python 3.13
# virtualenv: LocalStack 2026.3 does not start on 3.11 or 3.12. Its DynamoDB needs
# Java and its Lambda needs Docker, so the project pairs it with the embedded moto
# server for DynamoDB (see "Endpoints" in the README).
#
#   scripts/localstack.sh up     install if needed, start, wait for health; prints the PID
#   scripts/localstack.sh down PID
#
# LOCALSTACK_VENV (default .dl-local/localstack-venv) and LOCALSTACK_PORT (4566) override.
set -eu
VENV=${LOCALSTACK_VENV:-.dl-local/localstack-venv}
PORT=${LOCALSTACK_PORT:-4566}

python313() {
  # pyenv's shim is on PATH even where 3.13 is not selected: try each candidate.
  for candidate in \
      $(command -v pyenv >/dev/null 2>&1 && ls -d "$(pyenv root)"/versions/3.13*/bin/python3.13 2>/dev/null) \
      python3.13; do
    if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
      echo "$candidate"
      return
    fi
  done
}

up() {
  if [ ! -x "$VENV/bin/python" ]; then
    PY=$(python313)
    [ -n "$PY" ] || { echo "LocalStack needs Python 3.13 (python3.13 or pyenv): not found" >&2; exit 1; }
    "$PY" -m venv "$VENV"
    # Pins that start here (2026-11); newer cbor2/pyopenssl/joserfc break this release.
    "$VENV/bin/pip" install -q 'localstack-core[runtime]==2026.3.0' localstack-client \
      'cbor2<5.8' 'pyopenssl==24.3.0' 'cryptography==44.0.3' service-identity 'joserfc<1.3'
  fi
  work=$(mktemp -d "${TMPDIR:-/tmp}/dl-localstack.XXXX")
  HOME=$work CONFIG_DIR=$work/config FILESYSTEM_ROOT=$work/root \
    GATEWAY_LISTEN=127.0.0.1:$PORT DNS_ADDRESS=0 DISABLE_EVENTS=1 SQS_ENDPOINT_STRATEGY=path \
    SERVICES=s3,sqs,logs \
    nohup "$VENV/bin/python" -m localstack.runtime.main >"$work/localstack.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 120); do
    if curl -sf "http://127.0.0.1:$PORT/_localstack/health" >/dev/null 2>&1; then
      echo "$pid"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  echo "LocalStack did not become ready; log: $work/localstack.log" >&2
  kill "$pid" 2>/dev/null || true
  exit 1
}

down() {
  pid=${1:?usage: scripts/localstack.sh down PID}
  kill "$pid" 2>/dev/null || exit 0
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 1; done
  kill -9 "$pid" 2>/dev/null || true
}

case "${1:-}" in
  up) up ;;
  down) shift; down "$@" ;;
  *) echo "usage: scripts/localstack.sh up | down PID" >&2; exit 2 ;;
esac
