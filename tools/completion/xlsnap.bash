# bash completion for xlsnap(1)                          -*- shell-script -*-
# Installed as $(DATADIR)/bash-completion/completions/xlsnap.
# shellcheck disable=SC2207 # COMPREPLY=($(compgen ...)) is the idiom
# Completes global options, subcommands, their options, domain names (from
# xenstore, else `xl list`, else `xlsim list`) and snapshot names (from
# `xlsnap snapshot-list --json`).

# Domain names other than Domain-0.
_xlsnap_domains()
{
    local ids id tool
    if ids=$(xenstore-list /local/domain 2>/dev/null); then
        for id in $ids; do
            [ "$id" != 0 ] && xenstore-read "/local/domain/$id/name" 2>/dev/null
        done
        return
    fi
    for tool in xl xlsim; do
        type -P "$tool" >/dev/null &&
            "$tool" list 2>/dev/null | awk 'NR > 1 && $1 != "Domain-0" { print $1 }' &&
            return
    done
}

# Snapshot names of domain $1: the top-level "name" of each JSON record.
_xlsnap_snapshots()
{
    "${_xlsnap_cmd:-xlsnap}" snapshot-list --json "$1" 2>/dev/null |
        sed -n 's/^    "name": "\(.*\)",$/\1/p'
}

_xlsnap()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        _init_completion -s || return
    else # without the bash-completion package
        words=("${COMP_WORDS[@]}") cword=$COMP_CWORD
        cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    fi
    local _xlsnap_cmd=${words[0]}
    local subcommands="snapshot-create snapshot-list snapshot-info snapshot-verify snapshot-revert snapshot-delete help"

    # Find the subcommand (the first word that is not a global option).
    local i sub="" subi=0
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
        -*) ;;
        *) sub=${words[i]} subi=$i && break ;;
        esac
    done
    if [ -z "$sub" ]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "-v -N -f" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$subcommands" -- "$cur"))
        fi
        return
    fi

    local opts=""
    case $sub in
    snapshot-create)
        case $prev in
        -q | --quiesce) COMPREPLY=($(compgen -W "required best-effort off" -- "$cur")); return ;;
        --lease-expiry) COMPREPLY=($(compgen -W "thaw kill" -- "$cur")); return ;;
        --overlay-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        -d | --description | --disks | --freeze-timeout | --freeze-budget | --freeze-mounts | --no-freeze) return ;;
        esac
        opts="-d --description= -i --internal -e --external -m --memory --disks=
              --overlay-dir= -q --quiesce= --freeze-timeout= --freeze-budget= --lease-expiry=
              --freeze-mounts= --no-freeze= --json --verify -h --help" ;;
    snapshot-verify)
        [ "$prev" = --timeout ] && return
        opts="--timeout= --json -h --help" ;;
    snapshot-list) opts="--tree --roots --leaves --json -h --help" ;;
    snapshot-info) opts="--json -h --help" ;;
    snapshot-revert) opts="--running --paused --force -h --help" ;;
    snapshot-delete) opts="--children --children-only --metadata --discard-journal -h --help" ;;
    help) COMPREPLY=($(compgen -W "$subcommands" -- "$cur")); return ;;
    *) return ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        [[ ${COMPREPLY-} == *= ]] && compopt -o nospace
        return
    fi
    # Positional arguments after the subcommand: <Domain> [<Name>].
    local args=()
    for ((i = subi + 1; i < cword; i++)); do
        case ${words[i]} in
        -d | --description | -q | --quiesce | --disks | --overlay-dir | --freeze-timeout | --freeze-budget | --lease-expiry | --freeze-mounts | --no-freeze)
            [ "$sub" = snapshot-create ] && ((i++)) ;;
        --timeout) [ "$sub" = snapshot-verify ] && ((i++)) ;;
        -*) ;;
        *) args+=("${words[i]}") ;;
        esac
    done
    case ${#args[@]} in
    0) COMPREPLY=($(compgen -W "$(_xlsnap_domains)" -- "$cur")) ;;
    1) case $sub in
       snapshot-info | snapshot-verify | snapshot-revert | snapshot-delete)
           [[ " ${words[*]} " == *" --discard-journal "* ]] && return # domain only
           local IFS=$'\n'
           COMPREPLY=($(compgen -W "$(_xlsnap_snapshots "${args[0]}")" -- "$cur")) ;;
       esac ;;
    esac
}
complete -F _xlsnap xlsnap
