# Sourced by the scripts that drive the release binaries under Xvfb (e2e/lib.sh for
# e2e/gui.sh and e2e/gui_tls.sh, e2e/screenshot.sh, measure/history.sh); needs $root
# (the workspace).

# release_bin VAR PACKAGE BINARY: unless $VAR names a binary already, builds PACKAGE in
# release mode (a no-op after scripts/test.sh's release build) and exports VAR as the
# path of BINARY.
release_bin() {
    local var="$1" package="$2" binary="$3"
    [[ -n "${!var:-}" ]] && return 0
    (cd "$root" && cargo build --release --quiet -p "$package")
    export "$var=${CARGO_TARGET_DIR:-$root/target}/release/$binary"
}
