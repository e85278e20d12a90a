#!/bin/sh
# Every man page in doc/ renders without a single warning, through man(1)
# as a user reads it and through groff with all warnings on.
. "$(dirname "$0")/tap.sh"

pages=$(ls "$src"/doc/*.[1-8] 2>/dev/null)
tap_check "doc/ holds ferry.1 and ferry.yaml.5" \
	test -f "$src/doc/ferry.1" -a -f "$src/doc/ferry.yaml.5"

for page in $pages; do
	name=${page##*/}
	if command -v man > /dev/null; then
		LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" > "$tap_tmp/out" 2> "$tap_tmp/err"
		rc=$?
		if [ $rc -eq 0 ] && [ ! -s "$tap_tmp/err" ] && [ -s "$tap_tmp/out" ]; then
			tap_ok "$name: man --warnings renders it with nothing on stderr"
		else
			tap_not_ok "$name: man --warnings renders it with nothing on stderr (exit $rc)"
			tap_diag "$(cat "$tap_tmp/err")"
		fi
		# No line of the 80-column rendering is wider than 80 columns.
		wide=$(LC_ALL=C.UTF-8 awk 'length($0) > 80' "$tap_tmp/out" | head -3)
		if [ -z "$wide" ]; then
			tap_ok "$name: fits in 80 columns"
		else
			tap_not_ok "$name: fits in 80 columns"
			tap_diag "$wide"
		fi
	else
		tap_skip "$name: man --warnings" "man(1) is not installed (Debian package man-db)"
	fi
	if command -v groff > /dev/null; then
		groff -ww -z -man "$page" 2> "$tap_tmp/err"
		rc=$?
		if [ $rc -eq 0 ] && [ ! -s "$tap_tmp/err" ]; then
			tap_ok "$name: groff -ww -z -man prints no warning"
		else
			tap_not_ok "$name: groff -ww -z -man prints no warning (exit $rc)"
			tap_diag "$(cat "$tap_tmp/err")"
		fi
	else
		tap_skip "$name: groff -ww" "groff is not installed (Debian package groff-base)"
	fi
done
tap_done
