#!/usr/bin/env bash
# Fetches the third-party captures devtools/tests/third_party_captures.rs
# replays: tcpdump 4.99.3's own test captures (tests/*.pcap, BSD-3-Clause),
# from Debian's source package of tcpdump (bookworm), never from a copy
# committed here. ORIGIN.md says what they are and why each was chosen.
#
# The upstream tarball is checked against the sha256 pinned in SHA256SUMS
# (the one Debian's tcpdump_4.99.3-1.dsc lists), and so is every file
# taken out of it. The files land in target/third-party/tcpdump-4.99.3/
# (or $VSWITCH_THIRD_PARTY_DIR/tcpdump-4.99.3/), outside the tracked
# tree. Run again, it does nothing when they are all there and verify.
#
# Needs curl, tar and sha256sum. $DEBIAN_MIRROR overrides the mirror.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
version=4.99.3
tarball=tcpdump_${version}.orig.tar.gz
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
url=$mirror/pool/main/t/tcpdump/$tarball
base=${VSWITCH_THIRD_PARTY_DIR:-$repo/target/third-party}
dest=$base/tcpdump-$version
sums=$here/SHA256SUMS

# The captures: every line of SHA256SUMS but the tarball's.
mapfile -t files < <(awk -v tarball="$tarball" '$2 != tarball { print $2 }' "$sums")

verify() { # dir, names...: each file's sha256 is the pinned one
    local dir=$1
    shift
    (cd "$dir" && grep -F -f <(printf '  %s\n' "$@") "$sums" | sha256sum --check --quiet --strict -)
}

if [ -d "$dest" ] && verify "$dest" "${files[@]}" >/dev/null 2>&1; then
    echo "captures: ${#files[@]} files in $dest, verified"
    exit 0
fi

mkdir -p "$base"
if ! verify "$base" "$tarball" >/dev/null 2>&1; then
    echo "captures: downloading $url"
    curl --fail --silent --show-error --location --retry 3 -o "$base/$tarball.part" "$url"
    mv "$base/$tarball.part" "$base/$tarball"
fi
verify "$base" "$tarball" || {
    echo "captures: $base/$tarball does not have the pinned sha256 (SHA256SUMS)" >&2
    exit 1
}

work=$(mktemp -d "$base/extract.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -xzf "$base/$tarball" -C "$work" "${files[@]/#/tcpdump-$version/tests/}"
verify "$work/tcpdump-$version/tests" "${files[@]}"
rm -rf "$dest"
mkdir -p "$dest"
for f in "${files[@]}"; do
    mv "$work/tcpdump-$version/tests/$f" "$dest/$f"
done
echo "captures: ${#files[@]} files in $dest, verified"
