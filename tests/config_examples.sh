#!/bin/sh
# Every file in config-examples/ passes `ferry check --offline -c FILE`
# (a new example is covered as soon as it is added), with nothing on
# stderr, and without running any password or token command: the commands
# they name (oama, pass, secret-tool, gpg) are stand-ins first on $PATH
# here that leave a mark if anything runs them.  That the mark works is
# shown at the end against a throwaway Dovecot on loopback, where an online
# `ferry check` does run the command.
. "$(dirname "$0")/tap.sh"

# Every credential command starts with a tool of the stand-ins.
known_commands() {
	grep -E '^ *(password_cmd|oauth2_token_cmd):' "$1" > "$tap_tmp/cmds"
	! grep -Eqv ': "(oama|pass|secret-tool|gpg) ' "$tap_tmp/cmds"
}

mkdir -p "$tap_tmp/bin" "$tap_tmp/home"
# The CA file full.yaml names must exist and hold a PEM certificate (the
# check reads it): a throwaway self-signed one.
mkdir -p "$tap_tmp/home/.config/ferry"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-subj /CN=example-ca -keyout "$tap_tmp/ca.key" \
	-out "$tap_tmp/home/.config/ferry/my-ca.pem" > /dev/null 2>&1
for helper in oama pass secret-tool gpg; do
	cat > "$tap_tmp/bin/$helper" <<HELPER
#!/bin/sh
echo "$helper \$*" >> "$tap_tmp/ran"
echo alice-secret-1
HELPER
	chmod +x "$tap_tmp/bin/$helper"
done

n=0
for file in "$src"/config-examples/*.yaml; do
	name=${file##*/}
	n=$((n + 1))
	rm -f "$tap_tmp/ran"
	HOME=$tap_tmp/home XDG_STATE_HOME=$tap_tmp/state XDG_CONFIG_HOME=$tap_tmp/config \
		PATH=$tap_tmp/bin:$PATH "$ferry" check --offline -c "$file" \
		> "$tap_tmp/out" 2> "$tap_tmp/err"
	rc=$?
	if [ $rc -eq 0 ] && [ ! -s "$tap_tmp/err" ]; then
		tap_ok "$name passes ferry check --offline"
	else
		tap_not_ok "$name passes ferry check --offline (exit $rc)"
		tap_diag "$(cat "$tap_tmp/err")"
	fi
	accounts=$(HOME=$tap_tmp/home "$ferry" check --list-accounts -c "$file" | wc -l)
	oks=$(grep -c '^account ".*": ok$' "$tap_tmp/out")
	if [ "$accounts" -gt 0 ] && [ "$oks" -eq "$accounts" ]; then
		tap_ok "$name: every one of its $accounts accounts is reported ok"
	else
		tap_not_ok "$name: every account is reported ok ($oks of $accounts)"
	fi
	if [ -e "$tap_tmp/ran" ]; then
		tap_not_ok "$name: check --offline runs no credential command"
		tap_diag "ran: $(cat "$tap_tmp/ran")"
	else
		tap_ok "$name: check --offline runs no credential command"
	fi
	if grep -Eq '^ *(password_cmd|oauth2_token_cmd):' "$file"; then
		tap_check "$name: its credential commands are ones a person would use" \
			known_commands "$file"
	fi
done
tap_check "config-examples/ holds the examples (found $n)" test "$n" -ge 8

# The stand-ins work: an online check, which logs in, runs password_cmd.
dovecot=$tap_tmp/dovecot
trap '"$src/tests/harness/dovecot-test" stop "$dovecot" > /dev/null 2>&1; rm -rf "$tap_tmp"' EXIT
chmod 755 "$tap_tmp"     # Dovecot runs as another user and must reach its folder
if "$src/tests/harness/dovecot-test" start "$dovecot" > "$tap_tmp/server.env" 2> "$tap_tmp/err"; then
	. "$tap_tmp/server.env"
	cat > "$tap_tmp/online.yaml" <<YAML
accounts:
  test:
    remote:
      host: 127.0.0.1
      port: $IMAPS_PORT
      tls_ca_file: $CA_FILE
      user: $USER1
      password_cmd: "pass show mail/test"
    local:
      path: $tap_tmp/Mail
YAML
	rm -f "$tap_tmp/ran"
	HOME=$tap_tmp/home XDG_STATE_HOME=$tap_tmp/state PATH=$tap_tmp/bin:$PATH \
		"$ferry" check --offline -c "$tap_tmp/online.yaml" > /dev/null 2>&1
	tap_check "check --offline of a server on loopback runs no password_cmd" test ! -e "$tap_tmp/ran"
	HOME=$tap_tmp/home XDG_STATE_HOME=$tap_tmp/state PATH=$tap_tmp/bin:$PATH \
		"$ferry" check -c "$tap_tmp/online.yaml" > "$tap_tmp/out" 2>&1
	rc=$?
	tap_check "an online check logs in (exit $rc)" test $rc -eq 0
	[ $rc -eq 0 ] || tap_diag "$(cat "$tap_tmp/out")"
	tap_check "an online check runs password_cmd through the stand-in" \
		grep -qx "pass show mail/test" "$tap_tmp/ran"
else
	tap_not_ok "tests/harness/dovecot-test starts a server"
	tap_diag "$(cat "$tap_tmp/err")"
fi
tap_done
