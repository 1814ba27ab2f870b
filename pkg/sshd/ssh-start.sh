#!/bin/sh
# Host keys on first start (kept in /run: a read-only image root cannot hold them), then sshd in
# the foreground logging to stderr. Keys from metadata are read where metadata writes them
# (sshd_config's AuthorizedKeysFile): the system's /root/.ssh is read-only.
set -e
mkdir -p /run/sshd /run/ssh-host-keys
for t in ed25519 ecdsa rsa; do
  k=/run/ssh-host-keys/ssh_host_${t}_key
  [ -f "$k" ] || /usr/bin/ssh-keygen -q -t "$t" -N "" -f "$k"
done
exec /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config
