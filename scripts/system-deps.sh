#!/bin/sh
# System packages the tests need: Debian's chromium (HTML report test), systemd-container
# (systemd-nspawn for the systemd tests), PostgreSQL 15 server binaries. Installs what is missing
# when run as root with apt-get; otherwise says what to install and exits non-zero. As root it
# also makes the postgres system user and /run/systemd/nspawn.
set -e
need=""
command -v chromium >/dev/null 2>&1 || need="$need chromium"
command -v systemd-nspawn >/dev/null 2>&1 || need="$need systemd-container"
[ -x /usr/lib/postgresql/15/bin/initdb ] || need="$need postgresql-15"
if [ "$(id -u)" = 0 ]; then
  # PostgreSQL refuses to run as root: the tests run their throwaway cluster as "postgres".
  id postgres >/dev/null 2>&1 || useradd --system --user-group --no-create-home --shell /usr/sbin/nologin postgres
  # test/systemd.test.ts mounts a tmpfs here inside its own mount namespace.
  mkdir -p /run/systemd/nspawn
fi
[ -z "$need" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test setup: installing$need (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends $need >/dev/null
else
  echo "test setup: missing system packages:$need (install them with apt-get as root)" >&2
  exit 1
fi
