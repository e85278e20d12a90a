#!/bin/sh
# The systemd user units pass `systemd-analyze --user verify` with nothing
# on stderr (it exits 0 even for unknown keys, so stderr is what counts),
# including their Documentation= man pages, and say what they must.
#
# How: the unit meson configured ($FERRY_BUILD_ROOT/dist/ferry-sync@.service,
# the file `meson install` copies) with ExecStart pointed at the built ferry
# (verify insists the program exists), an instance of it and of the timer,
# MANPATH at a folder holding doc/ferry.1 and doc/ferry.yaml.5, and
# XDG_RUNTIME_DIR at a fresh 0700 folder: `--user` needs one, and this works
# as root and as an ordinary user alike.
. "$(dirname "$0")/tap.sh"

unit_in=$FERRY_BUILD_ROOT/dist/ferry-sync@.service
timer=$src/dist/systemd/ferry-sync@.timer

tap_check "meson configured the service unit" test -f "$unit_in"
tap_check "the service runs \"ferry -q sync %i\" once per start" \
	grep -q "^ExecStart=.*/ferry -q sync %i\$" "$unit_in"
tap_check "the service is Type=oneshot" grep -qx "Type=oneshot" "$unit_in"
tap_check "the service treats exit code 6 (lock held) as success" \
	grep -qx "SuccessExitStatus=6" "$unit_in"
for opt in NoNewPrivileges=yes ProtectSystem=strict "ReadWritePaths=%h %t" PrivateTmp=yes \
	"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" LockPersonality=yes \
	MemoryDenyWriteExecute=yes SystemCallArchitectures=native; do
	tap_check "the service sets $opt" grep -qx "$opt" "$unit_in"
done
tap_check "the service does not hide the home folder (the Maildir is there)" \
	sh -c "! grep -q '^ProtectHome=' '$unit_in'"
tap_check "the timer runs every 15 minutes, persistently, with a random delay" \
	sh -c "grep -qx 'OnCalendar=\*:0/15' '$timer' && grep -qx 'Persistent=true' '$timer' &&
		grep -q '^RandomizedDelaySec=' '$timer' && grep -qx 'WantedBy=timers.target' '$timer'"

if ! command -v systemd-analyze > /dev/null; then
	tap_skip "systemd-analyze --user verify" \
		"systemd-analyze is not installed (Debian package systemd)"
	tap_done
	exit $?
fi

mkdir -p "$tap_tmp/units" "$tap_tmp/man/man1" "$tap_tmp/man/man5" "$tap_tmp/runtime"
chmod 700 "$tap_tmp/runtime"
ln -s "$src/doc/ferry.1" "$tap_tmp/man/man1/ferry.1"
ln -s "$src/doc/ferry.yaml.5" "$tap_tmp/man/man5/ferry.yaml.5"
sed "s|^ExecStart=[^ ]*/ferry |ExecStart=$ferry |" "$unit_in" > "$tap_tmp/units/ferry-sync@.service"
cp "$timer" "$tap_tmp/units/ferry-sync@.timer"

verify() {
	MANPATH=$tap_tmp/man XDG_RUNTIME_DIR=$tap_tmp/runtime \
		systemd-analyze --user verify "$@" > "$tap_tmp/out" 2> "$tap_tmp/err"
	rc=$?
	if [ $rc -eq 0 ] && [ ! -s "$tap_tmp/err" ]; then
		return 0
	fi
	tap_diag "systemd-analyze --user verify $* exited $rc:"
	tap_diag "$(cat "$tap_tmp/out" "$tap_tmp/err")"
	return 1
}

cd "$tap_tmp/units" || exit 1
tap_check "systemd-analyze --user verify ferry-sync@personal.service" \
	verify ./ferry-sync@personal.service
tap_check "systemd-analyze --user verify ferry-sync@personal.timer" \
	verify ./ferry-sync@personal.timer
tap_check "an account name with \"-\" and \".\" is a valid instance" \
	verify ./ferry-sync@my-mail.work.service ./ferry-sync@my-mail.work.timer

# The check can fail: an unknown key is reported (on stderr only).
echo "Typo=yes" >> "$tap_tmp/units/ferry-sync@.service"
if verify ./ferry-sync@personal.service > /dev/null 2>&1; then
	tap_not_ok "verify reports a broken unit"
else
	tap_ok "verify reports a broken unit"
fi
tap_done
