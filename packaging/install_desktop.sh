#!/usr/bin/env bash
# Put Diffusion Studio in the desktop's application menu, with its icon, and offer it in "Open with" for PNG files.
# Installs for the current user only, under ${XDG_DATA_HOME:-~/.local/share}: applications/diffusion-studio.desktop
# and icons/hicolor/<N>x<N>/apps/diffusion-studio.png (+ scalable/apps/diffusion-studio.svg).
#
#   install_desktop.sh                     the bundle's executable beside this script, else `diffusion-studio` on PATH
#   install_desktop.sh --exec CMD          the command to start the studio (e.g. ~/apps/diffusion-studio/diffusion-studio)
#   install_desktop.sh --default-for-png   also make the studio the default application for PNG files (xdg-mime)
#   install_desktop.sh --uninstall         remove what an install put there
#
# Works from a source checkout (packaging/install_desktop.sh), from a bundle (the build copies it into the bundle
# folder) and with a pip-installed studio (--exec diffusion-studio).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
data_home="${XDG_DATA_HOME:-$HOME/.local/share}"
app_id="diffusion-studio"
exec_cmd=""
make_default=0
uninstall=0

while [ $# -gt 0 ]; do
    case "$1" in
        --exec) exec_cmd="${2:?--exec needs the command that starts the studio}"; shift 2 ;;
        --default-for-png) make_default=1; shift ;;
        --uninstall) uninstall=1; shift ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install_desktop.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

refresh_caches() {  # each is optional: desktops that lack them rescan on their own
    if command -v update-desktop-database >/dev/null; then update-desktop-database -q "$data_home/applications" || true; fi
    if command -v gtk-update-icon-cache >/dev/null; then gtk-update-icon-cache -q -t "$data_home/icons/hicolor" || true; fi
}

if [ "$uninstall" = 1 ]; then
    rm -f "$data_home/applications/$app_id.desktop" "$data_home/icons/hicolor/scalable/apps/$app_id.svg"
    rm -f "$data_home"/icons/hicolor/*x*/apps/"$app_id.png"
    refresh_caches
    echo "removed Diffusion Studio's menu entry and icons from $data_home"
    exit 0
fi

# The icons and the .desktop template: in a checkout, or inside a bundle (PyInstaller puts data under _internal/).
icons=""
for dir in "$here/../studio/resources/icons" "$here/_internal/studio/resources/icons"; do
    if [ -f "$dir/$app_id.svg" ]; then icons="$(cd "$dir" && pwd)"; break; fi
done
if [ -z "$icons" ]; then
    echo "install_desktop.sh: the icons (studio/resources/icons) are not beside this script" >&2; exit 1
fi
template="$here/$app_id.desktop"
if [ ! -f "$template" ]; then echo "install_desktop.sh: $template is missing" >&2; exit 1; fi

if [ -z "$exec_cmd" ]; then
    if [ -x "$here/$app_id" ]; then exec_cmd="$here/$app_id"; else exec_cmd="$app_id"; fi
fi
if [[ "$exec_cmd" == */* ]]; then
    exec_cmd="$(cd "$(dirname "$exec_cmd")" && pwd)/$(basename "$exec_cmd")"
    if [ ! -x "$exec_cmd" ]; then echo "install_desktop.sh: $exec_cmd is not an executable file" >&2; exit 1; fi
elif ! command -v "$exec_cmd" >/dev/null; then
    echo "install_desktop.sh: warning: $exec_cmd is not on PATH; the menu entry stays hidden until it is" >&2
fi
# The desktop entry spec quotes arguments with double quotes; a path with spaces needs them.
quoted="$exec_cmd"
if [[ "$exec_cmd" == *" "* ]]; then quoted="\"$exec_cmd\""; fi

mkdir -p "$data_home/applications"
sed -e "s|^Exec=.*|Exec=$quoted %f|" -e "s|^TryExec=.*|TryExec=$exec_cmd|" "$template" \
    > "$data_home/applications/$app_id.desktop"
for png in "$icons/$app_id"-*.png; do
    size="$(basename "$png" .png)"; size="${size##*-}"
    mkdir -p "$data_home/icons/hicolor/${size}x${size}/apps"
    cp "$png" "$data_home/icons/hicolor/${size}x${size}/apps/$app_id.png"
done
mkdir -p "$data_home/icons/hicolor/scalable/apps"
cp "$icons/$app_id.svg" "$data_home/icons/hicolor/scalable/apps/$app_id.svg"
refresh_caches

if [ "$make_default" = 1 ]; then
    if command -v xdg-mime >/dev/null; then
        xdg-mime default "$app_id.desktop" image/png
        echo "PNG files now open in Diffusion Studio by default (xdg-mime query default image/png)"
    else
        echo "install_desktop.sh: xdg-mime is not installed; choose Diffusion Studio in a PNG's Open With" >&2
    fi
fi
echo "installed $data_home/applications/$app_id.desktop (Exec=$quoted %f) and icons in $data_home/icons/hicolor"
