# Sourced by scripts/test and scripts/run: makes a fresh Debian machine ready, idempotently.
# Installs the Debian packages the project runs against (mosquitto, influxdb, python3-venv, and
# chromium for the browser tests) when missing, creates .venv and installs the project with its
# dev tools when pyproject.toml or deploy/requirements.lock changed.

need_packages=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_packages+=(mosquitto)
command -v influxd >/dev/null 2>&1 || [ -x /usr/bin/influxd ] || need_packages+=(influxdb)
# The browser tests (scripts/test sets EQUIPMON_BROWSER_TESTS=1) drive Debian's headless Chromium.
if [ "${EQUIPMON_BROWSER_TESTS:-0}" = 1 ] && ! [ -x /usr/bin/chromium ]; then
  need_packages+=(chromium)
fi
PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  need_packages+=(python3 python3-venv python3-dev)
elif ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  need_packages+=(python3-venv)
fi
if [ ${#need_packages[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "equipmon: missing Debian packages: ${need_packages[*]} (run as root, or: sudo apt-get install ${need_packages[*]})" >&2
    exit 1
  fi
  echo "equipmon: installing Debian packages: ${need_packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d 101 keeps the packages' own service units from starting system-wide daemons:
  # equipmon runs its own Mosquitto and InfluxDB with project-local data.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq "${need_packages[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "equipmon: Python >= 3.11 is required; $("$PYTHON" --version) found" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "equipmon: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.equipmon-installed
# The runtime versions are those the image installs (deploy/requirements.lock), so the tests run
# on exactly what ships; the dev tools resolve freely.
want=$(cat pyproject.toml deploy/requirements.lock | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "equipmon: installing the project and its tools into .venv"
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -m pip install -q -c deploy/requirements.lock -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c 'import telemetry, paho.mqtt, influxdb_client, fastapi, sklearn, serial, pymodbus' \
    || { echo "equipmon: installing the Python packages failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
