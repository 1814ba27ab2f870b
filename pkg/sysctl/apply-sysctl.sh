#!/bin/sh
# Applies the image's defaults. A key the kernel lacks is reported and skipped, not fatal.
for f in /etc/sysctl.d/*.conf; do
  [ -f "$f" ] || continue
  sysctl -q -p "$f" || echo "sysctl: some keys of $f were not applied" >&2
done
exit 0
