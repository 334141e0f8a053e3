#!/bin/sh
# Installs the real SIP peers the interop tests and benchmarks talk to, from Debian's packages.
# Idempotent: does nothing when they are all present.
set -eu
need=""
# chromium + chromedriver: the dashboard test drives a real headless browser (Selenium).
for pair in sipp:sip-tester kamailio:kamailio baresip:baresip sipsak:sipsak stunnel4:stunnel4 svmap:sipvicious tshark:tshark sox:sox linphonec:linphone-cli twinkle-console:twinkle-console fail2ban-regex:fail2ban chromium:chromium chromedriver:chromium-driver espeak-ng:espeak-ng; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || need="$need $pkg"
done
# Kamailio's SQLite driver: the benchmarks' Kamailio reads its users from SQLite, as sipline does.
ls /usr/lib/*/kamailio/modules/db_sqlite.so >/dev/null 2>&1 || need="$need kamailio-sqlite-modules"
# PostgreSQL's server binaries: the tests start throwaway clusters (sipline.testing.postgres).
# Debian keeps initdb and pg_ctl in /usr/lib/postgresql/VERSION/bin, off the PATH.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need="$need postgresql"
[ -z "$need" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
# Keep the kamailio package from starting a system daemon: the tests run their own instances.
printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
$SUDO chmod +x /usr/sbin/policy-rc.d
trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
