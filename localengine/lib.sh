#!/usr/bin/env bash
# localengine/lib.sh: what the localengine scripts share. Each sets PROG (the name its messages
# start with) and sources this file:   PROG=swarm; . "$ROOT/localengine/lib.sh"
: "${PROG:?set PROG before sourcing localengine/lib.sh}"

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

timed() { # timed LABEL CMD...: runs CMD, then says how long it took
    local label=$1 started=$SECONDS
    shift
    "$@"
    say "$label: done in $((SECONDS - started)) s"
}

need_root() { # need_root STEP WHY: exit unless root
    [ "$(id -u)" = 0 ] || die "'$1' $2: run it as root"
}

env_set() { # env_set FILE KEY VALUE: one KEY=VALUE line per key, shell-sourceable
    local file=$1 key=$2 value=$3 tmp
    mkdir -p "$(dirname "$file")"
    tmp=$(mktemp "$file.XXXXXX")
    { [ -f "$file" ] && grep -v "^$key=" "$file" || true; } >"$tmp"
    printf '%s=%s\n' "$key" "$value" >>"$tmp"
    mv "$tmp" "$file"
}

env_get() { # env_get FILE KEY: the last KEY= value, failing when unset or empty
    [ -f "$1" ] || return 1
    sed -n "s/^$2=//p" "$1" | tail -n1 | grep . || return 1
}

# The service's secrets, generated on this host.
gen_token() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }
gen_master_key() { python3 -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())'; }
gen_password() { python3 -c 'import secrets; print(secrets.token_hex(24))'; }
