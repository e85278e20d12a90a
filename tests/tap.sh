# tap.sh - sourced by the shell tests in tests/: TAP output, a temporary
# folder removed on exit, and where the built ferry lives.
#
#   . "$(dirname "$0")/tap.sh"
#   tap_check "what must hold" command args...   # ok N / not ok N
#   tap_skip "what" "why"
#   tap_diag "text"                              # "# text" lines
#   tap_done                                     # the plan; exit status
#
# $tap_tmp is a fresh folder (removed on exit); $ferry the built program
# ($FERRY_BUILD_ROOT/cmd/ferry); $src the source root ($FERRY_SOURCE_ROOT,
# else the folder above this file).

tap_n=0
tap_failed=0

tap_ok() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n - $1"
}

tap_not_ok() {
	tap_n=$((tap_n + 1))
	tap_failed=$((tap_failed + 1))
	echo "not ok $tap_n - $1"
}

tap_check() {
	tap_what=$1
	shift
	if "$@"; then tap_ok "$tap_what"; else tap_not_ok "$tap_what"; fi
}

tap_skip() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n - $1 # SKIP $2"
}

tap_diag() {
	printf '%s\n' "$*" | sed 's/^/# /'
}

tap_done() {
	echo "1..$tap_n"
	[ "$tap_failed" -eq 0 ]
}

src=${FERRY_SOURCE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
ferry=${FERRY_BUILD_ROOT:+$FERRY_BUILD_ROOT/cmd/ferry}
tap_tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-test.XXXXXX") || exit 1
trap 'rm -rf "$tap_tmp"' EXIT
trap 'exit 1' HUP INT TERM
