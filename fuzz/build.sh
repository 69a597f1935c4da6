#!/usr/bin/env bash
# Builds the libFuzzer drivers (fuzz/*.swift) into .build-fuzz/bin/.
#
# The arrangement (SwiftPM cannot link a -sanitize=fuzzer executable target: libFuzzer brings its
# own main): SwiftPM builds only the *library* targets the drivers need, in their own scratch
# folder, with coverage instrumentation and AddressSanitizer (-sanitize=fuzzer,address makes
# swiftc instrument without linking libFuzzer; -fsanitize=fuzzer-no-link,address does the same
# for the C targets). Then swiftc compiles each driver against the built modules
# (.build-fuzz/debug/Modules) and links it with the targets' object files and libFuzzer.
# Debug configuration on purpose: overflow and bounds checks stay on (release uses -Ounchecked).
# Usage: fuzz/build.sh            (FUZZ_SANITIZERS=fuzzer to build without ASan)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SCRATCH=${FUZZ_SCRATCH:-$ROOT/.build-fuzz}
SAN=${FUZZ_SANITIZERS:-fuzzer,address}
CSAN=${SAN/fuzzer/fuzzer-no-link}
SWIFT=${SWIFT:-swift}

# One build at a time in this folder (flock), library targets only.
exec 9>"$ROOT/.build-fuzz.lock"
flock 9
for target in VSwitchTopology VSwitchCore; do
    "$SWIFT" build --scratch-path "$SCRATCH" --target "$target" \
        -Xswiftc -sanitize="$SAN" -Xcc -fsanitize="$CSAN"
done

B="$SCRATCH/debug"
OBJS=()
objects() {   # OBJS := object files of the named targets (names may hold spaces)
    OBJS=()
    for t in "$@"; do
        while IFS= read -r -d '' f; do OBJS+=("$f"); done < <(find "$B/$t.build" -name '*.o' -print0)
    done
}
SWIFTC_FLAGS=(-sanitize="$SAN" -parse-as-library -g -Onone -use-ld=lld
    -I "$B/Modules"
    -Xcc -fmodule-map-file="$ROOT/Sources/CLibXML2/module.modulemap"
    -Xcc -fmodule-map-file="$B/CVSwitchShim.build/module.modulemap"
    -Xcc -I -Xcc "$ROOT/Sources/CVSwitchShim/include"
    -Xcc -fmodule-map-file="$SCRATCH/checkouts/swift-atomics/Sources/_AtomicsShims/include/module.modulemap"
    -Xcc -I -Xcc "$SCRATCH/checkouts/swift-atomics/Sources/_AtomicsShims/include"
    $(pkg-config --cflags-only-I libxml-2.0 | sed 's/-I/-Xcc -I/g')
    -lxml2)
XML_TARGETS=(VSwitchXML VSwitchPacket VSwitchPolicy VSwitchProfiles VSwitchTopology)
CORE_TARGETS=(VSwitchXML VSwitchPacket VSwitchPolicy VSwitchProfiles VSwitchCore Atomics _AtomicsShims CVSwitchShim)

mkdir -p "$SCRATCH/bin"
objects "${XML_TARGETS[@]}"
swiftc "${SWIFTC_FLAGS[@]}" "$ROOT/fuzz/ProfileFuzz.swift" "${OBJS[@]}" -o "$SCRATCH/bin/fuzz-profiles"
if [ -f fuzz/PipelineFuzz.swift ]; then
    objects "${CORE_TARGETS[@]}"
    swiftc "${SWIFTC_FLAGS[@]}" "$ROOT/fuzz/PipelineFuzz.swift" "${OBJS[@]}" -o "$SCRATCH/bin/fuzz-pipeline"
fi
echo "fuzz drivers in $SCRATCH/bin: $(ls "$SCRATCH/bin" | tr '\n' ' ')"
