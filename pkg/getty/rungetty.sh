#!/bin/sh
# One getty per console named on the kernel command line (tty0 means tty1), each respawned.
# INSECURE=true: log in as root without a password.
consoles=""
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    console=*)
      c=${arg#console=}
      c=${c%%,*}
      [ "$c" = tty0 ] && c=tty1
      consoles="$consoles $c"
      ;;
  esac
done
[ -n "$consoles" ] || consoles=tty1

loop() {
  while true; do
    if [ "${INSECURE:-false}" = true ]; then
      setsid getty -n -l /usr/bin/autologin 115200 "$1" vt100
    else
      setsid getty 115200 "$1" vt100
    fi
    sleep 1
  done
}

for c in $consoles; do
  loop "$c" &
done
wait
