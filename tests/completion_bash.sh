#!/bin/sh
# The bash completion (dist/completion/ferry.bash), loaded the way
# bash-completion loads it, offers commands, options and account names:
# each case sets COMP_WORDS / COMP_CWORD as bash would, calls _ferry and
# compares COMPREPLY.
. "$(dirname "$0")/tap.sh"

script=$src/dist/completion/ferry.bash
bc=/usr/share/bash-completion/bash_completion

if [ ! -f "$bc" ]; then
	tap_skip "bash completion" "bash-completion is not installed (Debian package bash-completion)"
	tap_done
	exit $?
fi
tap_check "ferry.bash parses (bash -n)" bash -n "$script"

mkdir -p "$tap_tmp/xdg/ferry" "$tap_tmp/home"
cat > "$tap_tmp/accounts.yaml" <<'YAML'
accounts:
  personal:
    remote: {host: imap.example.org, user: me, password_cmd: "false"}
    local: {path: /tmp/ferry-completion-test/personal}
  work-2.old:
    remote: {host: imap.example.org, user: me, password_cmd: "false"}
    local: {path: /tmp/ferry-completion-test/work}
YAML
cat > "$tap_tmp/xdg/ferry/config.yaml" <<'YAML'
accounts:
  fromxdg:
    remote: {host: imap.example.org, user: me, password_cmd: "false"}
    local: {path: /tmp/ferry-completion-test/xdg}
YAML

# complete EXPECTED WORD... : the words typed, the last one being completed
# (may be empty); EXPECTED is the sorted COMPREPLY, space-separated.
complete_case() {
	want=$1
	shift
	got=$(HOME=$tap_tmp/home XDG_CONFIG_HOME=$tap_tmp/xdg XDG_STATE_HOME=$tap_tmp/state \
		bash --norc --noprofile -c '
		. "$1"; . "$2"; shift 2
		COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"
		COMP_LINE=${COMP_LINE// = /=}
		COMP_POINT=${#COMP_LINE}
		COMP_TYPE=9
		_ferry
		printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' \
		ferry-completion "$bc" "$script" "$@" 2> "$tap_tmp/err")
	got=${got% }
	what=$(printf '%s' "$*" | sed "s|$ferry|ferry|; s|$tap_tmp|TMP|g")
	if [ "$got" = "$want" ] && [ ! -s "$tap_tmp/err" ]; then
		tap_ok "complete \"$what\" -> $want"
	else
		tap_not_ok "complete \"$what\" -> $want"
		tap_diag "got: $got" "$(cat "$tap_tmp/err")"
	fi
}

cfg=$tap_tmp/accounts.yaml
complete_case "check help status sync" "$ferry" ""
complete_case "status sync" "$ferry" s
complete_case "check help status sync" "$ferry" -q ""
complete_case "--dry-run" "$ferry" sync --dr
complete_case "--offline" "$ferry" check --of
complete_case "--list-accounts" "$ferry" check --li
complete_case "" "$ferry" status --dr
complete_case "--json" "$ferry" status --js
complete_case "--config" "$ferry" --conf
complete_case "personal work-2.old" "$ferry" -c "$cfg" sync ""
complete_case "personal work-2.old" "$ferry" sync -c "$cfg" personal ""
complete_case "work-2.old" "$ferry" --config="$cfg" status w
complete_case "personal" "$ferry" --config "$cfg" check p
complete_case "" "$ferry" -c "$cfg" status personal ""
complete_case "fromxdg" "$ferry" sync ""
complete_case "" "$ferry" -c "$tap_tmp/missing.yaml" sync ""
complete_case "check help status sync" "$ferry" help ""
complete_case "" "$ferry" help sync ""
complete_case "$tap_tmp/accounts.yaml" "$ferry" -c "$tap_tmp/acc"
# bash splits "--config=FILE" at "=" (COMP_WORDBREAKS); the script joins it.
complete_case "work-2.old" "$ferry" --config = "$cfg" status w
tap_done
