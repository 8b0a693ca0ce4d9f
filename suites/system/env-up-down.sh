#!/bin/sh
# `tokenrig env up` gives a person working tokens and portals: pkcs11-tool
# lists the unit's key and certificate, curl reaches the portal over verified
# TLS; `env down` leaves no process of the rig behind.
set -eu
dir="$BUILD/check-env"
"$BUILD/tokenrig" env up --dir "$dir"
pid=$(awk '$1 == "portal" { print $2 }' "$dir/pids")
down() { "$BUILD/tokenrig" env down --dir "$dir" || true; }
trap down EXIT
. "$dir/env.sh"
objects=$(pkcs11-tool --module "$TOKENRIG_P11_MODULE" --token-label "$TOKENRIG_TOKEN_LABEL" \
	--login --pin "$TOKENRIG_USER_PIN" -O 2>&1)
echo "$objects" | grep -q "Private Key Object" || { echo "no private key listed:"; echo "$objects"; exit 1; }
echo "$objects" | grep -q "Certificate Object" || { echo "no certificate listed:"; echo "$objects"; exit 1; }
root=$(curl -sS --max-time 10 --cacert "$TOKENRIG_CA_BUNDLE" "$TOKENRIG_PORTAL_SUZHOU_URL/")
echo "$root" | grep -q '"portal": *"suzhou"' || { echo "portal answered: $root"; exit 1; }
ch=$(curl -sS --max-time 10 --cacert "$TOKENRIG_CA_BUNDLE" -H 'Content-Type: application/json' \
	-d '{}' "$TOKENRIG_PORTAL_SUZHOU_URL/hall/challenge")
echo "$ch" | grep -q '"nonce"' || { echo "challenge answered: $ch"; exit 1; }
trap - EXIT
"$BUILD/tokenrig" env down --dir "$dir"
# Gone, or a zombie waiting for init to reap it: either way it has exited.
state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1 || true)
if [ -n "$state" ] && [ "$state" != Z ]; then
	echo "portal $pid still runs after env down (state $state)"
	exit 1
fi
[ ! -e "$dir/pids" ] || { echo "pids file left behind"; exit 1; }
echo "env up/down: pkcs11-tool and curl worked; nothing left running"
