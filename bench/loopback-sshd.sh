#!/bin/sh
# A throwaway sshd on loopback for the bench's ssh section (needs root and
# Debian's openssh-server): fresh host and user keys in a temporary folder,
# a hosts inventory naming it `lo`, and sshd in the foreground until Ctrl-C.
#   sh bench/loopback-sshd.sh &   # prints the inventory's path
#   tractor-host bench --only ssh --hosts /tmp/trt-lo.*/hosts.toml --ssh-host lo
set -eu
exe=$(cd "$(dirname "$0")/.." && pwd)/target/release/tractor-host
d=$(mktemp -d /tmp/trt-lo.XXXXXX)
port=${PORT:-2299}
ssh-keygen -q -t ed25519 -N '' -f "$d/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$d/user_key"
cp "$d/user_key.pub" "$d/authorized_keys"
mkdir -p /run/sshd
cat > "$d/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $d/host_key
AuthorizedKeysFile $d/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
MaxSessions 10
CONF
echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$d/host_key.pub")" > "$d/known_hosts"
cat > "$d/ssh_config" <<CONF
Host lo
  HostName 127.0.0.1
  Port $port
  User $(id -un)
  IdentityFile $d/user_key
  IdentitiesOnly yes
  BatchMode yes
  StrictHostKeyChecking yes
  UserKnownHostsFile $d/known_hosts
CONF
cat > "$d/hosts.toml" <<CONF
[hosts.lo]
ssh = "lo"
ssh-config = "$d/ssh_config"
exe = "$exe"
cache-dir = "$d/cache"
CONF
echo "$d/hosts.toml"
exec /usr/sbin/sshd -D -f "$d/sshd_config"
