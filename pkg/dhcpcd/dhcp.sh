#!/bin/sh
# Runs udhcpc once on each interface (default: every eth*/en* interface), in parallel; exits 0
# when at least one got a lease. IFACES="eth0 eth1" limits the list; TIMEOUT (s) bounds waiting.
ifaces=${IFACES:-}
if [ -z "$ifaces" ]; then
  for d in /sys/class/net/*; do
    n=$(basename "$d")
    case "$n" in eth*|en*) ifaces="$ifaces $n";; esac
  done
fi
[ -n "$ifaces" ] || { echo "dhcp: no ethernet interface" >&2; exit 1; }
pids=""
for i in $ifaces; do
  ip link set "$i" up
  udhcpc -i "$i" -q -n -t "${TRIES:-10}" -T 2 -s /usr/share/udhcpc/default.script &
  pids="$pids $!"
done
ok=1
for p in $pids; do
  wait "$p" && ok=0
done
exit $ok
