#!/bin/sh
# Run a command in a private D-Bus session with a throwaway, unlocked GNOME Keyring, so that a
# self-test on a build machine never touches anybody's own keyring. Usage: with-test-keyring.sh CMD...
set -eu

if [ -z "${NOOJEE_DESK_TEST_KEYRING:-}" ]; then
  home=$(mktemp -d "${TMPDIR:-/tmp}/noojee-desk-keyring.XXXXXX")
  status=0
  NOOJEE_DESK_TEST_KEYRING="$home" XDG_DATA_HOME="$home" dbus-run-session -- "$0" "$@" || status=$?
  rm -rf "$home"
  exit "$status"
fi

printf 'build' | gnome-keyring-daemon --unlock --components=secrets >/dev/null
# The daemon forks: wait until it owns the Secret Service name, or the first keyring call would
# make D-Bus start a second daemon that finds a half-written keyring and asks for a password.
if command -v dbus-send >/dev/null 2>&1; then
  tries=0
  until dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null |
    grep -q "boolean true"; do
    tries=$((tries + 1))
    if [ "$tries" -ge 200 ]; then
      echo "with-test-keyring: the keyring daemon did not start" >&2
      exit 1
    fi
    sleep 0.05
  done
fi
exec "$@"
