#!/bin/sh
# Finds the virtio-serial port the host named org.qemu.guest_agent.0 (no udev here, so no
# /dev/virtio-ports/ link: the name is in sysfs) and runs qemu-ga on it in the foreground.
name=${QGA_PORT:-org.qemu.guest_agent.0}
i=0
while [ $i -lt 100 ]; do
  for p in /sys/class/virtio-ports/*; do
    [ -r "$p/name" ] || continue
    if [ "$(cat "$p/name")" = "$name" ]; then
      exec /usr/sbin/qemu-ga -m virtio-serial -p "/dev/$(basename "$p")" -f /run/qemu-ga.pid \
        -t /run "$@"
    fi
  done
  sleep 0.1
  i=$((i+1))
done
echo "qga-start: no virtio-serial port named $name (qemu: -device virtserialport,name=$name)" >&2
exit 1
