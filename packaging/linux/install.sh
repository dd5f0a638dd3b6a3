#!/bin/sh
# Add Noojee Desk (this unpacked folder) to the current user's applications menu; --remove undoes it.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
data="${XDG_DATA_HOME:-$HOME/.local/share}"
apps="$data/applications"
icons="$data/icons/hicolor"
entry="$apps/noojee-desk.desktop"

if [ "${1:-}" = "--remove" ]; then
  rm -f "$entry" "$icons/256x256/apps/noojee-desk.png" "$icons/512x512/apps/noojee-desk.png"
  command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$apps" || true
  echo "Noojee Desk removed from the applications menu. Your queue and settings are kept."
  exit 0
fi

if [ ! -x "$here/noojee-desk" ]; then
  echo "Run this script from the unpacked Noojee Desk folder (noojee-desk was not found next to it)." >&2
  exit 1
fi

case "$here" in
  *%*)
    echo "The folder name contains '%', which application menus cannot start from: move the" >&2
    echo "Noojee Desk folder somewhere without '%' in its path and run install.sh again." >&2
    exit 1
    ;;
esac

mkdir -p "$apps" "$icons/256x256/apps" "$icons/512x512/apps"
cp "$here/noojee-desk.png" "$icons/256x256/apps/noojee-desk.png"
cp "$here/noojee-desk-512.png" "$icons/512x512/apps/noojee-desk.png"
# The Exec line must name this folder: quote it for the desktop file, escape it for sed.
# (Desktop Entry spec: inside quotes escape " ` $ \ with a backslash, then double every backslash.)
program=$(printf '%s' "$here/noojee-desk" | sed -e 's/["`$\\]/\\\\&/g')
program_sed=$(printf '%s' "\"$program\"" | sed -e 's/[&|\\]/\\&/g')
sed -e "s|^Exec=.*|Exec=$program_sed|" -e '/^TryExec=/d' "$here/noojee-desk.desktop" >"$entry"
chmod 644 "$entry"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$apps" || true
echo "Noojee Desk added to the applications menu ($entry)."
echo "To remove it later: \"$here/install.sh\" --remove"
