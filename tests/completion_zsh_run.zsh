# completion_zsh_run.zsh - run by completion_zsh.sh as
#     zsh -f completion_zsh_run.zsh FPATH_DIR LINE...
# Starts an interactive zsh in a pseudo-terminal of its own (zsh/zpty; no
# terminal is needed around it), with compinit and FPATH_DIR first on
# $fpath, types each LINE followed by TAB, and prints one line per LINE:
# the matches the completion system offered, sorted, separated by spaces.
# `ferry` is run from $PATH.
zmodload zsh/zpty || exit 1
setopt extendedglob
fpath_dir=$1
shift

zpty ferryz 'zsh -f -i'
# In the inner shell: quiet prompt, compinit, and a compadd that also
# prints each match it really adds (not the queries that only ask: -O, -A, -D).
zpty -w ferryz "PS1=''; PS2=''; RPS1=''; unsetopt zle_bracketed_paste 2>/dev/null; fpath=(${(q)fpath_dir} \$fpath)"
zpty -w ferryz 'autoload -Uz compinit && compinit -u -D'
zpty -w ferryz 'zstyle ":completion:*" list-grouped false; zstyle ":completion:*" menu no'
zpty -w ferryz 'compadd() {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi
  local -a __hits; builtin compadd -O __hits "$@"
  local h; for h in $__hits; do print -r -- "@@match@@ $h"; done
  builtin compadd "$@"
}'

# Read from the pty until a line holds $1; collect the matches seen.
read_until() {
  local line deadline=$(( SECONDS + 20 ))
  matches=()
  while (( SECONDS < deadline )); do
    if zpty -r -t ferryz line; then
      line=${line//$'\r'/}
      if [[ $line == *"@@match@@ "* ]]; then
        matches+=( "${${line#*@@match@@ }%%[[:space:]]#}" )
      elif [[ $line == *$1* ]]; then
        return 0
      fi
    else
      sleep 0.05
    fi
  done
  print -u2 "timed out waiting for $1"
  return 1
}

zpty -w ferryz "print @@rea''dy@@"
read_until @@ready@@ || exit 1
for typed in "$@"; do
  zpty -w -n ferryz "$typed"$'\t'
  # Ctrl-U kills the line typed so far; then a marker to wait for.
  zpty -w -n ferryz $'\C-u'
  zpty -w ferryz "print @@do''ne@@"
  read_until @@done@@ || exit 1
  print -r -- ${(j: :)${(ou)matches}}
done
zpty -d ferryz
