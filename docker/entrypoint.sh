#!/bin/sh
# Entry point of the fleamarket image (users, ads, worker, beat, init, pki).
#
#   (no arguments) or "serve"   gunicorn -c python:s2s_auth.tls.gunicorn_conf "$WSGI_MODULE"
#   anything else               run it as given (celery ..., python manage.py ..., ...)
#
# Credentials come from files, never from the image: for each NAME below, NAME_FILE
# (e.g. a compose secret under /run/secrets/) is read into NAME before the command
# starts. SECRET_KEY_FILE is read by the settings themselves.
set -eu

for name in DATABASE_URL USERS_DATABASE_URL ADS_DATABASE_URL CACHE_URL CELERY_BROKER_URL; do
    file=$(printenv "${name}_FILE" || true)
    [ -n "$file" ] || continue
    if [ -n "$(printenv "$name" || true)" ]; then
        echo "entrypoint: both $name and ${name}_FILE are set; use one" >&2
        exit 64
    fi
    if [ ! -r "$file" ]; then
        echo "entrypoint: ${name}_FILE=$file is not readable" >&2
        exit 66
    fi
    value=$(cat "$file")
    export "$name=$value"
    unset "${name}_FILE"
done

if [ "$#" -eq 0 ] || [ "$1" = "serve" ]; then
    [ "$#" -eq 0 ] || shift
    if [ -z "${WSGI_MODULE:-}" ]; then
        echo "entrypoint: set WSGI_MODULE (users.wsgi or ads.wsgi) to serve" >&2
        exit 64
    fi
    # The admin's CSS and JS into STATIC_ROOT (under VAR_DIR, a tmpfs), for whitenoise.
    python /app/manage.py collectstatic --noinput -v0
    exec gunicorn -c python:s2s_auth.tls.gunicorn_conf "$@" "$WSGI_MODULE"
fi
exec "$@"
