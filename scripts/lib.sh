# Shared helpers for the project's scripts. Sourced, not run.

# The dump cache: the lab writes here and the integration tests read index.json from here.
export KVM_TEST_DUMPS="${KVM_TEST_DUMPS:-${XDG_CACHE_HOME:-$HOME/.cache}/kvm-test-dumps}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1
export DOTNET_NOLOGO=1
export DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

say() { printf '%s: %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

# The .NET SDK is the one thing a fresh machine must already have (the README says so).
require_dotnet() {
  command -v dotnet >/dev/null 2>&1 || die "the .NET SDK is not installed (dotnet not on PATH); install it first"
  local major
  major=$(dotnet --version 2>/dev/null | cut -d. -f1)
  [ "${major:-0}" -ge 10 ] || die "the .NET SDK 10 or newer is needed (found $(dotnet --version 2>/dev/null))"
}

# Install Debian packages that are missing; apt-get update runs once, only when something is missing.
apt_ensure() {
  local missing=()
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
}
