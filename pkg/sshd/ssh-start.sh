#!/bin/sh
# Host keys on first start (kept in /run: a read-only image root cannot hold them), keys from
# metadata if present, then sshd in the foreground logging to stderr.
set -e
mkdir -p /run/sshd /run/ssh-host-keys
for t in ed25519 ecdsa rsa; do
  k=/run/ssh-host-keys/ssh_host_${t}_key
  [ -f "$k" ] || /usr/bin/ssh-keygen -q -t "$t" -N "" -f "$k"
done
if [ -f /run/config/ssh/authorized_keys ] && [ ! -s /root/.ssh/authorized_keys ]; then
  cp /run/config/ssh/authorized_keys /root/.ssh/authorized_keys 2>/dev/null || true
fi
exec /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config
