#!/usr/bin/env bash
# pg-test.sh - a throwaway PostgreSQL 15 server for tests, on a free loopback
# port, with trust authentication and a database named tracelake_test.
#
#   pg-test.sh start DIR   initdb into DIR/data, start, create the database,
#                          write the URI to DIR/uri
#   pg-test.sh stop DIR    stop the server (immediate) and remove DIR
#   pg-test.sh down DIR    stop the server, keep its data (tests of outages)
#   pg-test.sh up DIR      start it again on the same port
#
# As root the server runs as the `postgres` user (PostgreSQL refuses to run
# as root); otherwise as the current user. Binaries: $PG_BIN, default
# /usr/lib/postgresql/15/bin. The packaged cluster is neither used nor
# touched.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

die() {
  echo "pg-test.sh: $*" >&2
  exit 1
}

usage() { die "usage: pg-test.sh start|stop|down|up DIR"; }

[ $# -eq 2 ] || usage
cmd=$1
dir=$2
case $dir in
/*) ;;
*) dir=$PWD/$dir ;;
esac
# PostgreSQL tools look up their own path and fail in a directory the server
# user cannot read (e.g. root's home): run everything from /.
cd /

if [ "$(id -u)" -eq 0 ]; then
  getent passwd postgres >/dev/null ||
    die "running as root needs a 'postgres' user (apt-get install postgresql-15)"
  as_pg() {
    if command -v runuser >/dev/null; then
      runuser -u postgres -- "$@"
    else
      su -s /bin/sh postgres -c "$(printf '%q ' "$@")"
    fi
  }
else
  as_pg() { "$@"; }
fi

[ -x "$PG_BIN/initdb" ] || die "no PostgreSQL binaries in $PG_BIN (set PG_BIN)"

# The data directory: DIR/data, or a private directory under /tmp when the
# server user cannot reach DIR (its path is kept in DIR/datadir).
datadir() { cat "$dir/datadir"; }

port_busy() {
  local port=$1
  if command -v ss >/dev/null; then
    [ -n "$(ss -Htln "sport = :$port" 2>/dev/null)" ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
  fi
}

server_start() {
  as_pg "$PG_BIN/pg_ctl" -D "$(datadir)" -l "$(datadir)/../server.log" \
    -w -t 60 start >/dev/null
}

start() {
  if [ -e "$dir" ]; then
    if [ -f "$dir/datadir" ]; then
      stop # a leftover from an interrupted run
    elif [ -n "$(ls -A "$dir")" ]; then
      die "$dir exists and is not empty"
    fi
  fi
  mkdir -p "$dir"
  local data=$dir/data base=$dir
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$dir"
    if ! as_pg test -w "$dir"; then
      base=$(mktemp -d /tmp/tl-pg-test.XXXXXX)
      chown postgres: "$base"
      data=$base/data
    fi
  fi
  echo "$data" >"$dir/datadir"
  as_pg "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 \
    --no-locale --no-sync --no-instructions >"$dir/initdb.log" 2>&1 ||
    die "initdb failed: $(cat "$dir/initdb.log")"
  # Throwaway data: durability off, no Unix socket (its default directory
  # may not exist), TCP on loopback only.
  as_pg sh -c "cat >>'$data/postgresql.conf'" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 16MB
max_connections = 200
EOF
  # Try free-looking ports from a random start; another process may grab
  # one between the check and the bind, so a failed start moves on.
  local port=$((20000 + RANDOM % 20000)) tries=0
  while :; do
    tries=$((tries + 1))
    [ $tries -le 20 ] || die "no free port found; see $base/server.log"
    port=$((port + 1))
    port_busy "$port" && continue
    as_pg sh -c "sed -i '/^port = /d' '$data/postgresql.conf' &&
                 echo 'port = $port' >>'$data/postgresql.conf'"
    server_start && break
  done
  "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres tracelake_test ||
    die "createdb failed"
  echo "$port" >"$dir/port"
  echo "postgresql://postgres@127.0.0.1:$port/tracelake_test" >"$dir/uri"
}

stop() {
  [ -e "$dir" ] || return 0
  [ -f "$dir/datadir" ] || die "$dir was not made by pg-test.sh start"
  local data
  data=$(datadir)
  if [ -f "$data/postmaster.pid" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 ||
      true
  fi
  case $data in
  "$dir"/*) ;;
  *) rm -rf "$(dirname "$data")" ;;
  esac
  rm -rf "$dir"
}

case $cmd in
start) start ;;
stop) stop ;;
down)
  as_pg "$PG_BIN/pg_ctl" -D "$(datadir)" -m fast -w stop >/dev/null
  ;;
up) server_start ;;
*) usage ;;
esac
