# Shared by scripts/test, scripts/demo, bench/ and .ci/run: Debian packages and the CMake build.
# Source it; it defines functions and package lists and changes nothing by itself.

QV_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# What building needs, and what the tests compare against or drive.
QV_BUILD_PACKAGES=(cmake ninja-build pkg-config g++ ccache libcli11-dev libmariadb-dev libcdb-dev
                   nlohmann-json3-dev libpcre2-dev libssl-dev libcrypt-dev catch2)
QV_TEST_PACKAGES=(python3 ucspi-tcp tinycdb util-linux bash zsh fish mariadb-server mariadb-client galera-4 rsync systemd
                  dovecot-imapd dovecot-pop3d swaks libnet-ssleay-perl libauthen-sasl-perl openssl procps
                  python3-aiosmtpd dnsmasq-base iproute2 daemontools)
QV_FUZZ_PACKAGES=(clang libclang-rt-14-dev)
QV_BENCH_PACKAGES=(ucspi-tcp time python3 procmail)
QV_DEMO_PACKAGES=(python3 ucspi-tcp swaks daemontools)

qv_say() { printf '==> %s\n' "$*" >&2; }

# Installs the named Debian packages that are not installed yet (apt-get update first).
qv_install_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; return 1; }
        sudo=(sudo)
    fi
    qv_say "installing ${missing[*]}"
    "${sudo[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# qv_fetch_promtool DEST: Prometheus' promtool, taken out of Debian's prometheus package without
# installing it (its postinst would start a Prometheus server), for the tests of qmailctl status.
qv_fetch_promtool() {
    local dest=$1 tmp
    [ -x "$dest" ] && return 0
    tmp=$(mktemp -d)
    chmod 755 "$tmp"  # apt's _apt user downloads into it
    (cd "$tmp" && apt-get download -q prometheus >/dev/null 2>&1) || {
        apt-get update -q >/dev/null && (cd "$tmp" && apt-get download -q prometheus >/dev/null)
    }
    dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -xf - -C "$tmp" ./usr/bin/promtool
    mkdir -p "$(dirname "$dest")"
    mv "$tmp/usr/bin/promtool" "$dest"
    rm -rf "$tmp"
}

# qv_build DIR [cmake options...]: configures (once) and builds into DIR with two jobs.
qv_build() {
    local dir=$1
    shift
    local gen=()
    command -v ninja >/dev/null && [ ! -f "$dir/CMakeCache.txt" ] && gen=(-G Ninja)
    cmake -S "$QV_TOP" -B "$dir" "${gen[@]}" "$@" >/dev/null
    cmake --build "$dir" -j2
}
