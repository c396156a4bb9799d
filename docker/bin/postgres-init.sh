#!/bin/sh
# Run once by the postgres image on an empty data directory (/docker-entrypoint-initdb.d).
# One PostgreSQL instance, one role and one database per service: users cannot read
# ads' tables and the other way round. Passwords come from compose secrets.
set -eu

create() {
    role=$1
    password=$(cat "/run/secrets/${role}_db_password")
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        --set=role="$role" --set=password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
}

create users
create ads
