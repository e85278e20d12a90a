#!/bin/sh
# `meson install` (into a DESTDIR) puts everything where it belongs: the
# program, both man pages, the systemd user units (the service pointing at
# the installed program), and the bash and zsh completions.
. "$(dirname "$0")/tap.sh"

root=$tap_tmp/root
if ! meson install -C "$FERRY_BUILD_ROOT" --no-rebuild --destdir "$root" > "$tap_tmp/log" 2>&1; then
	tap_not_ok "meson install --destdir succeeds"
	tap_diag "$(tail -20 "$tap_tmp/log")"
	tap_done
	exit 1
fi
tap_ok "meson install --destdir succeeds"

# The prefix and bindir this build was configured with.
prefix=$(meson introspect --buildoptions "$FERRY_BUILD_ROOT" |
	python3 -c 'import json,sys; o={x["name"]: x["value"] for x in json.load(sys.stdin)}; print(o["prefix"]); print(o["bindir"]); print(o["datadir"]); print(o["mandir"]); print(o["systemd_user_unit_dir"])')
bindir=$(echo "$prefix" | sed -n 2p)
datadir=$(echo "$prefix" | sed -n 3p)
mandir=$(echo "$prefix" | sed -n 4p)
unitdir=$(echo "$prefix" | sed -n 5p)
prefix=$(echo "$prefix" | sed -n 1p)
[ -n "$unitdir" ] || unitdir=$prefix/lib/systemd/user
case $bindir in /*) ;; *) bindir=$prefix/$bindir ;; esac
case $datadir in /*) ;; *) datadir=$prefix/$datadir ;; esac
case $mandir in /*) ;; *) mandir=$prefix/$mandir ;; esac

tap_check "the program: $bindir/ferry" test -x "$root$bindir/ferry"
tap_check "the installed program runs" sh -c "'$root$bindir/ferry' --version | grep -q '^ferry '"
tap_check "ferry(1): $mandir/man1/ferry.1" cmp -s "$src/doc/ferry.1" "$root$mandir/man1/ferry.1"
tap_check "ferry.yaml(5): $mandir/man5/ferry.yaml.5" \
	cmp -s "$src/doc/ferry.yaml.5" "$root$mandir/man5/ferry.yaml.5"
tap_check "the service unit: $unitdir/ferry-sync@.service" test -f "$root$unitdir/ferry-sync@.service"
tap_check "the timer unit: $unitdir/ferry-sync@.timer" \
	cmp -s "$src/dist/systemd/ferry-sync@.timer" "$root$unitdir/ferry-sync@.timer"
tap_check "the service runs the installed program" \
	grep -qx "ExecStart=$bindir/ferry -q sync %i" "$root$unitdir/ferry-sync@.service"
tap_check "no @VARIABLE@ is left in the service" \
	sh -c "! grep -q '@[A-Z_]*@' '$root$unitdir/ferry-sync@.service'"
tap_check "bash completion: $datadir/bash-completion/completions/ferry" \
	cmp -s "$src/dist/completion/ferry.bash" "$root$datadir/bash-completion/completions/ferry"
tap_check "zsh completion: $datadir/zsh/site-functions/_ferry" \
	cmp -s "$src/dist/completion/_ferry" "$root$datadir/zsh/site-functions/_ferry"
if command -v man > /dev/null; then
	tap_check "man finds the installed ferry(1) by name" \
		sh -c "MANPATH='$root$mandir' man -w ferry | grep -q 'man1/ferry.1'"
	tap_check "man finds the installed ferry.yaml(5) by name" \
		sh -c "MANPATH='$root$mandir' man -w 5 ferry.yaml | grep -q 'man5/ferry.yaml.5'"
else
	tap_skip "man finds the installed pages" "man(1) is not installed (Debian package man-db)"
fi
tap_done
