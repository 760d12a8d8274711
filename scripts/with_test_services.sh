#!/usr/bin/env bash
# Run a command with a PostgreSQL and a Redis server available.
#
#   scripts/with_test_services.sh COMMAND [ARG...]
#
# For each service: if something already answers at the configured host:port,
# use it; otherwise start a throwaway server in a temporary directory (installing
# the Debian package first if needed and we are root), and stop it again when the
# command finishes or the script is interrupted. Servers this script did not
# start are never stopped.
#
# Environment (inputs):
#   TEST_DATABASE_URL  default postgres://postgres@127.0.0.1:5432/experiments
#   TEST_BROKER_URL    default redis://127.0.0.1:6379/15
# Environment given to COMMAND:
#   DATABASE_URL=$TEST_DATABASE_URL
#   CELERY_BROKER_URL=$TEST_BROKER_URL  CELERY_RESULT_BACKEND=$TEST_BROKER_URL
#
# Exits with COMMAND's exit code; 129/130/143 if the script gets HUP/INT/TERM.
# Progress messages go to stderr; stdout belongs to COMMAND.
# See docs/testing.md.
# shellcheck disable=SC2329  # cleanup, on_signal and their helpers run from traps
set -euo pipefail

readonly PROG=${0##*/}
TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/experiments}
TEST_BROKER_URL=${TEST_BROKER_URL:-redis://127.0.0.1:6379/15}
readonly START_TIMEOUT=60   # seconds to wait for a server we started

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { say "error: $*"; exit 1; }

if (($# == 0)); then
    echo "usage: $PROG COMMAND [ARG...]" >&2
    exit 2
fi

# --- state used by cleanup ---------------------------------------------------
# These are set *before* a server is started, and cleanup looks at the pid files
# inside the directories, so a signal arriving mid-start still cleans up.
pg_dir=""          # temp dir of the PostgreSQL we started (data in $pg_dir/data)
pg_bin=""          # directory holding initdb/pg_ctl
redis_dir=""       # temp dir of the Redis we started (pid in $redis_dir/redis.pid)
policy_rc_d=""     # set while we have a temporary /usr/sbin/policy-rc.d in place
child=""           # pid of COMMAND

# --- helpers ---------------------------------------------------------------

# parse_url URL -> sets url_host url_port url_user url_password url_path
# (python3 is always available and gets IPv6 brackets, %-escapes etc. right)
parse_url() {
    local default_port=$2 out
    out=$(python3 - "$1" "$default_port" <<'PY'
import sys
from urllib.parse import urlsplit, unquote
u = urlsplit(sys.argv[1])
for v in (u.hostname or "127.0.0.1", u.port or int(sys.argv[2]),
          unquote(u.username or ""), unquote(u.password or ""),
          unquote(u.path.lstrip("/"))):
    print(v)
print(".")  # sentinel: $(...) would strip trailing empty lines
PY
    ) || die "cannot parse URL: $1"
    { read -r url_host; read -r url_port; read -r url_user
      read -r url_password; read -r url_path; } <<<"$out"
}

have() { command -v "$1" >/dev/null 2>&1; }

# True if something accepts TCP connections on host:port (no client tools needed).
port_open() {
    # shellcheck disable=SC2016  # $1/$2 are expanded by the inner bash
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

pg_ready() {   # host port
    if have pg_isready; then
        pg_isready -q -h "$1" -p "$2" -t 3
    else
        port_open "$1" "$2"
    fi
}

redis_cli_args=()   # auth options for redis-cli, filled from the broker URL
redis_ready() {   # host port
    if have redis-cli; then
        [[ $(timeout 5 redis-cli -h "$1" -p "$2" "${redis_cli_args[@]}" ping 2>/dev/null) == PONG ]]
    else
        port_open "$1" "$2"
    fi
}

# wait_until SECONDS CMD...: retry CMD every 0.2 s until it succeeds.
wait_until() {
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

am_root() { [[ $(id -u) == 0 ]]; }

# True while process PID runs. A zombie counts as gone: a daemonized server is
# re-parented to PID 1, which in some containers never reaps it.
alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]]
}
gone() { ! alive "$1"; }

# Run a command as the PostgreSQL owner: initdb and postgres refuse to run as
# root, so as root we switch to the "postgres" system user.
as_pg() {
    if ! am_root; then
        "$@"
    elif have runuser; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && su -s /bin/bash postgres -c "$(printf '%q ' "$@")")
    fi
}

# Install Debian packages without letting their maintainer scripts start the
# system service (a temporary policy-rc.d answering 101 = "action forbidden",
# only if none exists already). We want a throwaway server we control; e.g. the
# cluster Debian's postgresql package creates only allows password logins over
# TCP. If a service starts anyway, the callers re-probe and simply use it.
apt_install() {
    am_root || die "$* not installed, and not root: install it, or point the TEST_*_URL variables at running servers"
    have apt-get || die "$* not installed and no apt-get to install it"
    say "installing $* with apt-get"
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        policy_rc_d=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\n# temporary, from %s\nexit 101\n' "$PROG" >"$policy_rc_d"
        chmod 755 "$policy_rc_d"
    fi
    local rc=0
    { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"; } >&2 || rc=$?
    if [[ -n $policy_rc_d ]]; then rm -f "$policy_rc_d"; policy_rc_d=""; fi
    ((rc == 0)) || die "apt-get install $* failed"
}

find_pg_bin() {
    local initdb candidates=(/usr/lib/postgresql/*/bin/initdb)
    # Debian/Ubuntu keep server binaries outside PATH; take the newest version.
    initdb=""
    if [[ -x ${candidates[0]} ]]; then
        initdb=$(printf '%s\n' "${candidates[@]}" | sort -V | tail -n 1)
    fi
    if [[ -z $initdb ]] && have initdb; then initdb=$(command -v initdb); fi
    [[ -n $initdb && -x ${initdb%/*}/pg_ctl ]] || return 1
    pg_bin=${initdb%/*}
}

# --- cleanup -----------------------------------------------------------------

cleanup() {
    local rc=$?
    set +e
    trap '' INT TERM HUP   # don't let an impatient second Ctrl-C skip the cleanup
    if [[ -n $policy_rc_d ]]; then rm -f "$policy_rc_d"; fi
    if [[ -n $redis_dir ]]; then
        if [[ -s $redis_dir/redis.pid ]]; then
            local pid; pid=$(<"$redis_dir/redis.pid")
            say "stopping the throwaway Redis (pid $pid)"
            # SIGTERM = clean shutdown; nothing is saved since persistence is off.
            kill "$pid" 2>/dev/null
            wait_until 10 gone "$pid" || kill -9 "$pid" 2>/dev/null
        fi
        rm -rf "$redis_dir"
    fi
    if [[ -n $pg_dir ]]; then
        if [[ -e $pg_dir/data/postmaster.pid ]]; then
            say "stopping the throwaway PostgreSQL"
            as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast -w -t 30 stop >/dev/null
        fi
        rm -rf "$pg_dir"
    fi
    exit "$rc"
}

# On INT/TERM/HUP: let COMMAND finish first (pytest tears down its test database on
# Ctrl-C and needs the server for that), then exit -> EXIT trap -> cleanup.
on_signal() {
    local sig=$1 code=$2
    if [[ -n $child ]] && alive "$child"; then
        if [[ $sig == INT ]]; then
            # A terminal Ctrl-C reaches COMMAND directly (same process group);
            # forward only if it is still running after a grace period, so it
            # doesn't see a second interrupt while tearing down.
            wait_until 5 gone "$child" || kill -INT "$child" 2>/dev/null || true
        else
            kill "-$sig" "$child" 2>/dev/null || true
        fi
        wait "$child" 2>/dev/null || true
    fi
    exit "$code"
}

trap cleanup EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap 'on_signal HUP 129' HUP     # terminal closed

# --- PostgreSQL ----------------------------------------------------------------

parse_url "$TEST_DATABASE_URL" 5432
pg_host=$url_host pg_port=$url_port pg_user=${url_user:-postgres} pg_db=$url_path

start_postgres() {
    find_pg_bin || {
        apt_install postgresql
        # The package may have started its own cluster on our port after all.
        if pg_ready "$pg_host" "$pg_port"; then return 0; fi
        find_pg_bin || die "PostgreSQL installed but initdb/pg_ctl not found"
    }
    if am_root && ! id postgres >/dev/null 2>&1; then
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
                --shell /usr/sbin/nologin postgres
    fi
    pg_dir=$(mktemp -d -t test-postgres.XXXXXX)
    chmod 700 "$pg_dir"
    if am_root; then chown postgres: "$pg_dir"; fi
    say "starting a throwaway PostgreSQL ($pg_bin) in $pg_dir on $pg_host:$pg_port"
    # trust auth: any user connects without a password; -U makes the URL's user
    # the superuser, so it can create the test database.
    as_pg "$pg_bin/initdb" -D "$pg_dir/data" --auth=trust -U "$pg_user" \
        -E UTF8 --no-locale --no-sync >"$pg_dir/initdb.log" 2>&1 ||
        { cat "$pg_dir/initdb.log" >&2; die "initdb failed"; }
    # Durability is pointless for a throwaway server; turning it off speeds tests up.
    as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/postgres.log" -w -t "$START_TIMEOUT" \
        -o "-h '$pg_host' -p $pg_port -k '$pg_dir' -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null ||
        { tail -n 20 "$pg_dir/postgres.log" >&2; die "PostgreSQL did not start"; }
    wait_until "$START_TIMEOUT" pg_ready "$pg_host" "$pg_port" ||
        { tail -n 20 "$pg_dir/postgres.log" >&2; die "PostgreSQL does not answer on $pg_host:$pg_port"; }
    # Create the database named in the URL too, so DATABASE_URL works for
    # commands other than the test runner (which makes its own test_<name>).
    if [[ -n $pg_db && $pg_db != postgres ]]; then
        "$pg_bin/createdb" -h "$pg_host" -p "$pg_port" -U "$pg_user" "$pg_db"
    fi
}

if pg_ready "$pg_host" "$pg_port"; then
    say "using PostgreSQL at $pg_host:$pg_port"
elif port_open "$pg_host" "$pg_port"; then
    # Something listens but is not (yet) accepting: maybe a server still
    # starting up. Don't start a second one on a busy port.
    say "waiting for PostgreSQL at $pg_host:$pg_port"
    wait_until 30 pg_ready "$pg_host" "$pg_port" ||
        die "something listens on $pg_host:$pg_port but it is not an accepting PostgreSQL"
    say "using PostgreSQL at $pg_host:$pg_port"
else
    start_postgres
fi

# The test runner connects to the "postgres" database and runs CREATE DATABASE
# test_<name>, so check exactly that: can we log in, and may we create databases?
if have psql; then
    admin_url=$(python3 -c 'import sys; from urllib.parse import urlsplit
u = urlsplit(sys.argv[1]); print(u._replace(path="/postgres").geturl())' "$TEST_DATABASE_URL")
    can_create=$(psql "$admin_url" -XAtqc \
        "select rolcreatedb or rolsuper from pg_roles where rolname = current_user") ||
        die "cannot log in to PostgreSQL at $pg_host:$pg_port as '$pg_user' (see the psql error above; check TEST_DATABASE_URL)"
    [[ $can_create == t ]] ||
        die "PostgreSQL user '$pg_user' may not create databases; run: ALTER ROLE \"$pg_user\" CREATEDB"
else
    say "psql not found; not checking that '$pg_user' may create databases"
fi

# --- Redis ---------------------------------------------------------------------

parse_url "$TEST_BROKER_URL" 6379
redis_host=$url_host redis_port=$url_port
if [[ -n $url_password ]]; then
    redis_cli_args=(--no-auth-warning -a "$url_password")
    if [[ -n $url_user ]]; then redis_cli_args+=(--user "$url_user"); fi
fi

start_redis() {
    have redis-server || {
        apt_install redis-server
        if redis_ready "$redis_host" "$redis_port"; then return 0; fi
    }
    redis_dir=$(mktemp -d -t test-redis.XXXXXX)
    say "starting a throwaway Redis in $redis_dir on $redis_host:$redis_port"
    local extra=()
    # A password in the URL means the client will AUTH; make the server expect it.
    if [[ -n $url_password ]]; then extra=(--requirepass "$url_password"); fi
    redis-server --port "$redis_port" --bind "$redis_host" --save "" --appendonly no \
        --dir "$redis_dir" --daemonize yes --pidfile "$redis_dir/redis.pid" \
        --logfile "$redis_dir/redis.log" "${extra[@]}" ||
        die "redis-server failed to start"
    wait_until "$START_TIMEOUT" redis_ready "$redis_host" "$redis_port" ||
        { tail -n 20 "$redis_dir/redis.log" >&2; die "Redis does not answer on $redis_host:$redis_port"; }
}

if redis_ready "$redis_host" "$redis_port"; then
    say "using Redis at $redis_host:$redis_port"
elif port_open "$redis_host" "$redis_port"; then
    say "waiting for Redis at $redis_host:$redis_port"
    wait_until 30 redis_ready "$redis_host" "$redis_port" ||
        die "something listens on $redis_host:$redis_port but does not answer PING with PONG (wrong password in TEST_BROKER_URL?)"
    say "using Redis at $redis_host:$redis_port"
else
    start_redis
fi

# --- run the command -------------------------------------------------------------

export DATABASE_URL=$TEST_DATABASE_URL
export CELERY_BROKER_URL=$TEST_BROKER_URL
export CELERY_RESULT_BACKEND=$TEST_BROKER_URL

# Run COMMAND in the background and `wait` for it: bash runs traps only between
# commands, so with a foreground child a TERM would be handled only after the
# child had finished on its own. Bash makes background jobs ignore SIGINT and
# read /dev/null; the subshell restores Ctrl-C, and <&0 keeps our stdin
# (for pytest --pdb, say).
( trap - INT QUIT; exec "$@" ) <&0 &
child=$!
rc=0
wait "$child" || rc=$?
child=""
exit "$rc"
