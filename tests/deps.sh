#!/bin/sh
# Check that the Debian packages named on the command line are installed.
# As root, install the missing ones with apt-get; otherwise print the exact
# command to run and fail.
missing=""
for p in "$@"; do
	s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)
	case "$s" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null || exit 1
	apt-get install -y -qq --no-install-recommends $missing >/dev/null || exit 1
	exit 0
fi
echo "missing packages:$missing"
echo "run: sudo apt-get install -y$missing"
exit 1
