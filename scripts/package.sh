#!/usr/bin/env bash
# Builds the packages for Debian 12 and PostgreSQL 15 into target/packages/:
#   postgresql-15-cda-analytics_VERSION_ARCH.deb  the extension: its library, control and SQL files;
#   cda-server_VERSION_ARCH.deb                   the HTTP server: the binary, a systemd unit
#                                                 (disabled until configured) and its settings file.
# They hold only built files, so they install on a machine without Rust:
#   apt install ./target/packages/postgresql-15-cda-analytics_*.deb ./target/packages/cda-server_*.deb
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup_toolchain
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -1)
ARCH=$(dpkg --print-architecture)
OUT=$ROOT/target/packages
rm -rf "$OUT"
mkdir -p "$OUT"
MAINTAINER="cda_analytics developers <cda-analytics@example.org>"

# The extension: cargo pgrx package lays its files out under their installed paths.
say "building the extension package"
stage=$OUT/extension
(cd "$ROOT" && cargo pgrx package --pg-config "$PG_CONFIG" --out-dir "$stage" >/dev/null)
mkdir -p "$stage/DEBIAN" "$stage/usr/share/doc/postgresql-15-cda-analytics"
cp "$ROOT/README.md" "$ROOT/CHANGELOG.md" "$ROOT/LICENSE" "$stage/usr/share/doc/postgresql-15-cda-analytics/"
cat >"$stage/DEBIAN/control" <<CONTROL
Package: postgresql-15-cda-analytics
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Depends: postgresql-15, libc6, libgcc-s1
Section: database
Priority: optional
Homepage: https://github.com/cda-analytics/cda_analytics
Description: customer analytics computed inside PostgreSQL 15
 LTV, RFM, segmentation, predictive CLV, churn and purchase scores, anomalies,
 cohort retention, recommendations and price elasticity, as SQL functions and
 result tables. In a database: CREATE EXTENSION cda_analytics;
CONTROL
dpkg-deb --root-owner-group --build "$stage" "$OUT/postgresql-15-cda-analytics_${VERSION}_${ARCH}.deb" >/dev/null

# The server.
say "building the server package"
(cd "$ROOT" && cargo build --release --quiet -p cda-server)
stage=$OUT/server
install -D -m 755 "$ROOT/target/release/cda-server" "$stage/usr/bin/cda-server"
install -D -m 644 "$ROOT/packaging/cda-server.service" "$stage/lib/systemd/system/cda-server.service"
install -D -m 640 "$ROOT/packaging/cda-server.env" "$stage/etc/cda-server/cda-server.env"
install -D -m 644 "$ROOT/docs/api.md" "$stage/usr/share/doc/cda-server/api.md"
cp "$ROOT/CHANGELOG.md" "$ROOT/LICENSE" "$stage/usr/share/doc/cda-server/"
mkdir -p "$stage/DEBIAN"
echo /etc/cda-server/cda-server.env >"$stage/DEBIAN/conffiles"
cat >"$stage/DEBIAN/control" <<CONTROL
Package: cda-server
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Depends: libc6, libgcc-s1, ca-certificates, adduser
Recommends: postgresql-15-cda-analytics
Section: web
Priority: optional
Homepage: https://github.com/cda-analytics/cda_analytics
Description: HTTP API, dashboard and notifier for cda_analytics
 Serves the results of the cda_analytics PostgreSQL extension as a JSON API and
 a dashboard, as each token's database role, and sends the daily digest to
 Telegram. Configure /etc/cda-server/cda-server.env, then
 systemctl enable --now cda-server.
CONTROL
# A system user of its own; the settings file is readable by it and root only. The service is
# left disabled: it cannot run before its settings are filled in.
cat >"$stage/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    if ! getent passwd cda-server >/dev/null; then
        adduser --system --group --no-create-home --home /nonexistent cda-server >/dev/null
    fi
    chown root:cda-server /etc/cda-server/cda-server.env
    chmod 640 /etc/cda-server/cda-server.env
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null || true
    fi
fi
exit 0
POSTINST
chmod 755 "$stage/DEBIAN/postinst"
dpkg-deb --root-owner-group --build "$stage" "$OUT/cda-server_${VERSION}_${ARCH}.deb" >/dev/null

rm -rf "$OUT/extension" "$OUT/server"
ls -l "$OUT"/*.deb
