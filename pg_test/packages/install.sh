#!/usr/bin/env bash
# The packages as a user installs them: builds them (scripts/package.sh), installs both with dpkg,
# checks what they hold and that the settings file is private, then, on a throwaway cluster of its
# own (port 55419), creates the extension from the installed files and starts the installed
# server against it; its /ready must answer with the packaged version. Runs last in
# scripts/test.sh, as it replaces the installed extension with the packaged (release) one.
# Exits non-zero on failure.
export CDA_PORT=55419
unset CDA_DIR
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
set -u
fail() { echo "FAILED: $*"; stop_cluster; exit 1; }

bash "$ROOT/scripts/package.sh"
ext_deb=$(ls "$ROOT"/target/packages/postgresql-15-cda-analytics_*.deb)
srv_deb=$(ls "$ROOT"/target/packages/cda-server_*.deb)
as_root dpkg -i "$ext_deb" "$srv_deb" >/dev/null || fail "dpkg -i"
version=$(dpkg-query -W -f='${Version}' postgresql-15-cda-analytics)
echo "installed postgresql-15-cda-analytics and cda-server $version"
# The library, the control file, the install script and every upgrade script.
upgrades=$(cd "$ROOT/sql" && ls cda_analytics--*--*.sql | sed 's|^|/usr/share/postgresql/15/extension/|')
for f in /usr/lib/postgresql/15/lib/cda_analytics.so /usr/share/postgresql/15/extension/cda_analytics.control \
         "/usr/share/postgresql/15/extension/cda_analytics--$version.sql" $upgrades; do
    dpkg -L postgresql-15-cda-analytics | grep -qx "$f" || fail "the extension package lacks $f"
done
for f in /usr/bin/cda-server /lib/systemd/system/cda-server.service /etc/cda-server/cda-server.env; do
    dpkg -L cda-server | grep -qx "$f" || fail "the server package lacks $f"
done
[ "$(stat -c '%a %U %G' /etc/cda-server/cda-server.env)" = "640 root cda-server" ] \
    || fail "the settings file is not private: $(stat -c '%a %U %G' /etc/cda-server/cda-server.env)"
getent passwd cda-server >/dev/null || fail "no cda-server user"

stop_cluster
rm -rf "$CDA_DIR"
start_cluster
psql_ -d postgres -c "CREATE DATABASE cda_pkg" >/dev/null
installed=$(psql_ -d cda_pkg -At -c "SET client_min_messages = warning" -c "CREATE EXTENSION cda_analytics" \
                  -c "SELECT catalog FROM cda_analytics_version() WHERE library = catalog")
[ "$installed" = "$version" ] || fail "CREATE EXTENSION gave version '$installed', expected $version"
echo "CREATE EXTENSION from the installed files: version $installed"

port=55491
CDA_DATABASE_URL="host=$CDA_DIR port=$CDA_PORT user=postgres dbname=cda_pkg" CDA_LISTEN="127.0.0.1:$port" \
    /usr/bin/cda-server >"$CDA_DIR/server.log" 2>&1 &
server=$!
ready=""
wait_for_http "http://127.0.0.1:$port/ready" && ready=$(curl -sf "http://127.0.0.1:$port/ready")
kill "$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true
echo "/ready: $ready"
echo "$ready" | grep -q "\"extension_version\":\"$version\"" || { cat "$CDA_DIR/server.log"; fail "/ready did not answer"; }

stop_cluster
rm -rf "$CDA_DIR"
echo "packages: installed and working"
