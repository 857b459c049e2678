# Sourced by the README's commands: installs the Debian packages the demo and the tests use, only
# when one is missing (a fresh Debian 12 machine has none of them).
# ethtool: turns GRO on for a veth in tests/Native.Tests/EcnReviewGroTests.cs.
# systemd: only its systemd-analyze, which checks the packaged unit (tests/Host.Tests/PackagingTests.cs).
# logrotate: runs the packaged logrotate file (tests/Host.Tests/LogFileTests.cs).
DEBIAN_PACKAGES=(iproute2 nftables ethtool wireguard-go wireguard-tools iperf3 tshark jq gcc libc6-dev iputils-ping procps psmisc strace python3 systemd logrotate)

ensure_debian_packages() {
  local missing=()
  for p in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "installing Debian packages: ${missing[*]}"
    local sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    echo "wireshark-common wireshark-common/install-setuid boolean false" | $sudo debconf-set-selections
    $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}
