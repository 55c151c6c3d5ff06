#!/bin/sh
# The container's entrypoint: store the API key the deployment gives, then run `hearth serve`.
#
#   HEARTH_API_KEY_FILE  a file holding the key (a Docker/Compose secret, a Kubernetes Secret
#                        volume); preferred: the key then never sits in the environment
#   HEARTH_API_KEY       the key itself (an env file); removed from the environment before serve
#   HEARTH_API_KEY_NAME  the name it is stored under (default: deployment); the same name again
#                        replaces it, so a restart with a new secret rotates the key
#   HEARTH_API_KEY_SCOPE inference (default) or admin
#
# `hearth serve` itself refuses a non-loopback address (the image binds 0.0.0.0) while no key
# exists, unless --insecure or HEARTH_INSECURE=true says that is wanted: this script adds no
# second rule, it only hands the key over. Arguments are passed to `hearth serve`; a first
# argument that is not a flag runs that command instead (e.g. `hearth pull NAME`, `sh`).
set -eu

HEARTH_BIN=${HEARTH_BIN:-hearth}

if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
    exec "$@"
fi

key=""
if [ -n "${HEARTH_API_KEY_FILE:-}" ]; then
    if [ ! -r "$HEARTH_API_KEY_FILE" ]; then
        echo "hearth-entrypoint: HEARTH_API_KEY_FILE=$HEARTH_API_KEY_FILE cannot be read" >&2
        exit 2
    fi
    key=$(head -n 1 "$HEARTH_API_KEY_FILE")
elif [ -n "${HEARTH_API_KEY:-}" ]; then
    key=$HEARTH_API_KEY
fi
unset HEARTH_API_KEY

if [ -n "$key" ]; then
    printf '%s\n' "$key" | "$HEARTH_BIN" keys put \
        --name "${HEARTH_API_KEY_NAME:-deployment}" --scope "${HEARTH_API_KEY_SCOPE:-inference}"
fi
key=""

exec "$HEARTH_BIN" serve "$@"
