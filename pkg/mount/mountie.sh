#!/bin/sh
# mountie [-label L | -uuid U | -device DEV] [-type T] MOUNTPOINT
# mountie [-type T] DEVICE MOUNTPOINT     (LinuxKit's positional form)
# Waits up to 10 s for the device, mounts it at MOUNTPOINT (created if missing). /var is bound
# rshared from the host, so a mount under /var is seen by the whole system.
by=""
type=""
while [ $# -gt 1 ]; do
  case "$1" in
    -label) by="LABEL=$2"; shift 2;;
    -uuid) by="UUID=$2"; shift 2;;
    -device) by="$2"; shift 2;;
    -type) type=$2; shift 2;;
    -*) echo "mountie: unknown flag $1" >&2; exit 2;;
    *) [ $# -eq 2 ] && [ -z "$by" ] || { echo "mountie: unexpected argument $1" >&2; exit 2; }
       by=$1; shift;;
  esac
done
mnt=$1
[ -n "$mnt" ] || { echo "usage: mountie [-label L|-uuid U|-device D] [-type T] MOUNTPOINT" >&2; exit 2; }
[ -n "$by" ] || by="LABEL=DATA"
i=0
dev=""
while [ $i -lt 100 ]; do
  case "$by" in
    LABEL=*|UUID=*) dev=$(findfs "$by" 2>/dev/null);;
    *) [ -b "$by" ] && dev=$by;;
  esac
  [ -n "$dev" ] && break
  mdev -s 2>/dev/null
  sleep 0.1
  i=$((i+1))
done
[ -n "$dev" ] || { echo "mountie: no device $by" >&2; exit 1; }
# Sharing init's pid namespace (the label's pid: host), mount in init's mount namespace: the
# mount is then system-wide whatever becomes of the /var bind's propagation inside this
# container (a runtime that leaves it a slave keeps the mount here, to vanish on exit).
# Without it (own pid namespace: this is PID 1), the rshared /var bind carries the mount out.
host=""
if [ "$$" != 1 ] && nsenter --mount=/proc/1/ns/mnt true 2>/dev/null; then
  host="nsenter --mount=/proc/1/ns/mnt"
fi
$host mkdir -p "$mnt"
echo "mountie: mounting $dev on $mnt${host:+ (in init's mount namespace)}"
exec $host mount ${type:+-t "$type"} "$dev" "$mnt"
