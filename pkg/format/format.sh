#!/bin/sh
# format [-type ext4] [-label LABEL] [-force] [DEVICE]
# LinuxKit's format flags. Without DEVICE: the first disk (vd*, sd*, nvme*n*, xvd*) that has no
# partition table. Creates one partition spanning the disk and makes the filesystem on it.
type=ext4
label=""
force=0
dev=""
while [ $# -gt 0 ]; do
  case "$1" in
    -type) type=$2; shift 2;;
    -label) label=$2; shift 2;;
    -force) force=1; shift;;
    -verbose) set -x; shift;;
    -*) echo "format: unknown flag $1" >&2; exit 2;;
    *) dev=$1; shift;;
  esac
done

has_table() { blkid -p "$1" >/dev/null 2>&1 || sfdisk -d "$1" >/dev/null 2>&1; }

if [ -z "$dev" ]; then
  for d in /sys/block/vd* /sys/block/sd* /sys/block/nvme*n* /sys/block/xvd*; do
    [ -e "$d" ] || continue
    cand=/dev/$(basename "$d")
    [ -b "$cand" ] || continue
    if ! has_table "$cand"; then dev=$cand; break; fi
  done
  [ -n "$dev" ] || { echo "format: no blank disk found"; exit 0; }
elif has_table "$dev" && [ "$force" = 0 ]; then
  echo "format: $dev already has a partition table or filesystem; -force to overwrite"
  exit 0
fi

echo "format: partitioning $dev"
echo 'type=83' | sfdisk -q --label dos "$dev" || exit 1
case "$dev" in
  *[0-9]) part=${dev}p1;;
  *) part=${dev}1;;
esac
# Wait for the partition's device node.
i=0
while [ ! -b "$part" ] && [ $i -lt 50 ]; do mdev -s 2>/dev/null; sleep 0.1; i=$((i+1)); done
[ -b "$part" ] || { echo "format: $part did not appear" >&2; exit 1; }
echo "format: mkfs.$type $part ${label:+(label $label)}"
case "$type" in
  ext4|ext3|ext2) exec mkfs."$type" -q -F ${label:+-L "$label"} "$part";;
  *) echo "format: unsupported -type $type (ext2/3/4)" >&2; exit 2;;
esac
