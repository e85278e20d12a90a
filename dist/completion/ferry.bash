# bash completion for ferry(1)                              -*- shell-script -*-
#
# Installed as share/bash-completion/completions/ferry; bash-completion
# loads it the first time `ferry <TAB>` is pressed.  Completes commands,
# global options and each command's options, and account names, which it
# asks ferry for (`ferry check --list-accounts`, reading the -c FILE given
# on the line, else the default configuration).

# The account names of the configuration the command line names.
# $1: the ferry program as typed; $2: the -c FILE argument, or empty.
_ferry_accounts()
{
    local prog=$1 cfg=$2
    case $cfg in
    "~/"*) cfg=$HOME/${cfg#"~/"} ;;
    esac
    if [[ -n $cfg ]]; then
        "$prog" --config="$cfg" check --list-accounts 2>/dev/null
    else
        "$prog" check --list-accounts 2>/dev/null
    fi
}

_ferry()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        # bash-completion: keeps "--config=FILE" one word.
        _init_completion -n = || return
    else
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
        cur=${words[cword]}
        prev=${words[cword - 1]}
    fi

    local commands="sync status check help"
    local global_opts="-c --config -v --verbose -vv -q --quiet --json -V --version -h --help"
    local cmd="" cfg="" nargs=0 i word
    # What stands before the word being completed: the command, -c FILE,
    # and how many arguments the command already has.
    for ((i = 1; i < cword; i++)); do
        word=${words[i]}
        case $word in
        -c | --config)
            ((i++))
            cfg=${words[i]}
            ;;
        --config=*)
            cfg=${word#--config=}
            ;;
        -*) ;;
        *)
            if [[ -z $cmd ]]; then
                cmd=$word
            else
                ((nargs++))
            fi
            ;;
        esac
    done

    case $prev in
    -c | --config)
        COMPREPLY=($(compgen -f -- "$cur"))
        compopt -o filenames 2>/dev/null
        return 0
        ;;
    esac
    case $cur in
    --config=*)
        COMPREPLY=($(compgen -f -- "${cur#--config=}"))
        compopt -o filenames 2>/dev/null
        return 0
        ;;
    -*)
        local opts=$global_opts
        case $cmd in
        sync) opts="$opts --dry-run --pull --push --force --wait" ;;
        check) opts="$opts --offline --list-accounts" ;;
        esac
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return 0
        ;;
    esac

    case $cmd in
    "")
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        ;;
    help)
        ((nargs == 0)) && COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        ;;
    sync)
        COMPREPLY=($(compgen -W "$(_ferry_accounts "${words[0]}" "$cfg")" -- "$cur"))
        ;;
    status | check)
        ((nargs == 0)) &&
            COMPREPLY=($(compgen -W "$(_ferry_accounts "${words[0]}" "$cfg")" -- "$cur"))
        ;;
    esac
    return 0
}

complete -F _ferry ferry
