#!/bin/sh
# The zsh completion (dist/completion/_ferry): it parses, and in a real
# interactive zsh with compinit (in a pseudo-terminal that zsh makes
# itself, see completion_zsh_run.zsh) it offers commands, options and
# account names.
. "$(dirname "$0")/tap.sh"

fn=$src/dist/completion/_ferry
if ! command -v zsh > /dev/null; then
	tap_skip "zsh completion" "zsh is not installed (Debian package zsh)"
	tap_done
	exit $?
fi
tap_check "_ferry parses (zsh -n)" zsh -n "$fn"
tap_check "_ferry starts with #compdef ferry" sh -c "head -1 '$fn' | grep -qx '#compdef ferry'"

mkdir -p "$tap_tmp/bin" "$tap_tmp/fpath" "$tap_tmp/xdg/ferry" "$tap_tmp/home"
ln -s "$ferry" "$tap_tmp/bin/ferry"
cp "$fn" "$tap_tmp/fpath/_ferry"
cat > "$tap_tmp/home/accounts.yaml" <<'YAML'
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

if ! zsh -f -c 'zmodload zsh/zpty' 2> /dev/null; then
	tap_skip "zsh completion in an interactive zsh" "zsh has no zsh/zpty module"
	tap_done
	exit $?
fi

# Each case: the line typed (TAB follows), then the matches expected.
cfg=$tap_tmp/home/accounts.yaml
cat > "$tap_tmp/cases" <<CASES
ferry 	check help status sync
ferry s	status sync
ferry -q 	check help status sync
ferry sync --	--config --dry-run --force --json --pull --push --quiet --verbose --wait
ferry check --	--config --json --list-accounts --offline --quiet --verbose
ferry -c $cfg sync 	personal work-2.old
ferry sync -c $cfg personal 	personal work-2.old
ferry --config=$cfg status w	work-2.old
ferry -c ~/accounts.yaml check p	personal
ferry sync 	fromxdg
ferry help 	check help status sync
CASES

set --
while IFS='	' read -r typed want; do
	set -- "$@" "$typed"
done < "$tap_tmp/cases"
HOME=$tap_tmp/home XDG_CONFIG_HOME=$tap_tmp/xdg XDG_STATE_HOME=$tap_tmp/state \
	PATH=$tap_tmp/bin:$PATH timeout 120 \
	zsh -f "$src/tests/completion_zsh_run.zsh" "$tap_tmp/fpath" "$@" \
	> "$tap_tmp/got" 2> "$tap_tmp/err"
rc=$?
tap_check "the interactive zsh ran every case (exit $rc)" test $rc -eq 0
[ -s "$tap_tmp/err" ] && tap_diag "$(cat "$tap_tmp/err")"

n=0
while IFS='	' read -r typed want; do
	n=$((n + 1))
	got=$(sed -n "${n}p" "$tap_tmp/got")
	what=$(printf '%s' "$typed" | sed "s|$tap_tmp|TMP|g")
	if [ "$got" = "$want" ]; then
		tap_ok "zsh: \"$what<TAB>\" offers $want"
	else
		tap_not_ok "zsh: \"$what<TAB>\" offers $want"
		tap_diag "got: $got"
	fi
done < "$tap_tmp/cases"
tap_done
