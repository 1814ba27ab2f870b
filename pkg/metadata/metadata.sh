#!/bin/sh
# metadata [PROVIDER…]: providers tried in order until one yields data (default: cdrom cloud).
#   cdrom  every /dev/sr* and small vd*/sd* with ISO9660 or vfat, file user-data or config
#   cloud  http://169.254.169.254/latest/user-data (AWS, OpenStack, and compatible services)
# The data goes to /run/config/userdata; when it has `ssh_authorized_keys`-free plain key lines
# (ssh-* …) they also go to /run/config/ssh/authorized_keys for the sshd package.
out=/run/config
mkdir -p "$out"
providers=${*:-cdrom cloud}

publish() {
  cp "$1" "$out/userdata" && chmod 600 "$out/userdata"
  if grep -q '^ssh-' "$out/userdata"; then
    mkdir -p "$out/ssh"
    grep '^ssh-' "$out/userdata" > "$out/ssh/authorized_keys"
    chmod 600 "$out/ssh/authorized_keys"
  fi
  echo "metadata: user data from $2"
}

cdrom() {
  mdev -s 2>/dev/null
  m=/tmp/metadata-cd
  mkdir -p "$m"
  for d in /dev/sr* /dev/vd? /dev/sd?; do
    [ -b "$d" ] || continue
    for t in iso9660 vfat; do
      mount -t "$t" -o ro "$d" "$m" 2>/dev/null || continue
      for f in user-data config; do
        if [ -f "$m/$f" ]; then
          publish "$m/$f" "$d ($f)"
          umount "$m"
          return 0
        fi
      done
      umount "$m"
    done
  done
  return 1
}

cloud() {
  if wget -q -T 5 -O /tmp/userdata http://169.254.169.254/latest/user-data; then
    publish /tmp/userdata "the metadata service"
    return 0
  fi
  return 1
}

for p in $providers; do
  case "$p" in
    cdrom|cloud) "$p" && exit 0;;
    *) echo "metadata: unknown provider $p" >&2;;
  esac
done
echo "metadata: no user data found (tried: $providers)"
exit 0
