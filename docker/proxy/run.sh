#!/bin/sh
# Start nginx in the foreground and reload it every NGINX_RELOAD_SECONDS (default
# 1800), so the proxy's 24-hour certificate, renewed by the pki service at least
# two hours before it expires, is picked up without a restart.
set -eu
nginx -t
(
    while sleep "${NGINX_RELOAD_SECONDS:-1800}"; do
        nginx -t -q && nginx -s reload
    done
) &
exec nginx -g 'daemon off;'
